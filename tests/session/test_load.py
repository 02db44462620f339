"""Loading session descriptions: what is accepted, normalized, and refused (by field path)."""

from __future__ import annotations

import textwrap

import pytest

from sconify.errors import SessionError
from sconify.session import CREATOR, load_session
from sconify.session.secrets import AsciiSecret, BinarySecret

M1 = "d08b7351eeb8d5c0653d32794218f183ac9c6fa3923b67052752f78a3559de61"
M2 = "1" * 64
KEY = "66e7935397249112d1148e6ce98a396a8c96b3b0ae70708c16ff284c66f0821e"
TAG = "5a0fe9bdcfed5c0391a707e05f6cfbeb"

FULL = f"""
name: my-company/flask-prod
version: "0.3.10"
access_policy:
  read: [CREATOR]
  update: [CREATOR, {"A" * 64}]
services:
  - name: flask-service
    image_name: flask-image
    attestation:
      mrenclave: [{M1}]
    mrenclaves: [{M2}]
    command: python3 /app/rest_api.py --db-pass "$$SCONE::db_password$$" 'two words'
    environment:
      LANG: C.UTF-8
      API_KEY: "$$SCONE::api_key:hex$$"
      SCONE_LOG: 7
    pwd: /app
    fspf_path: /sconify/fspf/fs.fspf
    fspf_key: {KEY}
    fspf_tag: {TAG}
images:
  - name: flask-image
    injection_files:
      - path: /tls/flask.key
        content: "$$SCONE::api_key:bin$$"
        permission: 0o400
      - path: /etc/app.conf
        content: "user=app"
secrets:
  - {{name: db_password, kind: ascii, size: 24}}
  - {{name: api_key, kind: binary, size: 32, export_public: true}}
  - {{name: fixed, kind: ascii, value: "hello"}}
security:
  attestation:
    tolerate: [simulation, debug-mode]
    trusted_scone_qe_pubkeys: [{M1}]
"""


def test_a_full_description_loads_and_normalizes() -> None:
    session = load_session(FULL)
    assert session.name == "my-company/flask-prod"
    assert session.namespace == "my-company"
    assert session.version == "0.3.10"
    assert session.access_policy.read == (CREATOR,)
    assert session.access_policy.update == (CREATOR, "a" * 64)
    assert session.access_policy.create_sessions == session.access_policy.update
    service = session.service("flask-service")
    assert service is not None
    assert service.command == (
        "python3",
        "/app/rest_api.py",
        "--db-pass",
        "$$SCONE::db_password$$",
        "two words",
    )
    assert service.mrenclaves == (M1, M2)
    assert service.environment == {
        "API_KEY": "$$SCONE::api_key:hex$$",
        "LANG": "C.UTF-8",
        "SCONE_LOG": "7",
    }
    assert service.pwd == "/app"
    assert (service.fspf_key, service.fspf_tag) == (KEY, TAG)
    image = session.image("flask-image")
    assert image is not None
    assert [f.permission for f in image.injection_files] == [0o400, 0o700]
    assert isinstance(session.secret("db_password"), AsciiSecret)
    assert isinstance(session.secret("api_key"), BinarySecret)
    fixed = session.secret("fixed")
    assert isinstance(fixed, AsciiSecret) and fixed.size == 5
    assert session.security.tolerate == ("debug-mode", "simulation")
    normalized = session.to_dict()
    assert normalized["services"][0]["attestation"] == {"mrenclave": [M1, M2]}
    assert "mrenclaves" not in normalized["services"][0]


def test_a_namespace_is_just_a_session_without_services() -> None:
    session = load_session('name: my-namespace\nversion: "0.3"\n')
    assert session.namespace is None
    assert session.services == ()
    assert session.access_policy.update == (CREATOR,)


def test_command_as_a_list_and_mrenclave_as_a_string() -> None:
    session = load_session(
        textwrap.dedent(
            f"""
            name: s
            version: "0.3"
            services:
              - name: svc
                command: ["python3", "app.py", 42]
                attestation: {{mrenclave: {M1}}}
            """
        )
    )
    service = session.services[0]
    assert service.command == ("python3", "app.py", "42")
    assert service.mrenclaves == (M1,)
    assert service.pwd == "/"


def test_numbers_keep_their_spelling() -> None:
    digits_only = "0" + "1" * 63  # YAML would read this as an integer and drop the 0
    session = load_session(
        textwrap.dedent(
            f"""
            name: s
            version: 0.3
            services:
              - name: svc
                command: app
                attestation: {{mrenclave: {digits_only}}}
            images:
              - name: i
                injection_files: [{{path: /x, content: "", permission: 0600}}]
            """
        )
    )
    assert session.version == "0.3"
    assert session.services[0].mrenclaves == (digits_only,)
    assert session.images[0].injection_files[0].permission == 0o600


