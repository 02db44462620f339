"""Seal a configuration to a TEE's ephemeral key: compact JWE, ECDH-ES + A256GCM.

The CAS seals the service configuration with :func:`seal` to the P-256 key the shim generated
for one attestation; only the holder of that key can :func:`open_sealed` it. The byte format is
contracts.md section 7.4 (the Go shim checks it against ``tests/vectors/jwe/cases.json``).

Every failure to open raises the same :class:`~sconify.errors.CryptoError`: no oracle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec

from sconify.crypto import _jose
from sconify.errors import CryptoError

__all__ = ["TeePrivateKey", "TeePublicKey", "open_sealed", "seal"]


@dataclass(frozen=True)
class TeePublicKey:
    """A TEE's ephemeral P-256 public key, as the shim sends it (a JWK)."""

    key: ec.EllipticCurvePublicKey

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, object]) -> TeePublicKey:
        """Parse ``{"crv":"P-256","kty":"EC","x","y"}``; the point must lie on the curve."""
        try:
            return cls(_jose.public_key_from_jwk(jwk))
        except (ValueError, TypeError) as err:
            raise CryptoError(
                f"TEE public key is not a P-256 JWK: {err}",
                hint="send {crv: P-256, kty: EC, x, y} with 32-byte base64url coordinates",
            ) from None

    def to_jwk(self) -> dict[str, str]:
        """The public JWK (``crv``, ``kty``, ``x``, ``y``)."""
        return _jose.public_key_to_jwk(self.key)

    def thumbprint(self) -> bytes:
        """RFC 7638 SHA-256 thumbprint (32 bytes), bound into the quote's report data."""
        return _jose.thumbprint(self.to_jwk())


class TeePrivateKey:
    """The private half of a TEE key. Its ``repr`` never shows the scalar."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise CryptoError(
                "TEE key must be P-256", hint="generate it with TeePrivateKey.generate()"
            )
        self._key = key

    @classmethod
    def generate(cls) -> TeePrivateKey:
        """A fresh ephemeral key, as the shim makes one per attestation."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, object]) -> TeePrivateKey:
        """Parse a private JWK (``d`` plus matching ``x``/``y``)."""
        try:
            return cls(_jose.private_key_from_jwk(jwk))
        except (ValueError, TypeError) as err:
            raise CryptoError(
                f"TEE private key is not a P-256 JWK: {err}",
                hint="give crv, kty, x, y and d as 32-byte base64url values",
            ) from None

    @property
    def public_key(self) -> TeePublicKey:
        """The matching public key."""
        return TeePublicKey(self._key.public_key())

    def to_private_jwk(self) -> dict[str, str]:
        """The private JWK including ``d`` (for test vectors; handle with care)."""
        jwk = _jose.public_key_to_jwk(self._key.public_key())
        scalar = self._key.private_numbers().private_value
        jwk["d"] = _jose.b64url_encode(scalar.to_bytes(_jose.COORD_LEN, "big"))
        return jwk

    @property
    def ec_key(self) -> ec.EllipticCurvePrivateKey:
        """The underlying ``cryptography`` key."""
        return self._key

    def __repr__(self) -> str:
        return f"TeePrivateKey(<redacted>, thumbprint={self.public_key.thumbprint().hex()[:16]}..)"


def seal(plaintext: bytes, recipient: TeePublicKey) -> str:
    """Encrypt ``plaintext`` to ``recipient``: a compact JWE with a fresh ephemeral key and IV."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    return _jose.seal_with(plaintext, recipient.key, ephemeral, os.urandom(_jose.IV_LEN))


def open_sealed(token: str, key: TeePrivateKey) -> bytes:
    """Decrypt a compact JWE made by :func:`seal`; any defect raises the same error."""
    try:
        return _jose.open_compact(token, key.ec_key)
    except (ValueError, TypeError, KeyError, InvalidTag):
        raise CryptoError(
            "the sealed configuration could not be opened",
            hint="it was sealed to another key, or it was altered in transit",
        ) from None
