"""Key and certificate primitives behind the ``private-key``, ``x509`` and ``x509-ca`` kinds.

Stored values: a private key is its PKCS#8 DER; a certificate secret is a PEM bundle (its own
certificate, then the issuer chain up to the root, then its PKCS#8 private key when it has one).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import secrets as _random
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as _pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

#: ``key_type`` values, SCONE's spelling.
KEY_TYPES = ("P-256", "P-384", "Ed25519", "RSA-2048", "RSA-3072")

_VALID_FOR = re.compile(r"\s*(\d{1,6})\s*(hour|day|week|month|year)s?\s*")
_UNIT_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30, "year": 365}
#: Certificates generated without ``valid_for`` (SCONE does not document its default).
DEFAULT_VALIDITY_DAYS = 365
_MAX_VALIDITY_DAYS = 100 * 365


def generate_key(key_type: str) -> bytes:
    """A fresh private key of ``key_type`` as PKCS#8 DER."""
    key: PrivateKey
    if key_type == "P-256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "P-384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif key_type == "Ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type in ("RSA-2048", "RSA-3072"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    else:
        raise ValueError(f"unknown key type {key_type!r}")
    return pkcs8_der(key)


def key_type_of(key: PrivateKey) -> str | None:
    """The ``key_type`` name of ``key``, or ``None`` when it is none of :data:`KEY_TYPES`."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "P-256", "secp384r1": "P-384"}.get(key.curve.name)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size in (2048, 3072):
        return f"RSA-{key.key_size}"
    return None


def load_der_key(der: bytes) -> PrivateKey:
    """Load a PKCS#8 DER private key of a supported type."""
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, PrivateKey):
        raise ValueError("unsupported key type")
    return key


def load_pem_key(pem: bytes) -> PrivateKey:
    """Load an unencrypted PEM private key (PKCS#8 or traditional) of a supported type."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, PrivateKey):
        raise ValueError("unsupported key type")
    return key


def pkcs8_der(key: PrivateKey) -> bytes:
    """PKCS#8 DER of ``key``."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pkcs8_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM of ``key``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_der(key: PrivateKey) -> bytes:
    """SubjectPublicKeyInfo DER of ``key``'s public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_pem(key: PrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM of ``key``'s public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_hash(cert: x509.Certificate) -> str:
    """Hex SHA-256 of a certificate's SPKI DER (what access policies call a key hash)."""
    return hashlib.sha256(public_der_of_cert(cert)).hexdigest()


def parse_valid_for(text: str) -> int | None:
    """``"90 days"``, ``"1 year"``, ``"12 hours"`` -> whole hours, or ``None`` if unreadable."""
    match = _VALID_FOR.fullmatch(text.lower())
    if match is None:
        return None
    hours = round(int(match.group(1)) * _UNIT_DAYS[match.group(2)] * 24)
    if hours < 1 or hours > _MAX_VALIDITY_DAYS * 24:
        return None
    return hours


def parse_san(entry: str) -> x509.GeneralName | None:
    """``dns:name`` or ``ip:address`` -> a SubjectAltName entry, or ``None`` if malformed."""
    kind, sep, value = entry.partition(":")
    if not sep or not value:
        return None
    if kind.lower() == "dns":
        if not re.fullmatch(r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})", value):
            return None
        return x509.DNSName(value)
    if kind.lower() == "ip":
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class CertBundle:
    """A certificate secret's value: certificate, issuer chain, private key (if known)."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey | None

    def to_pem(self) -> bytes:
        """The stored form."""
        out = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.all_certs)
        return out + (pkcs8_pem(self.key) if self.key is not None else b"")

    @property
    def all_certs(self) -> tuple[x509.Certificate, ...]:
        """The certificate followed by its issuer chain."""
        return (self.certificate, *self.chain)

    @classmethod
    def from_pem(cls, pem: bytes) -> CertBundle:
        """Read a bundle: certificates (own first), then optionally one private key."""
        certs = x509.load_pem_x509_certificates(pem)
        key = None
        marker = pem.find(b"-----BEGIN PRIVATE KEY-----")
        if marker < 0:
            marker = pem.find(b"PRIVATE KEY-----")
            marker = pem.rfind(b"-----BEGIN", 0, marker) if marker >= 0 else -1
        if marker >= 0:
            key = load_pem_key(pem[marker:])
            if public_der(key) != public_der_of_cert(certs[0]):
                raise ValueError("the private key does not belong to the certificate")
        return cls(certs[0], tuple(certs[1:]), key)


@dataclass(frozen=True)
class CertRequest:
    """What a generated certificate says about its subject."""

    common_name: str
    san: tuple[x509.GeneralName, ...]
    endpoint: str | None
    is_ca: bool
    valid_hours: int


def issue(request: CertRequest, key: PrivateKey, issuer: CertBundle | None) -> CertBundle:
    """Issue a certificate for ``key``, signed by ``issuer`` or self-signed when it is absent."""
    if issuer is not None and issuer.key is None:
        raise ValueError("the issuer has no private key to sign with")
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.common_name)])
    signer = key if issuer is None or issuer.key is None else issuer.key
    issuer_name = subject if issuer is None else issuer.certificate.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(_random.token_bytes(16), "big") >> 1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=request.valid_hours))
        .add_extension(x509.BasicConstraints(ca=request.is_ca, path_length=None), critical=True)
        .add_extension(_key_usage(request.is_ca, key), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )
    if request.san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(request.san)), critical=False
        )
    if not request.is_ca:
        both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        usages = {
            "server": [ExtendedKeyUsageOID.SERVER_AUTH],
            "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
        }.get(request.endpoint or "", both)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    certificate = builder.sign(signer, _digest(signer))
    chain = () if issuer is None else issuer.all_certs
    return CertBundle(certificate, chain, key)


def _digest(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


def _key_usage(is_ca: bool, key: PrivateKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey) and not is_ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    """DER of a certificate."""
    return cert.public_bytes(serialization.Encoding.DER)


def public_der_of_cert(cert: x509.Certificate) -> bytes:
    """SubjectPublicKeyInfo DER of a certificate's key."""
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_pem_of_cert(cert: x509.Certificate) -> bytes:
    """SubjectPublicKeyInfo PEM of a certificate's key."""
    return cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pkcs12(name: str, bundle: CertBundle) -> bytes:
    """A PKCS#12 file (no password) with the key, the certificate and its issuer chain."""
    return _pkcs12.serialize_key_and_certificates(
        name.encode("utf-8"),
        bundle.key,
        bundle.certificate,
        list(bundle.chain) or None,
        serialization.NoEncryption(),
    )
