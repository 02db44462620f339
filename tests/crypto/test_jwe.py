"""The JWE recipe against its vectors (shared with the Go shim) and against tampering."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from sconify.crypto import _jose
from sconify.crypto.jwe import TeePrivateKey, TeePublicKey, open_sealed, seal
from sconify.errors import CryptoError

VECTORS = Path(__file__).parents[1] / "vectors"
CASES: list[dict[str, Any]] = json.loads((VECTORS / "jwe" / "cases.json").read_text("utf-8"))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_jwe", VECTORS / "gen_jwe.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{len(c['plaintext_b64'])}b64")
def test_vectors_open(case: dict[str, Any]) -> None:
    key = TeePrivateKey.from_jwk(case["tee_private_jwk"])
    assert open_sealed(case["jwe"], key) == base64.b64decode(case["plaintext_b64"])


def test_vectors_cover_the_required_cases() -> None:
    plaintexts = [base64.b64decode(c["plaintext_b64"]) for c in CASES]
    assert any(len(p) >= 100 * 1024 for p in plaintexts)
    texts = []
    for p in plaintexts:
        try:
            texts.append(p.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    assert any(not t.isascii() for t in texts)


def test_vectors_are_reproducible() -> None:
    built = _generator().build_cases()
    assert json.dumps(built, indent=1, sort_keys=True) + "\n" == (
        VECTORS / "jwe" / "cases.json"
    ).read_text("utf-8")


def test_header_is_canonical_and_has_exact_members() -> None:
    header_b64 = CASES[0]["jwe"].split(".")[0]
    header = _jose.b64url_decode(header_b64)
    parsed = json.loads(header)
    assert set(parsed) == {"alg", "enc", "epk"}
    assert parsed["alg"] == "ECDH-ES" and parsed["enc"] == "A256GCM"
    assert set(parsed["epk"]) == {"crv", "kty", "x", "y"}
    assert header == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    assert CASES[0]["jwe"].split(".")[1] == ""
    assert len(_jose.b64url_decode(CASES[0]["jwe"].split(".")[2])) == 12


def test_thumbprint_matches_an_independent_implementation() -> None:
    # Value computed by jwcrypto 1.6.1 for the first vector's key (RFC 7638, SHA-256).
    key = TeePrivateKey.from_jwk(CASES[0]["tee_private_jwk"])
    assert (
        key.public_key.thumbprint().hex()
        == "68e72801937807537ac9004a309ce74dafdf59772621b0a17ca3f00858ae5e70"
    )


def test_seal_then_open_roundtrip_with_fresh_randomness() -> None:
    key = TeePrivateKey.generate()
    first = seal("grüß dich".encode(), key.public_key)
    second = seal("grüß dich".encode(), key.public_key)
    assert first != second
    assert open_sealed(first, key) == open_sealed(second, key) == "grüß dich".encode()


def test_cannot_be_opened_without_the_tee_key() -> None:
    key = TeePrivateKey.generate()
    token = seal(b"the volume key", key.public_key)
    with pytest.raises(CryptoError):
        open_sealed(token, TeePrivateKey.generate())


@pytest.mark.parametrize("segment", [0, 2, 3, 4])
def test_any_altered_segment_is_refused_with_one_error(segment: int) -> None:
    key = TeePrivateKey.generate()
    parts = seal(b"some configuration bytes", key.public_key).split(".")
    raw = bytearray(_jose.b64url_decode(parts[segment]))
    raw[len(raw) // 2] ^= 0x01
    parts[segment] = _jose.b64url_encode(bytes(raw))
    with pytest.raises(CryptoError) as caught:
        open_sealed(".".join(parts), key)
    assert caught.value.message == "the sealed configuration could not be opened"


@pytest.mark.parametrize(
    "token",
    ["", "a.b.c", "....", "x..y.z.w", "e30..AAAAAAAAAAAAAAAA..AAAAAAAAAAAAAAAAAAAAAA"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(CryptoError):
        open_sealed(token, TeePrivateKey.generate())


def test_other_algorithms_are_refused() -> None:
    key = TeePrivateKey.generate()
    parts = seal(b"x", key.public_key).split(".")
    header = json.loads(_jose.b64url_decode(parts[0]))
    header["enc"] = "A128GCM"
    parts[0] = _jose.b64url_encode(json.dumps(header).encode())
    with pytest.raises(CryptoError):
        open_sealed(".".join(parts), key)


def test_public_jwk_validation() -> None:
    good = TeePrivateKey.generate().public_key.to_jwk()
    assert TeePublicKey.from_jwk(good).to_jwk() == good
    for bad in (
        {**good, "crv": "P-384"},
        {**good, "kty": "OKP"},
        {**good, "x": good["x"][:-2]},
        {**good, "y": good["x"]},  # not on the curve
        {"crv": "P-256", "kty": "EC"},
    ):
        with pytest.raises(CryptoError):
            TeePublicKey.from_jwk(bad)


def test_private_key_repr_is_redacted() -> None:
    key = TeePrivateKey.generate()
    assert key.to_private_jwk()["d"] not in repr(key)
    assert "redacted" in repr(key)
