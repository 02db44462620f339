"""Key and certificate secrets on a real CAS, through the real TLS APIs (client and enclave).

Generation at create, release to an attested enclave, migration on update, ``export_public``,
PEM certificates in access policies, and the attacks: no secret in errors or logs, the JWE
opens only with the TEE key, ``export_public`` never shows a private part.
"""

from __future__ import annotations

import base64
import datetime
import json
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sconify.cas.client import CasClient
from sconify.cas.enclave_client import EnclaveClient, fetch_config
from sconify.cas.identity import Identity
from sconify.crypto.jwe import TeePrivateKey, open_sealed
from sconify.errors import CasRefused, CryptoError
from sconify.las.quote import bind_report_data
from sconify.session import load_session, session_hash
from tests.cas.policies import MEASUREMENT, OTHER_MEASUREMENT, namespace
from tests.support.services import CasProcess, LasProcess

Connect = Callable[[Identity], CasClient]

PKI_SECRETS = """\
- {name: ca_key, kind: private-key, key_type: P-384, migrate: true}
- {name: ca, kind: x509-ca, private_key: ca_key, common_name: Test CA, export_public: true}
- {name: tls_key, kind: private-key, migrate: true, export_public: true}
- name: tls
  kind: x509
  private_key: tls_key
  issuer: ca
  san: ["dns:api.example.com", "ip:127.0.0.1"]
  endpoint: server
  valid_for: 30 days
  export_public: true
- {name: signing, kind: private-key, key_type: Ed25519}
- {name: password, kind: ascii, value: "%(password)s"}
"""


def _session(
    name: str, qe_key_id: str, *, password: str = "s3cret-Pa55word", extra: str = ""
) -> str:
    return (
        textwrap.dedent(
            f"""\
        name: {name}
        version: "0.3"
        services:
          - name: app
            image_name: img
            command: ["server", "--password", "$$SCONE::password$$"]
            environment:
              SIGNING_PUB: "$$SCONE::signing:publickey$$"
              MODE: "{extra or "one"}"
            attestation:
              mrenclave: [{MEASUREMENT}]
        images:
          - name: img
            injection_files:
              - {{path: /tls/server.crt, content: "$$SCONE::tls:chain$$"}}
              - {{path: /tls/server.key, content: "$$SCONE::tls:privatekey$$", permission: 0o400}}
              - {{path: /tls/signing.der, content: "$$SCONE::signing:der$$", permission: 0o400}}
        secrets:
        """
        )
        + textwrap.indent(PKI_SECRETS % {"password": password}, "  ")
        + textwrap.dedent(
            f"""\
        security:
          attestation:
            tolerate: [simulation]
            trusted_scone_qe_pubkeys: [{qe_key_id}]
        """
        )
    )


def _files(config: dict[str, Any]) -> dict[str, bytes]:
    return {f["path"]: base64.b64decode(f["content_b64"]) for f in config["injection_files"]}


@pytest.fixture
def deployed(alice: Identity, connect: Connect, ns: str, las: LasProcess) -> tuple[CasClient, str]:
    client = connect(alice)
    client.create_session(namespace(ns))
    name = f"{ns}/pki"
    text = _session(name, las.qe_key_id)
    assert client.create_session(text) == session_hash(load_session(text)), "hash predictable"
    return client, name


def _fetch(cas: CasProcess, las: LasProcess, name: str) -> dict[str, Any]:
    return fetch_config(cas.enclave_addr, cas.cas_key_hash, las.addr, f"{name}/app", MEASUREMENT)


def test_generated_certificates_reach_the_enclave_and_chain_to_the_exported_ca(
    cas: CasProcess, las: LasProcess, deployed: tuple[CasClient, str]
) -> None:
    client, name = deployed
    config = _fetch(cas, las, name)
    files = _files(config)
    leaf, ca_in_chain = x509.load_pem_x509_certificates(files["/tls/server.crt"])
    exported = client.public_values(name)
    ca = x509.load_pem_x509_certificate(exported["ca"]["value"].encode())
    assert exported["ca"]["kind"] == "x509-ca" and ca == ca_in_chain
    leaf.verify_directly_issued_by(ca)
    assert x509.load_pem_x509_certificate(exported["tls"]["value"].encode()) == leaf
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.com"]
    key = serialization.load_pem_private_key(files["/tls/server.key"], None)
    assert key.public_key() == leaf.public_key()
    assert _mode(config, "/tls/server.key") == 0o400
    signing = serialization.load_der_private_key(files["/tls/signing.der"], None)
    pub = serialization.load_pem_public_key(config["environment"]["SIGNING_PUB"].encode())
    assert signing.public_key() == pub
    assert config["command"] == ["server", "--password", "s3cret-Pa55word"]
    assert _fetch(cas, las, name) == config, "values are made once, at create"


