"""A caller's identity towards a CAS: a P-256 key, enrolled per CAS for a client certificate.

The identity *is* the key: ``key_hash`` (hex SHA-256 of its SPKI DER) is what access policies
name, so certificates can be renewed freely. The default key lives at
``$XDG_CONFIG_HOME/sconify/identity.pem`` (0600); certificates are cached beside it in
``identity.certs/<cas key hash>.pem``. Losing the key loses the update rights it holds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sconify.cas.files import load_or_create_key, read_private, write_atomic
from sconify.cas.tls import spki_sha256
from sconify.errors import ServiceError

log = logging.getLogger(__name__)

#: A cached certificate is renewed when it expires within this margin.
RENEW_MARGIN = dt.timedelta(days=1)


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/sconify`` (``~/.config/sconify`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sconify"


def default_identity_path() -> Path:
    """Where the default identity key lives."""
    return config_dir() / "identity.pem"


@dataclass(frozen=True)
class Identity:
    """A P-256 key file and its hash. ``repr`` never shows the key."""

    path: Path
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def key_hash(self) -> str:
        """Hex SHA-256 of the public key's SPKI DER: what access policies list."""
        return spki_sha256(self.key.public_key())

    @classmethod
    def load(cls, path: Path) -> Identity:
        """Load an existing identity key (PEM, PKCS#8 or SEC1)."""
        if not path.exists():
            raise ServiceError(
                f"no identity at {path}",
                hint="create one with `sconify identity create`, or pass --identity",
            )
        try:
            key = serialization.load_pem_private_key(read_private(path), password=None)
        except ValueError:
            raise ServiceError(
                f"{path} does not hold a PEM private key", hint="pass the right --identity file"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1 | ec.SECP384R1
        ):
            raise ServiceError(f"{path} is not a P-256 or P-384 key", hint="create a P-256 key")
        return cls(path, key)

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> tuple[Identity, bool]:
        """Load ``path`` (default: the user's identity), creating it if missing.

        Returns ``(identity, created)``. A new identity is logged as a warning: whoever
        loses it loses the update rights of every session it created.
        """
        target = path or default_identity_path()
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key, created = load_or_create_key(target)
        identity = cls.load(target) if not created else cls(target, key)
        if created:
            log.info(
                "created a new identity %s at %s: back it up, losing it loses update rights",
                identity.key_hash,
                target,
            )
        return identity, created

    @classmethod
    def create(cls, path: Path | None = None) -> Identity:
        """Create a new identity key; refuses to overwrite an existing one."""
        target = path or default_identity_path()
        if target.exists():
            raise ServiceError(
                f"an identity already exists at {target}",
                hint="keep it (it holds your update rights), or choose another --identity path",
            )
        identity, _ = cls.load_or_create(target)
        return identity

    def csr_pem(self) -> bytes:
        """A certificate signing request for enrollment (proves possession of the key)."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sconify {self.key_hash[:16]}")])
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(name)
            .sign(self.key, hashes.SHA256())
        )
        return csr.public_bytes(serialization.Encoding.PEM)

    def cert_path(self, cas_key_hash: str) -> Path:
        """Where the certificate issued by the CAS ``cas_key_hash`` is cached."""
        return self.path.with_name(self.path.stem + ".certs") / f"{cas_key_hash}.pem"

    def cached_cert(self, cas_key_hash: str) -> Path | None:
        """The cached certificate for that CAS, if present, for this key and not expiring."""
        path = self.cert_path(cas_key_hash)
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            return None
        if spki_sha256(cert.public_key()) != self.key_hash:
            return None
        if cert.not_valid_after_utc - RENEW_MARGIN < dt.datetime.now(dt.UTC):
            return None
        return path

    def store_cert(self, cas_key_hash: str, cert_pem: bytes) -> Path:
        """Cache a certificate issued by that CAS; returns its path."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        if spki_sha256(cert.public_key()) != self.key_hash:
            raise ServiceError(
                "the CAS issued a certificate for another key",
                hint="this is not a sconify CAS, or it is broken",
            )
        path = self.cert_path(cas_key_hash)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, cert_pem)
        return path
