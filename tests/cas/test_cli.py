"""The CLI commands of sessions, identities and dev services, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from sconify.dev.services import sconify_command
from sconify.session import load_session, session_hash
from tests.cas.policies import namespace
from tests.support.services import CasProcess, run_cas


def _run(
    *args: str, home: Path, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [*sconify_command(), *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_identity_show_creates_warns_and_is_stable(tmp_path: Path) -> None:
    first = _run("identity", "show", home=tmp_path)
    assert "warning" in first.stderr and "back it up" in first.stderr
    key_hash = first.stdout.strip()
    assert len(key_hash) == 64
    second = _run("identity", "show", "--json", home=tmp_path)
    assert json.loads(second.stdout)["key_hash"] == key_hash
    assert "warning" not in second.stderr
    again = _run("identity", "create", home=tmp_path, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_session_create_update_read_over_the_cli(cas: CasProcess, tmp_path: Path, ns: str) -> None:
    path = tmp_path / "ns.yml"
    path.write_text(namespace(ns))
    cas_args = ("--cas", cas.api_addr)
    created = _run("session", "create", str(path), *cas_args, home=tmp_path)
    assert created.stdout.strip() == session_hash(load_session(namespace(ns)))
    conflict = _run("session", "create", str(path), *cas_args, home=tmp_path, check=False)
    assert conflict.returncode == 1
    assert "already exists" in conflict.stderr and "hint:" in conflict.stderr

    path.write_text(namespace(ns, create_sessions="[ANY]"))
    updated = _run("session", "update", str(path), *cas_args, "--json", home=tmp_path)
    new_hash = json.loads(updated.stdout)["hash"]
    read = _run("session", "read", ns, *cas_args, "--json", home=tmp_path)
    record = json.loads(read.stdout)
    assert record["hash"] == new_hash
    assert record["predecessor"] == created.stdout.strip()
    plain = _run("session", "read", ns, *cas_args, home=tmp_path)
    assert "create_sessions: [ANY]" in plain.stdout

    stranger = tmp_path / "stranger"
    refused = _run("session", "read", ns, *cas_args, home=stranger, check=False)
    assert refused.returncode == 1 and "may not read" in refused.stderr

    wrong_pin = _run(
        "session", "read", ns, *cas_args, "--cas-key-hash", "ab" * 32, home=tmp_path, check=False
    )
    assert wrong_pin.returncode == 1 and "key hash" in wrong_pin.stderr


def test_cli_errors_for_missing_files_and_unreachable_cas(tmp_path: Path) -> None:
    missing = _run("session", "hash", str(tmp_path / "nope.yml"), home=tmp_path, check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    path = tmp_path / "ns.yml"
    path.write_text(namespace("x"))
    with run_cas(tmp_path / "gone") as gone:
        addr = gone.api_addr
    down = _run("session", "create", str(path), "--cas", addr, home=tmp_path, check=False)
    assert down.returncode == 1
    assert addr in down.stderr and "sconify dev up" in down.stderr


def test_cas_serve_reports_a_taken_port(cas: CasProcess, tmp_path: Path) -> None:
    port = cas.api_addr.rsplit(":", 1)[1]
    result = _run(
        "cas",
        "serve",
        "--state-dir",
        str(tmp_path / "second"),
        "--api-port",
        port,
        "--enclave-port",
        "0",
        home=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "hint:" in result.stderr


def test_dev_up_status_down(tmp_path: Path) -> None:
    ports = ("--api-port", "0", "--enclave-port", "0", "--las-port", "0", "--registry-port", "0")
    try:
        up = _run("dev", "up", *ports, "--json", home=tmp_path)
        services = {s["name"]: s for s in json.loads(up.stdout)}
        assert services["cas"]["running"] and services["las"]["running"]
        assert services["registry"]["running"]
        las_addr = services["las"]["address"]
        assert httpx.get(f"http://{las_addr}/v1/qe-pubkey").status_code == 200
        assert httpx.get(f"http://{services['registry']['address']}/v2/").status_code == 200
        home = tmp_path / "state" / "sconify" / "dev"
        assert (home / "cas.pid").exists() and (home / "las.log").exists()

        again = _run("dev", "up", *ports, "--json", home=tmp_path)
        assert {s["name"]: s["pid"] for s in json.loads(again.stdout)} == {
            name: s["pid"] for name, s in services.items()
        }
        status = _run("dev", "status", home=tmp_path)
        assert f"cas: running at {services['cas']['address']}" in status.stdout
        assert services["cas"]["cas_key_hash"] in status.stdout
    finally:
        down = _run("dev", "down", "--json", home=tmp_path)
    assert sorted(json.loads(down.stdout)["stopped"]) == ["cas", "las", "registry"]
    after = _run("dev", "status", "--json", home=tmp_path)
    assert not any(s["running"] for s in json.loads(after.stdout))
