"""Key and certificate secrets: parsing, generation, formats, placeholders and migration."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import textwrap

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sconify.errors import SessionError
from sconify.session import SecretValue, Session, load_session, secret_values, service_config
from sconify.session._keys import KEY_TYPES, CertBundle, spki_hash
from sconify.session.secrets import SECRET_KINDS, CertificateSecret, PrivateKeySecret

M1 = "d08b7351eeb8d5c0653d32794218f183ac9c6fa3923b67052752f78a3559de61"


def _session(secrets: str, *, command: str = "[app]", env: str = "{}", files: str = "[]") -> str:
    return textwrap.dedent(
        f"""\
        name: s
        version: "0.3"
        services:
          - name: svc
            image_name: img
            command: {command}
            environment: {env}
            attestation: {{mrenclave: {M1}}}
        images:
          - name: img
            injection_files: {files}
        secrets:
        """
    ) + textwrap.indent(textwrap.dedent(secrets), "  ")


PKI = """\
- {name: ca_key, kind: private-key, key_type: P-384, migrate: true}
- {name: ca, kind: x509-ca, private_key: ca_key, common_name: "Test CA", export_public: true}
- {name: leaf_key, kind: private-key, key_type: Ed25519, migrate: true}
- name: leaf
  kind: x509
  private_key: leaf_key
  issuer: ca
  common_name: api.example.com
  san: ["dns:api", "ip:10.0.0.1"]
  dns: [flask.example.com]
  endpoint: server
  valid_for: 90 days