def _base(extra_service: str = "", extra_top: str = "", command: str = "app") -> str:
    return (
        textwrap.dedent(
            f"""
            name: ns/s
            version: "0.3"
            services:
              - name: svc
                command: {command}
                attestation: {{mrenclave: {M1}}}
            """
        )
        + textwrap.indent(textwrap.dedent(extra_service), "    ")
        + textwrap.dedent(extra_top)
    )


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("version: '0.3'\n", "name"),
        ("name: s\n", "version"),
        ("name: s\nversion: '0.2'\n", "version"),
        ("name: 'a//b'\nversion: '0.3'\n", "name"),
        ("name: 'a/../b'\nversion: '0.3'\n", "name"),
        ("name: s\nversion: '0.3'\nvolumes: []\n", "volumes"),
        ("name: s\nversion: '0.3'\npredecessor: abc\n", "predecessor"),
        ("name: s\nversion: '0.3'\naccess_policy: {read: [someone]}\n", "access_policy.read[0]"),
        ("name: s\nversion: '0.3'\naccess_policy: {update: []}\n", "access_policy.update"),
        (
            "name: s\nversion: '0.3'\naccess_policy: {read: [NONE, ANY]}\n",
            "access_policy.read",
        ),
        (_base("environment: {A: [1]}\n"), "services[0].environment.A"),
        (_base("pwd: relative\n"), "services[0].pwd"),
        (_base("fspf_path: /f\n"), "services[0].fspf_key"),
        (_base(f"fspf_path: /f\nfspf_key: abc\nfspf_tag: {TAG}\n"), "services[0].fspf_key"),
        (_base("image_name: nowhere\n"), "services[0].image_name"),
        (_base("volumes: []\n"), "services[0].volumes"),
        (_base(command="'\"unclosed'"), "services[0].command"),
        (
            "name: s\nversion: '0.3'\nservices:\n  - {name: svc, command: app}\n",
            "services[0].attestation.mrenclave",
        ),
        (
            _base("", "secrets:\n  - {name: k, kind: pgp-key}\n"),
            "secrets[0].kind",
        ),
        (_base("", "secrets:\n  - {name: k, kind: binary, value: xyz}\n"), "secrets[0].value"),
        (_base("", "secrets:\n  - {name: k, kind: ascii, size: 0}\n"), "secrets[0].size"),
        (
            _base("", "secrets:\n  - {name: k, kind: ascii}\n  - {name: k, kind: binary}\n"),
            "secrets[1].name",
        ),
        (
            _base("environment: {A: '$$SCONE::missing$$'}\n"),
            "services[0].environment.A",
        ),
        (
            _base(
                "environment: {A: '$$SCONE::k:rot13$$'}\n", "secrets: [{name: k, kind: binary}]\n"
            ),
            "services[0].environment.A",
        ),
        (
            _base(
                "", "secrets: [{name: k, kind: binary}]\n", command="['app', '$$SCONE::k:bin$$']"
            ),
            "services[0].command[1]",
        ),
        (
            _base(
                "",
                "security: {attestation: {tolerate: [everything]}}\n",
            ),
            "security.attestation.tolerate[0]",
        ),
        (
            _base("", "security: {attestation: {mode: none}}\n"),
            "security.attestation.mode",
        ),
        (
            _base("", "images: [{name: i, injection_files: [{path: /x, permission: 0o999}]}]\n"),
            "images[0].injection_files[0].permission",
        ),
        (
            _base("", "images: [{name: i, injection_files: [/from/fspf]}]\n"),
            "images[0].injection_files[0]",
        ),
    ],
)
def test_errors_name_the_field(text: str, path: str | None) -> None:
    with pytest.raises(SessionError) as caught:
        load_session(text)
    if path is not None:
        assert caught.value.message.startswith(f"{path}:"), caught.value.message


def test_a_repeated_key_is_refused() -> None:
    with pytest.raises(SessionError, match="appears twice"):
        load_session("name: s\nversion: '0.3'\naccess_policy:\n  update: [ANY]\n  update: [NONE]\n")


@pytest.mark.parametrize("text", ["", "   \n", "name: [unclosed\n", "- a\n- b\n", "just text"])
def test_not_a_description(text: str) -> None:
    with pytest.raises(SessionError):
        load_session(text)


def test_ascii_bin_in_text_fields_is_fine() -> None:
    text = _base("", "secrets: [{name: pw, kind: ascii}]\n", command="['app', '$$SCONE::pw:bin$$']")
    assert load_session(text).services[0].command[1] == "$$SCONE::pw:bin$$"


def test_whole_placeholder_as_fspf_key() -> None:
    text = _base(
        f"fspf_path: /f\nfspf_key: $$SCONE::vk$$\nfspf_tag: {TAG}\n",
        "secrets: [{name: vk, kind: binary, size: 32}]\n",
    )
    assert load_session(text).services[0].fspf_key == "$$SCONE::vk$$"