def _mode(config: dict[str, Any], path: str) -> int:
    return next(int(f["mode"]) for f in config["injection_files"] if f["path"] == path)


def test_update_keeps_migrated_keys_and_issues_new_certificates(
    cas: CasProcess, las: LasProcess, deployed: tuple[CasClient, str]
) -> None:
    client, name = deployed
    before = _fetch(cas, las, name)
    client.update_session(_session(name, las.qe_key_id, extra="two"))
    after = _fetch(cas, las, name)
    assert after["environment"]["MODE"] == "two"
    old_files, new_files = _files(before), _files(after)
    assert new_files["/tls/server.key"] == old_files["/tls/server.key"], "migrate: true kept"
    assert new_files["/tls/signing.der"] != old_files["/tls/signing.der"], "no migrate: new key"
    old_leaf, old_ca = x509.load_pem_x509_certificates(old_files["/tls/server.crt"])
    new_leaf, new_ca = x509.load_pem_x509_certificates(new_files["/tls/server.crt"])
    assert new_leaf != old_leaf and new_ca != old_ca, "certificates are always issued anew"
    assert new_leaf.public_key() == old_leaf.public_key(), "... for the migrated key"
    assert new_ca.public_key() == old_ca.public_key()
    new_leaf.verify_directly_issued_by(new_ca)


