"""Placeholders and the configuration an attested service receives."""

from __future__ import annotations

import base64

import pytest

from sconify.errors import SessionError
from sconify.session import SecretValue, load_session, service_config, substitute_bytes
from sconify.session.secrets import AsciiSecret, BinarySecret

M = "cd" * 32
SESSION = f"""
name: ns/app
version: "0.3"
services:
  - name: svc
    image_name: img
    command: ["app", "--pw=$$SCONE::pw$$", "$$SCONE::key:base64$$"]
    environment:
      HEX: "$$SCONE::key$$"
      B32: "$$SCONE::key:base32$$"
      B32NP: "$$SCONE::key:base32nopad$$"
      URL: "$$SCONE::key:base64url$$"
      PLAIN: "no secret here $$ not one $$"
    pwd: /srv
    attestation: {{mrenclave: {M}}}
    fspf_path: /sconify/fspf/fs.fspf
    fspf_key: "$$SCONE::vk$$"
    fspf_tag: {"ef" * 16}
  - name: bare
    command: bare
    attestation: {{mrenclave: {M}}}
images:
  - name: img
    injection_files:
      - {{path: /etc/key.bin, content: "$$SCONE::key:bin$$", permission: 0o400}}
      - {{path: /etc/app.conf, content: "password=$$SCONE::pw$$\\n"}}
secrets:
  - {{name: pw, kind: ascii, value: "s3cr3t"}}
  - {{name: key, kind: binary, value: "00ff10"}}
  - {{name: vk, kind: binary, size: 32}}
"""


def _values() -> tuple[object, dict[str, SecretValue]]:
    session = load_session(SESSION)
    values = {s.name: SecretValue(s, s.initial_value()) for s in session.secrets}
    return session, values


def test_service_config_substitutes_every_placeholder() -> None:
    session, values = _values()
    config = service_config(session, "svc", values, session_hash="h" * 64)  # type: ignore[arg-type]
    assert config["command"] == ["app", "--pw=s3cr3t", base64.b64encode(b"\x00\xff\x10").decode()]
    assert config["environment"] == {
        "B32": base64.b32encode(b"\x00\xff\x10").decode(),
        "B32NP": base64.b32encode(b"\x00\xff\x10").decode().rstrip("="),
        "HEX": "00ff10",
        "PLAIN": "no secret here $$ not one $$",
        "URL": base64.urlsafe_b64encode(b"\x00\xff\x10").decode(),
    }
    assert config["fspf_key"] == values["vk"].value.hex()
    assert config["fspf_tag"] == "ef" * 16
    assert config["fspf_path"] == "/sconify/fspf/fs.fspf"
    assert config["pwd"] == "/srv"
    assert config["session_hash"] == "h" * 64
    assert config["injection_files"] == [
        {
            "content_b64": base64.b64encode(b"\x00\xff\x10").decode(),
            "mode": 0o400,
            "path": "/etc/key.bin",
        },
        {
            "content_b64": base64.b64encode(b"password=s3cr3t\n").decode(),
            "mode": 0o700,
            "path": "/etc/app.conf",
        },
    ]
    assert set(config) == {
        "command",
        "environment",
        "fspf_key",
        "fspf_path",
        "fspf_tag",
        "injection_files",
        "pwd",
        "session_hash",
    }


def test_a_service_without_volume_or_image_gets_empty_fields() -> None:
    session, values = _values()
    config = service_config(session, "bare", values, session_hash="0" * 64)  # type: ignore[arg-type]
    assert (config["fspf_path"], config["fspf_key"], config["fspf_tag"]) == ("", "", "")
    assert config["injection_files"] == []
    assert config["environment"] == {}
    assert config["pwd"] == "/"


def test_unknown_service_and_unknown_secret_are_errors() -> None:
    session, values = _values()
    with pytest.raises(SessionError):
        service_config(session, "nope", values, session_hash="0" * 64)  # type: ignore[arg-type]
    with pytest.raises(SessionError):
        substitute_bytes("$$SCONE::ghost$$", values)


def test_generated_secrets_have_their_size_and_differ() -> None:
    ascii_spec = AsciiSecret(name="a", export_public=False, size=24, value=None)
    binary_spec = BinarySecret(name="b", export_public=False, size=32, value=None)
    first, second = ascii_spec.initial_value(), ascii_spec.initial_value()
    assert len(first) == 24 and first.isascii() and first != second
    assert len(binary_spec.initial_value()) == 32
    assert binary_spec.initial_value() != binary_spec.initial_value()


def test_migration_keeps_values_unless_the_new_description_gives_one() -> None:
    old = BinarySecret(name="b", export_public=False, size=32, value=None)
    same = BinarySecret(name="b", export_public=True, size=32, value=None)
    given = BinarySecret(name="b", export_public=False, size=1, value="aa")
    other_kind = AsciiSecret(name="b", export_public=False, size=20, value=None)
    assert same.migrate(old, b"old") == b"old"
    assert given.migrate(old, b"old") is None
    assert other_kind.migrate(old, b"old") is None


def test_secret_values_do_not_show_in_repr() -> None:
    _, values = _values()
    assert "s3cr3t" not in repr(values)