- {name: client, kind: x509, issuer: ca, endpoint: client}
"""


def _config(session: Session, values: dict[str, bytes]) -> dict[str, object]:
    secrets = {spec.name: SecretValue(spec, values[spec.name]) for spec in session.secrets}
    return service_config(session, "svc", secrets, session_hash="0" * 64)


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_new_kinds_are_registered() -> None:
    assert SECRET_KINDS["private-key"] is PrivateKeySecret
    assert SECRET_KINDS["x509"] is CertificateSecret
    assert issubclass(SECRET_KINDS["x509-ca"], CertificateSecret)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_private_keys_of_every_type_render_in_every_format(key_type: str) -> None:
    session = load_session(_session(f"- {{name: k, kind: private-key, key_type: {key_type}}}\n"))
    spec = session.secrets[0]
    value = secret_values(session)["k"]
    key = serialization.load_der_private_key(value, None)
    expected = {
        "P-256": ec.EllipticCurvePrivateKey,
        "P-384": ec.EllipticCurvePrivateKey,
        "Ed25519": ed25519.Ed25519PrivateKey,
        "RSA-2048": rsa.RSAPrivateKey,
        "RSA-3072": rsa.RSAPrivateKey,
    }[key_type]
    assert isinstance(key, expected)
    pem = spec.render(value, None)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----") and pem == spec.render(value, "pem")
    assert spec.render(value, "pkcs8:pem") == pem
    assert spec.render(value, "der") == spec.render(value, "pkcs8:der") == value
    public = serialization.load_pem_public_key(spec.render(value, "publickey"))
    assert public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == spec.render(value, "publickey:der")
    assert spec.public_value(value).startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in spec.public_value(value)


def test_p256_is_the_default_key_type() -> None:
    session = load_session(_session("- {name: k, kind: private-key}\n"))
    key = serialization.load_der_private_key(secret_values(session)["k"], None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert session.to_dict()["secrets"][0] == {
        "export_public": False,
        "key_type": "P-256",
        "kind": "private-key",
        "migrate": False,
        "name": "k",
    }


def test_a_given_private_key_is_used_as_is() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    text = _session(
        "- name: k\n  kind: private-key\n  key_type: P-384\n  value: |\n"
        + textwrap.indent(pem, "    ")
    )
    session = load_session(text)
    value = secret_values(session)["k"]
    assert value == key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_certificates_form_a_verifiable_chain() -> None:
    session = load_session(_session(PKI))
    values = secret_values(session)
    ca = CertBundle.from_pem(values["ca"])
    leaf = CertBundle.from_pem(values["leaf"])
    client = CertBundle.from_pem(values["client"])

    assert ca.chain == () and ca.certificate.issuer == ca.certificate.subject
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca_key = serialization.load_der_private_key(values["ca_key"], None)
    assert ca.key is not None and ca.key.private_numbers() == ca_key.private_numbers()  # type: ignore[union-attr]

    assert leaf.chain == (ca.certificate,)
    leaf.certificate.verify_directly_issued_by(ca.certificate)
    client.certificate.verify_directly_issued_by(ca.certificate)
    subject = leaf.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert subject == "api.example.com"
    san = leaf.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api", "flask.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    usage = leaf.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client_usage = client.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(client_usage.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = leaf.certificate.not_valid_after_utc - leaf.certificate.not_valid_before_utc
    assert datetime.timedelta(days=90) <= lifetime <= datetime.timedelta(days=90, minutes=10)
    leaf_key = serialization.load_der_private_key(values["leaf_key"], None)
    assert leaf.certificate.public_key() == leaf_key.public_key()


def test_certificate_formats_in_placeholders() -> None:
    files = (
        '[{path: /tls/crt.der, content: "$$SCONE::leaf:crt:der$$"},'
        ' {path: /tls/key.pem, content: "$$SCONE::leaf:privatekey$$", permission: 0o400},'
        ' {path: /tls/chain.pem, content: "$$SCONE::leaf:chain$$"}]'
    )
    text = _session(
        PKI,
        command='[app, "--cert=$$SCONE::leaf$$"]',
        env='{CA: "$$SCONE::ca:crt$$", PUB: "$$SCONE::leaf_key:publickey$$"}',
        files=files,
    )
    session = load_session(text)
    values = secret_values(session)
    config = _config(session, values)
    leaf = CertBundle.from_pem(values["leaf"])
    ca = CertBundle.from_pem(values["ca"])
    command = config["command"]
    assert isinstance(command, list)
    assert _cert(command[1].removeprefix("--cert=").encode()) == leaf.certificate
    env = config["environment"]
    assert isinstance(env, dict)
    assert _cert(env["CA"].encode()) == ca.certificate
    assert serialization.load_pem_public_key(env["PUB"].encode()) == leaf.certificate.public_key()
    injected = config["injection_files"]
    assert isinstance(injected, list)
    der, key_pem, chain = (base64.b64decode(item["content_b64"]) for item in injected)
    assert x509.load_der_x509_certificate(der) == leaf.certificate
    assert injected[1]["mode"] == 0o400
    assert key_pem == leaf.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert x509.load_pem_x509_certificates(chain) == [leaf.certificate, ca.certificate]


def test_export_public_of_certificates_shows_the_certificate_only() -> None:
    session = load_session(_session(PKI))
    values = secret_values(session)
    spec = session.secret("ca")
    assert spec is not None
    shown = spec.public_value(values["ca"])
    assert _cert(shown.encode()) == CertBundle.from_pem(values["ca"]).certificate
    assert "PRIVATE" not in shown


def test_migration_rules_on_update() -> None:
    text = PKI + "- {name: pw, kind: ascii}\n- {name: plain_key, kind: private-key}\n"
    old = load_session(_session(text))
    old_values = secret_values(old)
    changed = text.replace("key_type: Ed25519, migrate: true", "key_type: Ed25519")
    new = load_session(_session(changed))
    new_values = secret_values(new, (old, old_values))

    assert new_values["pw"] == old_values["pw"], "ascii kept (name and kind match)"
    assert new_values["ca_key"] == old_values["ca_key"], "migrate on both sides: kept"
    assert new_values["leaf_key"] != old_values["leaf_key"], "migrate only on the old side"
    assert new_values["plain_key"] != old_values["plain_key"], "no migrate: regenerated"
    for name in ("ca", "leaf", "client"):
        assert new_values[name] != old_values[name], f"{name}: certificates are always new"
    new_ca = CertBundle.from_pem(new_values["ca"])
    old_ca = CertBundle.from_pem(old_values["ca"])
    assert new_ca.certificate.serial_number != old_ca.certificate.serial_number
    assert new_ca.certificate.public_key() == old_ca.certificate.public_key(), "kept key"
    CertBundle.from_pem(new_values["leaf"]).certificate.verify_directly_issued_by(
        new_ca.certificate
    )

    retyped = load_session(
        _session(text.replace("key_type: P-384, migrate", "key_type: P-256, migrate"))
    )
    assert secret_values(retyped, (old, old_values))["ca_key"] != old_values["ca_key"]


def test_a_given_certificate_is_kept_with_its_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = load_session(_session("- {name: k, kind: private-key}\n- {name: c, kind: x509-ca}\n"))
    given = CertBundle.from_pem(secret_values(first)["c"])
    assert given.key is not None
    bundle = given.to_pem().decode()
    text = _session("- name: c\n  kind: x509\n  value: |\n" + textwrap.indent(bundle, "    "))
    session = load_session(text)
    assert CertBundle.from_pem(secret_values(session)["c"]).certificate == given.certificate

    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_only = bundle[: bundle.index("-----BEGIN PRIVATE KEY")]
    mismatch = _session(
        "- name: k\n  kind: private-key\n  value: |\n"
        + textwrap.indent(key_pem, "    ")
        + "- name: c\n  kind: x509\n  private_key: k\n  value: |\n"
        + textwrap.indent(cert_only, "    ")
    )
    with pytest.raises(SessionError) as caught:
        secret_values(load_session(mismatch))
    assert "does not belong" in caught.value.message
    assert "BEGIN" not in caught.value.message


@pytest.mark.parametrize(
    ("secrets", "path"),
    [
        ("- {name: k, kind: private-key, key_type: P-521}\n", "secrets[0].key_type"),
        ("- {name: k, kind: private-key, migrate: yes-please}\n", "secrets[0].migrate"),
        ("- {name: k, kind: private-key, value: not-a-key}\n", "secrets[0].value"),
        ("- {name: k, kind: private-key, size: 3}\n", "secrets[0].size"),
        ("- {name: c, kind: x509, private_key: nope}\n", "secrets[0].private_key"),
        (
            "- {name: a, kind: ascii}\n- {name: c, kind: x509, private_key: a}\n",
            "secrets[1].private_key",
        ),
        (
            "- {name: k, kind: private-key}\n- {name: c, kind: x509, issuer: k}\n",
            "secrets[1].issuer",
        ),
        ("- {name: c, kind: x509-ca, issuer: c}\n", "secrets[0].issuer"),
        (
            "- {name: a, kind: x509-ca, issuer: b}\n- {name: b, kind: x509-ca, issuer: a}\n",
            "secrets[0].issuer",
        ),
        ('- {name: c, kind: x509, san: ["email:a@b"]}\n', "secrets[0].san[0]"),
        ('- {name: c, kind: x509, san: ["ip:300.1.1.1"]}\n', "secrets[0].san[0]"),
        ('- {name: c, kind: x509, dns: ["bad name"]}\n', "secrets[0].dns[0]"),
        ("- {name: c, kind: x509, endpoint: both}\n", "secrets[0].endpoint"),
        ("- {name: c, kind: x509, valid_for: forever}\n", "secrets[0].valid_for"),
        ("- {name: c, kind: x509, valid_for: 200 years}\n", "secrets[0].valid_for"),
        ("- {name: c, kind: x509, value: garbage}\n", "secrets[0].value"),
        ('- {name: c, kind: x509, common_name: ""}\n', "secrets[0].common_name"),
        ("- {name: c, kind: x509, key_type: P-256}\n", "secrets[0].key_type"),
    ],
)
def test_errors_name_the_field(secrets: str, path: str) -> None:
    with pytest.raises(SessionError) as caught:
        load_session(_session(secrets))
    assert caught.value.message.startswith(f"{path}:"), caught.value.message


@pytest.mark.parametrize(
    ("command", "env", "path", "problem"),
    [
        ('[app, "$$SCONE::k:der$$"]', "{}", "services[0].command[1]", "binary format"),
        ("[app]", '{X: "$$SCONE::c:crt:der$$"}', "services[0].environment.X", "binary format"),
        ('[app, "$$SCONE::c:hex$$"]', "{}", "services[0].command[1]", "unknown format"),
        ('[app, "$$SCONE::k:crt$$"]', "{}", "services[0].command[1]", "unknown format"),
    ],
)
def test_placeholder_formats_are_checked_per_kind(
    command: str, env: str, path: str, problem: str
) -> None:
    secrets = "- {name: k, kind: private-key}\n- {name: c, kind: x509, private_key: k}\n"
    with pytest.raises(SessionError) as caught:
        load_session(_session(secrets, command=command, env=env))
    assert caught.value.message.startswith(f"{path}:") and problem in caught.value.message


def test_access_policy_takes_pem_certificates_as_their_key_hash() -> None:
    session = load_session(_session("- {name: c, kind: x509-ca}\n"))
    certificate = CertBundle.from_pem(secret_values(session)["c"]).certificate
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    text = (
        'name: p\nversion: "0.3"\naccess_policy:\n  read:\n    - |\n'
        + textwrap.indent(pem, "      ")
        + "  update: [CREATOR]\n"
    )
    policy = load_session(text).access_policy
    assert policy.read == (spki_hash(certificate),)
    assert policy.allows("read", spki_hash(certificate), creator="0" * 64)
    bad = (
        'name: p\nversion: "0.3"\naccess_policy:\n  read: ["-----BEGIN CERTIFICATE-----\\nAAAA"]\n'
    )
    with pytest.raises(SessionError) as caught:
        load_session(bad)
    assert caught.value.message.startswith("access_policy.read[0]:")


def test_given_values_stay_out_of_repr() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    text = _session(
        "- {name: pw, kind: ascii, value: hunter2-hunter2}\n"
        "- name: k\n  kind: private-key\n  value: |\n" + textwrap.indent(pem, "    ")
    )
    shown = repr(load_session(text))
    assert "hunter2-hunter2" not in shown and pem.splitlines()[1] not in shown


def test_a_corrupt_stored_value_fails_as_value_error() -> None:
    # The CAS maps ValueError at release to a 500 `config` refusal that holds no value.
    session = load_session(_session(PKI))
    for name in ("ca_key", "ca"):
        spec = session.secret(name)
        assert spec is not None
        with pytest.raises(ValueError):
            spec.render(b"garbage", None)


def test_pkcs12_with_private_key_holds_key_certificate_and_chain() -> None:
    files = '[{path: /tls/leaf.p12, content: "$$SCONE::leaf:pkcs12-with-private-key$$"}]'
    session = load_session(_session(PKI, files=files))
    values = secret_values(session)
    config = _config(session, values)
    injected = config["injection_files"]
    assert isinstance(injected, list)
    key, certificate, extra = pkcs12.load_key_and_certificates(
        base64.b64decode(injected[0]["content_b64"]), None
    )
    leaf = CertBundle.from_pem(values["leaf"])
    assert certificate == leaf.certificate and extra == list(leaf.chain)
    assert key is not None and key.public_key() == leaf.certificate.public_key()
    with pytest.raises(SessionError) as caught:
        load_session(_session(PKI, command='[app, "$$SCONE::leaf:pkcs12-with-private-key$$"]'))
    assert "binary format" in caught.value.message