def test_export_public_of_a_private_key_never_exports_the_private_part(
    cas: CasProcess, las: LasProcess, deployed: tuple[CasClient, str], alice: Identity
) -> None:
    client, name = deployed
    private_pem = _files(_fetch(cas, las, name))["/tls/server.key"]
    key = serialization.load_pem_private_key(private_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    values = client.public_values(name)
    assert set(values) == {"ca", "tls", "tls_key"}
    shown = values["tls_key"]
    assert shown["kind"] == "private-key"
    assert serialization.load_pem_public_key(shown["value"].encode()) == key.public_key()
    raw = json.dumps(values)
    assert "PRIVATE" not in raw
    body = b"".join(private_pem.splitlines()[1:-1]).decode()
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    for needle in (body, body[:40], scalar.hex(), base64.b64encode(scalar).decode()[:20]):
        assert needle not in raw
    assert set(client.public_values(f"{name},secret=tls_key")) == {"tls_key"}


def test_the_jwe_with_a_generated_certificate_opens_only_with_the_tee_key(
    cas: CasProcess, las: LasProcess, deployed: tuple[CasClient, str]
) -> None:
    _, name = deployed
    enclave = EnclaveClient(cas.enclave_addr, cas_key_hash=cas.cas_key_hash)
    try:
        tee = TeePrivateKey.generate()
        config_id = f"{name}/app"
        nonce = enclave.challenge(config_id)
        quote = las.client().quote(
            MEASUREMENT, bind_report_data(nonce, tee.public_key.thumbprint())
        )
        token = enclave.attest(config_id, nonce, quote, tee.public_key)
    finally:
        enclave.close()
    for segment in token.split("."):
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        assert b"BEGIN" not in decoded and b"s3cret" not in decoded
    for other in (TeePrivateKey.generate(), TeePrivateKey.generate()):
        with pytest.raises(CryptoError):
            open_sealed(token, other)
    config = json.loads(open_sealed(token, tee))
    assert b"-----BEGIN CERTIFICATE-----" in _files(config)["/tls/server.crt"]


def test_no_secret_value_in_errors_or_logs(
    cas: CasProcess,
    las: LasProcess,
    alice: Identity,
    bob: Identity,
    connect: Connect,
    ns: str,
) -> None:
    password = "Zq9-unique-password-7741"
    given = ec.generate_private_key(ec.SECP256R1())
    given_pem = given.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    other = ec.generate_private_key(ec.SECP256R1())
    client = connect(alice)
    client.create_session(namespace(ns))
    name = f"{ns}/leaky"
    extra_key = "- name: given\n  kind: private-key\n  value: |\n" + textwrap.indent(
        given_pem, "    "
    )
    text = _session(name, las.qe_key_id, password=password)
    text = text.replace("security:\n", textwrap.indent(extra_key, "  ") + "security:\n")
    client.create_session(text)
    config = _fetch(cas, las, name)
    files = _files(config)
    secrets = [
        password,
        "".join(given_pem.splitlines()[1:3]),
        "".join(files["/tls/server.key"].decode().splitlines()[1:3]),
        files["/tls/signing.der"].hex(),
        base64.b64encode(files["/tls/signing.der"]).decode(),
    ]
    messages: list[str] = []

    def refused(call: Callable[[], object]) -> None:
        with pytest.raises(CasRefused) as caught:
            call()
        messages.append(f"{caught.value.message} {caught.value.hint} {caught.value.check}")

    refused(lambda: connect(bob).read_session(name))
    refused(lambda: connect(bob).update_session(text.replace('MODE: "one"', 'MODE: "x"')))
    refused(lambda: client.create_session(text))
    refused(lambda: client.create_session(f"predecessor: {'a' * 64}\n" + text))
    cert_for_other = _session(f"{ns}/mismatch", las.qe_key_id, password=password).replace(
        "security:\n",
        textwrap.indent(_mismatched_certificate(given_pem, other), "  ") + "security:\n",
    )
    refused(lambda: client.create_session(cert_for_other))
    refused(
        lambda: fetch_config(
            cas.enclave_addr, cas.cas_key_hash, las.addr, f"{name}/app", OTHER_MEASUREMENT
        )
    )
    refused(
        lambda: client.create_session(
            text.replace(f"name: {name}", f"name: {ns}/bad").replace(
                "kind: x509\n", "kind: x509\n  bogus: 1\n"
            )
        )
    )
    assert len(messages) == 7
    log = cas.log_path.read_text(errors="replace")
    for secret in secrets:
        for message in messages:
            assert secret not in message
        assert secret not in log

    # Nor in the state directory (the database, its WAL, keys): generated and given keys, raw.
    raw_secrets = [
        password.encode(),
        files["/tls/signing.der"],
        serialization.load_pem_private_key(files["/tls/server.key"], None).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        given.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ]
    stored = [p for p in cas.state_dir.rglob("*") if p.is_file()]
    assert stored
    for path in stored:
        content = path.read_bytes()
        for needle in [*raw_secrets, *(s.encode() for s in secrets)]:
            assert needle not in content, f"a secret is readable in {path.name}"


def _mismatched_certificate(key_pem: str, other: ec.EllipticCurvePrivateKey) -> str:
    """A secret whose given certificate belongs to ``other`` but names ``key_pem``'s key."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(other.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(other, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return (
        "- name: mine\n  kind: private-key\n  value: |\n"
        + textwrap.indent(key_pem, "    ")
        + "- name: mine_crt\n  kind: x509\n  private_key: mine\n  value: |\n"
        + textwrap.indent(pem, "    ")
    )


def test_pem_certificate_entries_grant_their_key(
    alice: Identity, bob: Identity, connect: Connect, cas: CasProcess, ns: str
) -> None:
    alice_client = connect(alice)
    bob_client = connect(bob)
    bob_client.version()
    cert_path = bob.cached_cert(cas.cas_key_hash)
    assert cert_path is not None
    bob_pem = cert_path.read_text()
    name = f"{ns}-shared"
    text = (
        f'name: {name}\nversion: "0.3"\naccess_policy:\n  read:\n    - CREATOR\n    - |\n'
        + textwrap.indent(bob_pem.strip(), "      ")
        + "\n  update: [CREATOR]\n"
    )
    alice_client.create_session(text)
    assert bob_client.read_session(name).name == name
    with pytest.raises(CasRefused) as caught:
        bob_client.update_session(text)
    assert (caught.value.status, caught.value.check) == (403, "access_policy")
