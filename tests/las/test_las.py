"""The LAS as a real process: its key, its quotes, its refusals (contracts.md section 6)."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sconify.errors import ServiceError
from sconify.las.client import LasClient
from sconify.las.quote import SimQuote, load_qe_public_key, signature_valid
from tests.support.services import LasProcess, run_las

MEASUREMENT = "ab" * 32
REPORT = bytes(range(64))


def test_qe_pubkey_id_is_sha256_of_the_spki(las: LasProcess) -> None:
    key = las.client().qe_pubkey()
    public = serialization.load_pem_public_key(key.pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.key_id == hashlib.sha256(der).hexdigest() == las.qe_key_id


@pytest.mark.parametrize("debug", [False, True])
def test_quote_is_signed_canonical_json(las: LasProcess, debug: bool) -> None:
    signed = las.client().quote(MEASUREMENT, REPORT, debug=debug)
    quote = SimQuote.parse(signed.quote)
    assert (quote.mrenclave, quote.report_data, quote.debug) == (MEASUREMENT, REPORT.hex(), debug)
    assert quote.qe_key_id == las.qe_key_id == signed.qe_key_id
    assert signed.quote == quote.to_bytes()
    raw = json.loads(signed.quote)
    assert raw["type"] == "sconify-sim-quote" and raw["version"] == 1
    assert signed.quote == json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    assert signature_valid(load_qe_public_key(signed.qe_pubkey), signed.quote, signed.signature)
    assert not signature_valid(
        load_qe_public_key(signed.qe_pubkey), signed.quote + b" ", signed.signature
    )


@pytest.mark.parametrize(
    "body",
    [
        {"debug": False, "measurement": "AB" * 32, "report_data": "00" * 64},
        {"debug": False, "measurement": "ab" * 31, "report_data": "00" * 64},
        {"debug": False, "measurement": "ab" * 32, "report_data": "00" * 32},
        {"debug": "no", "measurement": "ab" * 32, "report_data": "00" * 64},
        {"measurement": "ab" * 32, "report_data": "00" * 64},
        {"debug": False, "measurement": "ab" * 32, "report_data": "00" * 64, "extra": 1},
        [1, 2],
    ],
)
def test_malformed_quote_requests_are_refused(las: LasProcess, body: object) -> None:
    response = httpx.post(f"http://{las.addr}/v1/quote", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["check"] == "request"


def test_not_json_is_refused(las: LasProcess) -> None:
    response = httpx.post(f"http://{las.addr}/v1/quote", content=b"{nope")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"check", "message"}


def test_key_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "las"
    with run_las(state) as first:
        first_id = first.qe_key_id
    mode = stat.S_IMODE((state / "qe-key.pem").stat().st_mode)
    assert mode == 0o600
    assert not (state / "ready.json").exists()
    with run_las(state) as second:
        assert second.qe_key_id == first_id
        assert second.ready["pid"] == second.process.pid


def test_unreachable_las_is_a_service_error_with_a_hint(tmp_path: Path) -> None:
    with run_las(tmp_path / "las") as gone:
        addr = gone.addr
    with pytest.raises(ServiceError) as caught:
        LasClient(addr).qe_pubkey()
    assert addr in caught.value.message
    assert caught.value.hint and "sconify dev up" in caught.value.hint


def test_quote_bytes_are_standard_base64(las: LasProcess) -> None:
    response = httpx.post(
        f"http://{las.addr}/v1/quote",
        json={"debug": False, "measurement": MEASUREMENT, "report_data": REPORT.hex()},
    )
    body = response.json()
    assert set(body) == {"qe_key_id", "qe_pubkey", "quote", "signature"}
    assert (
        base64.b64encode(base64.b64decode(body["quote"], validate=True)).decode() == body["quote"]
    )
