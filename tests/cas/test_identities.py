"""Enrollment (EST style) and identities: a caller is the hash of its key."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from sconify.cas.client import CasClient
from sconify.cas.identity import Identity, default_identity_path
from sconify.cas.pinning import pinned_context
from sconify.cas.tls import spki_sha256
from sconify.errors import ServiceError
from tests.cas.policies import namespace
from tests.support.services import CasProcess


def test_default_identity_is_created_once_and_private(user_dirs: Path) -> None:
    first, created = Identity.load_or_create()
    again, created_again = Identity.load_or_create()
    assert created and not created_again
    assert first.path == default_identity_path() == user_dirs / "config/sconify/identity.pem"
    assert first.key_hash == again.key_hash == spki_sha256(first.key.public_key())
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert "PRIVATE" not in repr(first)


def test_create_refuses_to_overwrite(user_dirs: Path) -> None:
    Identity.create()
    with pytest.raises(ServiceError) as caught:
        Identity.create()
    assert caught.value.hint and "update rights" in caught.value.hint


def test_an_identity_readable_by_others_is_refused(tmp_path: Path) -> None:
    identity, _ = Identity.load_or_create(tmp_path / "id.pem")
    identity.path.chmod(0o644)
    with pytest.raises(ServiceError, match="readable by others"):
        Identity.load(identity.path)


def test_enrollment_issues_a_cert_for_the_key_and_caches_it(
    cas: CasProcess, alice: Identity, connect: Callable[[Identity], CasClient], ns: str
) -> None:
    client = connect(alice)
    client.create_session(namespace(ns))
    cert_path = alice.cached_cert(cas.cas_key_hash)
    assert cert_path is not None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert spki_sha256(cert.public_key()) == alice.key_hash
    ca = x509.load_pem_x509_certificate((cas.state_dir / "client-ca-cert.pem").read_bytes())
    cert.verify_directly_issued_by(ca)


def test_a_renewed_certificate_keeps_the_identity(
    cas: CasProcess, alice: Identity, connect: Callable[[Identity], CasClient], ns: str
) -> None:
    connect(alice).create_session(namespace(ns))
    cert_path = alice.cached_cert(cas.cas_key_hash)
    assert cert_path is not None
    old = cert_path.read_bytes()
    cert_path.unlink()
    renewed = connect(alice)
    assert renewed.read_session(ns).name == ns
    new_path = alice.cached_cert(cas.cas_key_hash)
    assert new_path is not None and new_path.read_bytes() != old


def test_enrollment_refuses_garbage_and_foreign_keys(cas: CasProcess) -> None:
    cert = (cas.state_dir / "cas-cert.pem").read_bytes()
    with httpx.Client(base_url=f"https://{cas.api_addr}", verify=pinned_context(cert)) as http:
        response = http.post("/v1/identities", content=b"not a csr")
        assert response.status_code == 400
        assert response.json()["error"]["check"] == "csr"


def test_no_client_certificate_means_no_session_rights(cas: CasProcess) -> None:
    cert = (cas.state_dir / "cas-cert.pem").read_bytes()
    with httpx.Client(base_url=f"https://{cas.api_addr}", verify=pinned_context(cert)) as http:
        response = http.post("/v1/sessions", content=b'name: x\nversion: "0.3"\n')
        assert response.status_code == 401
        assert response.json()["error"]["check"] == "identity"
        response = http.get("/v1/sessions/x")
        assert response.status_code == 401
