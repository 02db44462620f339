"""Private JOSE primitives behind :mod:`sconify.crypto.jwe` (contracts.md section 7).

Only the one algorithm pair sconify speaks: ECDH-ES (direct key agreement) on P-256 with
A256GCM. Nothing here is public API; callers use the recipes in ``jwe.py``.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

from sconify.canonical import canonical_json

ALG = "ECDH-ES"
ENC = "A256GCM"
CRV = "P-256"
KTY = "EC"
COORD_LEN = 32
IV_LEN = 12
TAG_LEN = 16
CEK_BITS = 256


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of :func:`b64url_encode`: no padding, no foreign characters."""
    if "=" in text or not all(c.isalnum() or c in "-_" for c in text) or not text.isascii():
        raise ValueError("not base64url without padding")
    if len(text) % 4 == 1:
        raise ValueError("impossible base64url length")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Reject non-canonical encodings (stray low bits in the last character).
    if b64url_encode(raw) != text:
        raise ValueError("non-canonical base64url")
    return raw


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def concat_kdf_cek(shared_secret: bytes) -> bytes:
    """Derive the A256GCM content key from the ECDH secret (RFC 7518 section 4.6.2).

    AlgorithmID = len || "A256GCM", PartyUInfo = PartyVInfo = empty (length 0),
    SuppPubInfo = 256 as 32-bit big-endian.
    """
    other_info = (
        _length_prefixed(ENC.encode("ascii"))
        + _length_prefixed(b"")
        + _length_prefixed(b"")
        + struct.pack(">I", CEK_BITS)
    )
    kdf = ConcatKDFHash(algorithm=hashes.SHA256(), length=CEK_BITS // 8, otherinfo=other_info)
    return kdf.derive(shared_secret)


def public_key_to_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public JWK members of a P-256 key, 32-byte coordinates."""
    numbers = key.public_numbers()
    return {
        "crv": CRV,
        "kty": KTY,
        "x": b64url_encode(numbers.x.to_bytes(COORD_LEN, "big")),
        "y": b64url_encode(numbers.y.to_bytes(COORD_LEN, "big")),
    }


def public_key_from_jwk(jwk: Mapping[str, object]) -> ec.EllipticCurvePublicKey:
    """Parse a P-256 public JWK; raises ``ValueError`` for anything else or off-curve points."""
    if jwk.get("kty") != KTY or jwk.get("crv") != CRV:
        raise ValueError("only EC P-256 keys are accepted")
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or not isinstance(y, str):
        raise ValueError("x and y must be strings")
    xb, yb = b64url_decode(x), b64url_decode(y)
    if len(xb) != COORD_LEN or len(yb) != COORD_LEN:
        raise ValueError("coordinates must be 32 bytes")
    # from_encoded_point checks that the point lies on the curve.
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + xb + yb)


def private_key_from_jwk(jwk: Mapping[str, object]) -> ec.EllipticCurvePrivateKey:
    """Parse a P-256 private JWK (with ``d``), checking ``x``/``y`` match ``d``."""
    public = public_key_from_jwk(jwk)
    d = jwk.get("d")
    if not isinstance(d, str):
        raise ValueError("d must be a string")
    db = b64url_decode(d)
    if len(db) != COORD_LEN:
        raise ValueError("d must be 32 bytes")
    key = ec.derive_private_key(int.from_bytes(db, "big"), ec.SECP256R1())
    if key.public_key().public_numbers() != public.public_numbers():
        raise ValueError("d does not match x and y")
    return key


def thumbprint(jwk: Mapping[str, object]) -> bytes:
    """RFC 7638 SHA-256 thumbprint of a P-256 public JWK (32 raw bytes)."""
    key = public_key_from_jwk(jwk)
    members = public_key_to_jwk(key)
    text = '{{"crv":"{crv}","kty":"{kty}","x":"{x}","y":"{y}"}}'.format(**members)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(text.encode("ascii"))
    return digest.finalize()


def protected_header(epk: ec.EllipticCurvePublicKey) -> bytes:
    """The protected header bytes: canonical JSON with the sender's ephemeral key."""
    header = {"alg": ALG, "enc": ENC, "epk": public_key_to_jwk(epk)}
    return canonical_json(header)


def seal_with(
    plaintext: bytes,
    recipient: ec.EllipticCurvePublicKey,
    ephemeral: ec.EllipticCurvePrivateKey,
    iv: bytes,
) -> str:
    """Build the compact JWE with the given ephemeral key and IV (deterministic core)."""
    if len(iv) != IV_LEN:
        raise ValueError("IV must be 12 bytes")
    shared = ephemeral.exchange(ec.ECDH(), recipient)
    cek = concat_kdf_cek(shared)
    header_b64 = b64url_encode(protected_header(ephemeral.public_key()))
    sealed = AESGCM(cek).encrypt(iv, plaintext, header_b64.encode("ascii"))
    ciphertext, tag = sealed[:-TAG_LEN], sealed[-TAG_LEN:]
    return ".".join(
        [header_b64, "", b64url_encode(iv), b64url_encode(ciphertext), b64url_encode(tag)]
    )


def open_compact(token: str, recipient: ec.EllipticCurvePrivateKey) -> bytes:
    """Open a compact JWE; raises ``ValueError`` or ``InvalidTag`` on any defect."""
    parts = token.split(".")
    if len(parts) != 5:
        raise ValueError("compact JWE has five segments")
    header_b64, encrypted_key, iv_b64, ct_b64, tag_b64 = parts
    if encrypted_key != "":
        raise ValueError("ECDH-ES direct has an empty encrypted key")
    header = json.loads(b64url_decode(header_b64))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    if header.get("alg") != ALG or header.get("enc") != ENC:
        raise ValueError("unsupported alg/enc")
    if set(header) != {"alg", "enc", "epk"} or not isinstance(header["epk"], dict):
        raise ValueError("unexpected header members")
    epk = public_key_from_jwk(header["epk"])
    iv = b64url_decode(iv_b64)
    if len(iv) != IV_LEN:
        raise ValueError("IV must be 12 bytes")
    tag = b64url_decode(tag_b64)
    if len(tag) != TAG_LEN:
        raise ValueError("tag must be 16 bytes")
    cek = concat_kdf_cek(recipient.exchange(ec.ECDH(), epk))
    return AESGCM(cek).decrypt(iv, b64url_decode(ct_b64) + tag, header_b64.encode("ascii"))
