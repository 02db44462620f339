"""The session hash: stable over spelling, sensitive to meaning, equal in the CLI."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from sconify.canonical import canonical_json
from sconify.dev.services import sconify_command
from sconify.session import load_session, session_hash

M = "ab" * 32

BASE = f"""
name: ns/app
version: "0.3"
services:
  - name: svc
    command: python3 app.py
    environment: {{B: "2", A: "1"}}
    attestation: {{mrenclave: {M}}}
security:
  attestation:
    tolerate: [simulation, debug-mode]
"""

SAME_MEANING = f"""
# comments, order, flow style and defaults spelled out do not matter
version: "0.3"
name: ns/app
access_policy: {{read: [CREATOR], update: [CREATOR]}}
security: {{attestation: {{tolerate: [debug-mode, simulation]}}}}
services:
  - attestation:
      mrenclave: [{M.upper()}]
    environment:
      A: "1"
      B: "2"
    command: [python3, app.py]
    pwd: /
    name: svc
"""


def test_hash_is_sha256_of_the_canonical_normalized_form() -> None:
    session = load_session(BASE)
    expected = hashlib.sha256(canonical_json(session.to_dict())).hexdigest()
    assert session_hash(session) == expected
    assert len(expected) == 64


def test_equivalent_spellings_hash_alike() -> None:
    assert session_hash(load_session(BASE)) == session_hash(load_session(SAME_MEANING))


def test_meaningful_changes_change_the_hash() -> None:
    base = session_hash(load_session(BASE))
    variants = [
        BASE.replace("python3 app.py", "python3 other.py"),
        BASE.replace('A: "1"', 'A: "x"'),
        BASE.replace("[simulation, debug-mode]", "[simulation]"),
        BASE.replace("ns/app", "ns/app2"),
        BASE + f"predecessor: {'0' * 64}\n",
    ]
    hashes = {session_hash(load_session(v)) for v in variants}
    assert base not in hashes
    assert len(hashes) == len(variants)


def test_cli_prints_the_same_hash(tmp_path: Path) -> None:
    path = tmp_path / "session.yml"
    path.write_text(BASE)
    result = subprocess.run(
        [*sconify_command(), "session", "hash", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == session_hash(load_session(BASE))


def test_cli_reports_an_invalid_file_with_the_field(tmp_path: Path) -> None:
    path = tmp_path / "session.yml"
    path.write_text(BASE.replace("command: python3 app.py", "command: []"))
    result = subprocess.run(
        [*sconify_command(), "session", "hash", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "services[0].command" in result.stderr
    assert result.stdout == ""
