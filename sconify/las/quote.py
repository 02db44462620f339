"""The simulated quote: its canonical bytes, the quoting key, signing and verifying."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sconify.canonical import canonical_json

QUOTE_TYPE = "sconify-sim-quote"
QUOTE_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_FIELDS = {"debug", "issued_at", "mrenclave", "qe_key_id", "report_data", "type", "version"}


def is_hex(text: object, nbytes: int) -> bool:
    """Whether ``text`` is exactly ``nbytes`` bytes in lower-case hex."""
    pattern = _HEX64 if nbytes == 32 else _HEX128 if nbytes == 64 else None
    if pattern is None:
        raise ValueError("only 32 and 64 bytes are used")
    return isinstance(text, str) and pattern.fullmatch(text) is not None


@dataclass(frozen=True)
class SimQuote:
    """The content of a quote. ``report_data`` is 64 bytes as 128 hex digits."""

    mrenclave: str
    report_data: str
    qe_key_id: str
    debug: bool
    issued_at: int

    def to_bytes(self) -> bytes:
        """The exact bytes the quoting key signs: canonical JSON."""
        return canonical_json(
            {
                "debug": self.debug,
                "issued_at": self.issued_at,
                "mrenclave": self.mrenclave,
                "qe_key_id": self.qe_key_id,
                "report_data": self.report_data,
                "type": QUOTE_TYPE,
                "version": QUOTE_VERSION,
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> SimQuote:
        """Read quote bytes; ``ValueError`` names what is malformed."""
        try:
            raw: Any = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("the quote is not JSON") from None
        if not isinstance(raw, dict) or set(raw) != _FIELDS:
            raise ValueError("the quote does not have exactly the expected fields")
        if raw["type"] != QUOTE_TYPE or raw["version"] != QUOTE_VERSION:
            raise ValueError(f"the quote is not a {QUOTE_TYPE} version {QUOTE_VERSION}")
        if not isinstance(raw["debug"], bool):
            raise ValueError("debug must be a boolean")
        issued = raw["issued_at"]
        if isinstance(issued, bool) or not isinstance(issued, int) or issued < 0:
            raise ValueError("issued_at must be a non-negative integer")
        if not is_hex(raw["mrenclave"], 32) or not is_hex(raw["qe_key_id"], 32):
            raise ValueError("mrenclave and qe_key_id must be 64 lower-case hex digits")
        if not is_hex(raw["report_data"], 64):
            raise ValueError("report_data must be 128 lower-case hex digits")
        return cls(
            mrenclave=raw["mrenclave"],
            report_data=raw["report_data"],
            qe_key_id=raw["qe_key_id"],
            debug=raw["debug"],
            issued_at=issued,
        )


def public_pem(key: ec.EllipticCurvePublicKey) -> str:
    """SPKI PEM text of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def load_qe_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """Parse a quoting key's PEM; ``ValueError`` unless it is a P-256 public key."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not a P-256 key")
    return key


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ASN.1 DER ECDSA P-256/SHA-256 signature."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def signature_valid(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (DER) by ``key`` covers ``data``."""
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def bind_report_data(nonce_hex: str, tee_thumbprint: bytes) -> bytes:
    """The 64-byte report data that binds a CAS nonce and a TEE key (contracts.md 7.2).

    ``SHA-256(nonce bytes || JWK thumbprint bytes) || 32 zero bytes``; the nonce bytes are
    the 32 bytes its 64 hex digits encode.
    """
    return hashlib.sha256(bytes.fromhex(nonce_hex) + tee_thumbprint).digest() + bytes(32)
