"""Session inputs that used to end in a traceback: lone surrogates, deep nesting, long chains.

Each vector under ``tests/vectors/session/`` is named for its case. A refused one gives exactly
one :class:`SessionError` naming the field (in the library, which the CAS answers with as a
4xx, and in ``sconify session hash``, which exits 1 with one error and no traceback).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sconify.dev.services import sconify_command
from sconify.errors import SessionError
from sconify.session import load_session, secret_values
from sconify.session.model import MAX_CHAIN_CERTIFICATES

VECTORS = Path(__file__).parent.parent / "vectors" / "session"

#: vector -> what the error must say (the field path, or the reason when no path can be named).
REFUSED = {
    # libyaml refuses a \\u escape of a surrogate (not a character) where it stands
    "lone-surrogate-in-environment.yaml": "invalid Unicode character escape code\n"
    '  in "<unicode string>", line 9',
    "lone-surrogate-in-secret-value.yaml": "invalid Unicode character escape code\n"
    '  in "<unicode string>", line 6',
    "lone-surrogate-in-key.yaml": "invalid Unicode character escape code\n"
    '  in "<unicode string>", line 8',
    "deep-nesting-flow-5000.yaml": "maximum nesting depth",
    "deep-nesting-flow-map-5000.yaml": "nested more than 64 levels deep",
    "deep-nesting-block-40.yaml": "services[0][0]",
    "issuer-chain-1500-root-first.yaml": "secrets[10].issuer: the certificate chain of 'ca10'",
    "issuer-chain-1500-root-last.yaml": "secrets[1489].issuer: the certificate chain of 'ca10'",
    "issuer-cycle-1500.yaml": "secrets[0].issuer: the secret 'ca0' is part of a reference cycle",
}


def _text(name: str) -> str:
    return (VECTORS / name).read_text("utf-8")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_one_session_error_that_names_the_place(name: str) -> None:
    with pytest.raises(SessionError) as caught:
        load_session(_text(name))
    assert REFUSED[name] in caught.value.message
    assert caught.value.hint
    # The message and hint must themselves be text that can be sent as JSON or printed.
    caught.value.message.encode("utf-8")
    caught.value.hint.encode("utf-8")


def test_deep_nesting_the_parser_can_read_is_refused_with_its_path() -> None:
    with pytest.raises(SessionError) as caught:
        load_session(_text("deep-nesting-block-40.yaml"))
    assert "is nested more than 32 levels deep" in caught.value.message


def test_an_escaped_surrogate_pair_is_refused_and_the_character_itself_loads() -> None:
    # YAML's \\u escapes name characters; half of a UTF-16 pair is none (write \\U0001F600)
    with pytest.raises(SessionError, match="invalid Unicode character escape code"):
        load_session(_text("surrogate-pair-escaped.yaml"))
    literal = load_session(_text("surrogate-pair-literal.yaml"))
    assert literal.services[0].environment["GREETING"] == "\U0001f600"


def test_a_chain_of_the_longest_allowed_length_loads_and_is_issued() -> None:
    session = load_session(_text("issuer-chain-10.yaml"))
    values = secret_values(session)
    last = values[f"ca{MAX_CHAIN_CERTIFICATES - 1}"]
    assert last.count(b"-----BEGIN CERTIFICATE-----") == MAX_CHAIN_CERTIFICATES


def _hash_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*sconify_command(), "session", "hash", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", [*sorted(REFUSED), "not-utf8-latin1.yaml"])
def test_session_hash_gives_one_clear_error_and_exit_1(name: str) -> None:
    result = _hash_cli(VECTORS / name)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("error: ") == 1
    assert "hint: " in result.stderr


def test_session_hash_of_a_non_utf8_file_names_the_byte() -> None:
    result = _hash_cli(VECTORS / "not-utf8-latin1.yaml")
    assert "is not UTF-8 text (byte 0xe9 at offset 31)" in result.stderr
