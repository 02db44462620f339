"""Attestation end to end in Python: challenge -> LAS quote -> attest -> JWE, and every refusal.

Real CAS and LAS processes; the enclave side is what the shim does, written in Python.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sconify.canonical import canonical_json
from sconify.cas.attest import NonceBook
from sconify.cas.client import CasClient
from sconify.cas.enclave_client import EnclaveClient, fetch_config
from sconify.cas.identity import Identity
from sconify.cas.pinning import pinned_context
from sconify.crypto.jwe import TeePrivateKey, open_sealed
from sconify.errors import CasRefused, CryptoError
from sconify.las.client import SignedQuote
from sconify.las.quote import SimQuote, bind_report_data, key_id, sign
from tests.cas.policies import FSPF_KEY, FSPF_TAG, MEASUREMENT, namespace, service_session
from tests.support.services import CasProcess, LasProcess, run_las

Connect = Callable[[Identity], CasClient]


@dataclass
class Deployed:
    """A session whose service ``app`` can be attested."""

    config_id: str
    name: str
    hash: str
    client: CasClient


@pytest.fixture
def deploy(alice: Identity, connect: Connect, ns: str, las: LasProcess) -> Callable[..., Deployed]:
    def _deploy(**kwargs: str) -> Deployed:
        client = connect(alice)
        if client.current_hash(ns) is None:
            client.create_session(namespace(ns))
        name = f"{ns}/app-{len(kwargs)}-{abs(hash(tuple(kwargs.items()))) % 10**8}"
        kwargs.setdefault("qe_key_id", las.qe_key_id)
        session_hash = client.create_session(service_session(name, **kwargs))
        return Deployed(f"{name}/app", name, session_hash, client)

    return _deploy


@pytest.fixture
def enclave(cas: CasProcess) -> EnclaveClient:
    client = EnclaveClient(cas.enclave_addr, cas_key_hash=cas.cas_key_hash)
    yield client  # type: ignore[misc]
    client.close()


def _quote_for(
    las: LasProcess,
    nonce: str,
    tee: TeePrivateKey,
    *,
    measurement: str = MEASUREMENT,
    debug: bool = False,
) -> SignedQuote:
    return las.client().quote(
        measurement, bind_report_data(nonce, tee.public_key.thumbprint()), debug=debug
    )


def _refusal(call: Callable[[], object]) -> CasRefused:
    with pytest.raises(CasRefused) as caught:
        call()
    return caught.value


def test_full_flow_releases_the_substituted_configuration(
    cas: CasProcess, las: LasProcess, deploy: Callable[..., Deployed]
) -> None:
    target = deploy()
    config = fetch_config(
        cas.enclave_addr, cas.cas_key_hash, las.addr, target.config_id, MEASUREMENT
    )
    token = config["command"][3]
    assert config["command"][:3] == ["python3", "app.py", "--token"]
    assert len(token) == 16 and token.isalnum()
    key = bytes.fromhex(config["environment"]["KEY_HEX"])
    assert len(key) == 32
    assert config["environment"]["GREETING"] == "grüß dich"
    assert config["environment"]["MODE"] == "one"
    assert config["injection_files"] == [
        {"content_b64": base64.b64encode(key).decode(), "mode": 0o600, "path": "/etc/app/key.bin"}
    ]
    assert (config["fspf_path"], config["fspf_key"], config["fspf_tag"]) == (
        "/sconify/fspf/fs.fspf",
        FSPF_KEY,
        FSPF_TAG,
    )
    assert config["pwd"] == "/app"
    assert config["session_hash"] == target.hash

    again = fetch_config(
        cas.enclave_addr, cas.cas_key_hash, las.addr, target.config_id, MEASUREMENT
    )
    assert again == config, "generated secrets are stable between attestations"


def test_jwe_is_canonical_json_and_only_the_tee_key_opens_it(
    cas: CasProcess, las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy()
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    token = enclave.attest(target.config_id, nonce, _quote_for(las, nonce, tee), tee.public_key)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert (header["alg"], header["enc"]) == ("ECDH-ES", "A256GCM")
    plaintext = open_sealed(token, tee)
    assert plaintext == canonical_json(json.loads(plaintext))
    with pytest.raises(CryptoError):
        open_sealed(token, TeePrivateKey.generate())


def test_updates_keep_secrets_and_change_the_config(
    cas: CasProcess, las: LasProcess, deploy: Callable[..., Deployed]
) -> None:
    target = deploy()
    before = fetch_config(
        cas.enclave_addr, cas.cas_key_hash, las.addr, target.config_id, MEASUREMENT
    )
    new_hash = target.client.update_session(
        service_session(target.name, qe_key_id=las.qe_key_id, env_value="two")
    )
    after = fetch_config(
        cas.enclave_addr, cas.cas_key_hash, las.addr, target.config_id, MEASUREMENT
    )
    assert after["environment"]["MODE"] == "two"
    assert after["session_hash"] == new_hash
    assert after["command"] == before["command"]
    assert after["environment"]["KEY_HEX"] == before["environment"]["KEY_HEX"]


def test_unknown_session_and_service_are_one_404(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    # anyone may ask the enclave API: it must not tell a missing session from a missing service
    target = deploy()
    answers = set()
    for config_id in (f"{target.name}-nope/app", f"{target.name}/nope", "no-slash"):
        refused = _refusal(lambda c=config_id: enclave.challenge(c))
        assert (refused.status, refused.check) == (404, "session")
        if "/" in config_id:  # (a malformed id is told so: that reveals no name)
            answers.add(refused.message.replace(repr(config_id), "ID"))
    assert len(answers) == 1, answers
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    refused = _refusal(
        lambda: enclave.attest(
            f"{target.name}/nope", nonce, _quote_for(las, nonce, tee), tee.public_key
        )
    )
    assert (refused.status, refused.check) == (404, "session")


def test_replayed_nonce_is_refused(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy()
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    quote = _quote_for(las, nonce, tee)
    enclave.attest(target.config_id, nonce, quote, tee.public_key)
    refused = _refusal(lambda: enclave.attest(target.config_id, nonce, quote, tee.public_key))
    assert (refused.status, refused.check) == (403, "nonce")


def test_a_failed_attempt_consumes_the_nonce(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy()
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    wrong = _quote_for(las, nonce, tee, measurement="00" * 32)
    assert (
        _refusal(lambda: enclave.attest(target.config_id, nonce, wrong, tee.public_key)).check
        == "mrenclave"
    )
    right = _quote_for(las, nonce, tee)
    assert (
        _refusal(lambda: enclave.attest(target.config_id, nonce, right, tee.public_key)).check
        == "nonce"
    )


def test_nonce_unknown_or_for_another_config_id(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    first, second = deploy(), deploy(env_value="other")
    tee = TeePrivateKey.generate()
    made_up = "ab" * 32
    refused = _refusal(
        lambda: enclave.attest(
            first.config_id, made_up, _quote_for(las, made_up, tee), tee.public_key
        )
    )
    assert refused.check == "nonce"
    nonce = enclave.challenge(second.config_id)
    refused = _refusal(
        lambda: enclave.attest(first.config_id, nonce, _quote_for(las, nonce, tee), tee.public_key)
    )
    assert (refused.status, refused.check) == (403, "nonce")


def test_untrusted_quoting_key_is_refused(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient, tmp_path
) -> None:
    target = deploy(qe_key_id="0" * 64)
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    refused = _refusal(
        lambda: enclave.attest(target.config_id, nonce, _quote_for(las, nonce, tee), tee.public_key)
    )
    assert (refused.status, refused.check) == (403, "qe_key")
    assert refused.hint and "trusted_scone_qe_pubkeys" in refused.hint

    trusted = deploy()
    with run_las(tmp_path / "rogue-las") as rogue:
        nonce = enclave.challenge(trusted.config_id)
        quote = _quote_for(rogue, nonce, tee)
        refused = _refusal(lambda: enclave.attest(trusted.config_id, nonce, quote, tee.public_key))
    assert refused.check == "qe_key"


def test_bad_signature_is_refused(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy()
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    quote = _quote_for(las, nonce, tee)
    other = ec.generate_private_key(ec.SECP256R1())
    forged = SignedQuote(quote.quote, sign(other, quote.quote), quote.qe_key_id, quote.qe_pubkey)
    refused = _refusal(lambda: enclave.attest(target.config_id, nonce, forged, tee.public_key))
    assert (refused.status, refused.check) == (403, "signature")


def _las_key(las: LasProcess) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((las.state_dir / "qe-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def test_malformed_quote_is_refused_even_when_signed(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy()
    key = _las_key(las)
    tee = TeePrivateKey.generate()
    report = bind_report_data("00" * 32, tee.public_key.thumbprint()).hex()
    good = SimQuote(MEASUREMENT, report, key_id(key.public_key()), False, int(time.time()))
    bad_type = json.loads(good.to_bytes())
    bad_type["type"] = "sgx-quote"
    other_key = {**json.loads(good.to_bytes()), "qe_key_id": "1" * 64}
    for body in (canonical_json(bad_type), canonical_json(other_key), b"not json"):
        nonce = enclave.challenge(target.config_id)
        pem = las.client().qe_pubkey().pem
        signed = SignedQuote(body, sign(key, body), key_id(key.public_key()), pem)
        refused = _refusal(
            lambda s=signed, n=nonce: enclave.attest(target.config_id, n, s, tee.public_key)
        )
        assert (refused.status, refused.check) == (403, "quote")


def test_report_data_must_bind_nonce_and_tee_key(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy()
    tee, other = TeePrivateKey.generate(), TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    quote = _quote_for(las, nonce, other)  # bound to another key
    refused = _refusal(lambda: enclave.attest(target.config_id, nonce, quote, tee.public_key))
    assert (refused.status, refused.check) == (403, "report_data")

    nonce = enclave.challenge(target.config_id)
    stale = _quote_for(las, "cd" * 32, tee)  # bound to another nonce
    refused = _refusal(lambda: enclave.attest(target.config_id, nonce, stale, tee.public_key))
    assert refused.check == "report_data"

    nonce = enclave.challenge(target.config_id)
    unpadded = las.client().quote(
        MEASUREMENT,
        hashlib.sha256(bytes.fromhex(nonce) + tee.public_key.thumbprint()).digest() + b"\x01" * 32,
    )
    refused = _refusal(lambda: enclave.attest(target.config_id, nonce, unpadded, tee.public_key))
    assert refused.check == "report_data"


def test_wrong_measurement_is_refused(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy()
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    quote = _quote_for(las, nonce, tee, measurement="77" * 32)
    refused = _refusal(lambda: enclave.attest(target.config_id, nonce, quote, tee.public_key))
    assert (refused.status, refused.check) == (403, "mrenclave")
    assert "77" * 32 in refused.message


def test_simulation_must_be_tolerated(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy(tolerate="[debug-mode]")
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    refused = _refusal(
        lambda: enclave.attest(target.config_id, nonce, _quote_for(las, nonce, tee), tee.public_key)
    )
    assert (refused.status, refused.check) == (403, "tolerate")
    assert refused.hint and "simulation" in refused.hint


def test_debug_quotes_need_debug_mode(
    cas: CasProcess, las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    strict = deploy()
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(strict.config_id)
    quote = _quote_for(las, nonce, tee, debug=True)
    refused = _refusal(lambda: enclave.attest(strict.config_id, nonce, quote, tee.public_key))
    assert (refused.status, refused.check) == (403, "tolerate")

    lenient = deploy(tolerate="[simulation, debug-mode]")
    config = fetch_config(
        cas.enclave_addr, cas.cas_key_hash, las.addr, lenient.config_id, MEASUREMENT, debug=True
    )
    assert config["session_hash"] == lenient.hash


def test_checks_run_in_contract_order(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy(qe_key_id="0" * 64, tolerate="[debug-mode]")
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    everything_wrong = _quote_for(las, "ee" * 32, tee, measurement="77" * 32)
    refused = _refusal(
        lambda: enclave.attest(target.config_id, nonce, everything_wrong, tee.public_key)
    )
    assert refused.check == "qe_key"


def test_refusals_never_carry_secrets(
    cas: CasProcess, las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient
) -> None:
    target = deploy(tolerate="[debug-mode]")
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    cert = (cas.state_dir / "cas-cert.pem").read_bytes()
    with httpx.Client(base_url=f"https://{cas.enclave_addr}", verify=pinned_context(cert)) as http:
        response = http.post(
            "/v1/enclave/attest",
            json={
                "config_id": target.config_id,
                "nonce": nonce,
                **_quote_for(las, nonce, tee).to_attest_fields(),
                "tee_pubkey": tee.public_key.to_jwk(),
            },
        )
    assert response.status_code == 403
    assert set(response.json()) == {"error"}
    assert FSPF_KEY not in response.text and "visible-to-all" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"config_id": "a/b"},
        {
            "config_id": "a/b",
            "nonce": 1,
            "quote": "",
            "signature": "",
            "qe_pubkey": "",
            "tee_pubkey": {},
        },
        {"nonce": "x"},
    ],
)
def test_malformed_attest_requests_are_400(cas: CasProcess, body: dict[str, object]) -> None:
    cert = (cas.state_dir / "cas-cert.pem").read_bytes()
    with httpx.Client(base_url=f"https://{cas.enclave_addr}", verify=pinned_context(cert)) as http:
        response = http.post("/v1/enclave/attest", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["check"] == "request"
        response = http.post("/v1/enclave/challenge", json={"config_id": 5})
        assert response.status_code == 400


def test_bad_tee_key_is_a_report_data_refusal(
    las: LasProcess, deploy: Callable[..., Deployed], enclave: EnclaveClient, cas: CasProcess
) -> None:
    target = deploy()
    tee = TeePrivateKey.generate()
    nonce = enclave.challenge(target.config_id)
    jwk = {**tee.public_key.to_jwk(), "y": tee.public_key.to_jwk()["x"]}
    cert = (cas.state_dir / "cas-cert.pem").read_bytes()
    with httpx.Client(base_url=f"https://{cas.enclave_addr}", verify=pinned_context(cert)) as http:
        response = http.post(
            "/v1/enclave/attest",
            json={
                "config_id": target.config_id,
                "nonce": nonce,
                **_quote_for(las, nonce, tee).to_attest_fields(),
                "tee_pubkey": jwk,
            },
        )
    assert response.status_code == 403
    assert response.json()["error"]["check"] == "report_data"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_nonces_expire_and_are_single_use() -> None:
    clock = _Clock()
    book = NonceBook(ttl=60, clock=clock)
    nonce = book.issue("a/b/c")
    assert len(nonce) == 64 and int(nonce, 16) >= 0
    assert book.consume(nonce, "a/b/c") is None
    assert book.consume(nonce, "a/b/c") == "the nonce is unknown or was already used"
    late = book.issue("a/b/c")
    clock.now += 60
    assert book.consume(late, "a/b/c") == "the nonce has expired"
    other = book.issue("a/b/c")
    assert book.consume(other, "a/b/d") == "the nonce was issued for another config id"
    assert book.issue("x/y") != book.issue("x/y")


def test_challenge_limits_per_source_and_config_id_free_up_on_use_and_expiry() -> None:
    from sconify.cas.attest import ChallengeLimits

    clock = _Clock()
    book = NonceBook(ttl=60, clock=clock, limits=ChallengeLimits(per_source=2, per_config=3))
    first = book.issue("a/b/c", "10.0.0.1")
    book.issue("a/b/c", "10.0.0.1")
    with pytest.raises(CasRefused) as caught:
        book.issue("x/y/z", "10.0.0.1")
    assert (caught.value.status, caught.value.check) == (503, "nonce")
    assert "your address" in caught.value.message
    book.issue("a/b/c", "10.0.0.2")  # another source is not starved
    with pytest.raises(CasRefused) as caught:
        book.issue("a/b/c", "10.0.0.3")
    assert "for 'a/b/c'" in caught.value.message
    assert book.consume(first, "a/b/c") is None  # an answer frees its share
    book.issue("x/y/z", "10.0.0.1")
    clock.now += 61  # so does expiry
    for _ in range(2):
        book.issue("a/b/c", "10.0.0.1")
