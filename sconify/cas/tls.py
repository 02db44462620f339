"""The CAS's TLS material: its own key and certificate, and the client CA for identities.

All of it lives in the state dir (keys 0600). ``cas_key_hash`` = hex SHA-256 of the DER
SubjectPublicKeyInfo of the CAS certificate: what clients and shims pin.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sconify.cas.files import load_or_create_key, write_atomic
from sconify.errors import CasRefused, ServiceError

CAS_KEY = "cas-key.pem"
CAS_CERT = "cas-cert.pem"
CLIENT_CA_KEY = "client-ca-key.pem"
CLIENT_CA_CERT = "client-ca-cert.pem"

_CAS_CERT_DAYS = 3650
CLIENT_CERT_DAYS = 365


def spki_sha256(public_key: PublicKeyTypes) -> str:
    """Hex SHA-256 of a public key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def cert_key_hash(cert_der: bytes) -> str:
    """Hex SHA-256 of the SPKI of a DER certificate (an identity, or the CAS pin)."""
    cert = x509.load_der_x509_certificate(cert_der)
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CasTls:
    """Paths and identity of one CAS's TLS material."""

    state_dir: Path
    cas_key_hash: str
    cas_cert_pem: bytes
    client_ca_pem: bytes

    @classmethod
    def load_or_create(cls, state_dir: Path) -> CasTls:
        """Load the CAS key, certificate and client CA from ``state_dir``, making missing ones."""
        key, created = load_or_create_key(state_dir / CAS_KEY)
        cert_path = state_dir / CAS_CERT
        if created or not cert_path.exists():
            write_atomic(cert_path, _pem(_self_signed_cas_cert(key)))
        ca_key, ca_created = load_or_create_key(state_dir / CLIENT_CA_KEY)
        ca_path = state_dir / CLIENT_CA_CERT
        if ca_created or not ca_path.exists():
            write_atomic(ca_path, _pem(_client_ca_cert(ca_key)))
        cas_cert_pem = cert_path.read_bytes()
        cert = x509.load_pem_x509_certificate(cas_cert_pem)
        if spki_sha256(cert.public_key()) != spki_sha256(key.public_key()):
            raise ServiceError(
                f"{cert_path} does not match {state_dir / CAS_KEY}",
                hint="restore both from the same backup, or remove the certificate to re-issue it",
            )
        return cls(
            state_dir=state_dir,
            cas_key_hash=spki_sha256(key.public_key()),
            cas_cert_pem=cas_cert_pem,
            client_ca_pem=ca_path.read_bytes(),
        )

    def api_context(self) -> ssl.SSLContext:
        """Server context of the client API: client certificates optional, from the client CA."""
        ctx = self._server_context()
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cadata=self.client_ca_pem.decode("ascii"))
        return ctx

    def enclave_context(self) -> ssl.SSLContext:
        """Server context of the enclave API: no client certificates (the quote is the proof)."""
        return self._server_context()

    def _server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.state_dir / CAS_CERT, self.state_dir / CAS_KEY)
        return ctx

    def issue_client_cert(self, csr_pem: bytes) -> bytes:
        """Sign an identity's CSR (proof of key possession checked); returns the PEM cert."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise CasRefused(
                "the enrollment request is not a PEM certificate signing request",
                status=400,
                check="csr",
            ) from None
        public = csr.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1 | ec.SECP384R1
        ):
            raise CasRefused("identities must be P-256 or P-384 keys", status=400, check="csr")
        try:
            valid = csr.is_signature_valid
        except InvalidSignature:  # pragma: no cover - older cryptography raised here
            valid = False
        if not valid:
            raise CasRefused("the CSR's signature does not verify", status=400, check="csr")
        ca_key, _ = load_or_create_key(self.state_dir / CLIENT_CA_KEY)
        ca_cert = x509.load_pem_x509_certificate(self.client_ca_pem)
        key_hash = spki_sha256(public)
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"sconify identity {key_hash[:16]}"))
            .issuer_name(ca_cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CLIENT_CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return _pem(cert)


def _self_signed_cas_cert(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = _now()
    name = _name("sconify CAS")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CAS_CERT_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _client_ca_cert(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = _now()
    name = _name("sconify CAS client CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CAS_CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
