"""Real CAS and LAS processes for tests: ``sconify cas serve`` / ``sconify las serve`` on port 0.

::

    with run_las(tmp_path / "las") as las, run_cas(tmp_path / "cas") as cas:
        LasClient(las.addr).qe_pubkey()
        cas.api_addr, cas.enclave_addr, cas.cas_key_hash

Each helper starts the real command in its own process group, waits for ``ready.json`` (which
the server writes once its sockets listen), and stops what it started. Fixtures ``las`` and
``cas`` (session scoped) and ``fresh_cas`` (per test) are defined here for conftest files to
import.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from sconify.cas.client import CasClient
from sconify.cas.identity import Identity
from sconify.dev.services import log_tail, sconify_command, wait_ready
from sconify.las.client import LasClient

READY_TIMEOUT = 60.0


@dataclass
class _Process:
    state_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    ready: dict[str, Any]

    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (clean shutdown), SIGKILL if it does not end within 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """The server's log so far (for assertion messages)."""
        return log_tail(self.log_path, 200)

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class LasProcess(_Process):
    """A running LAS; ``addr`` is ``127.0.0.1:<port>``."""

    addr: str = ""
    qe_key_id: str = ""

    def client(self) -> LasClient:
        """A client of this LAS."""
        return LasClient(self.addr)


@dataclass
class CasProcess(_Process):
    """A running CAS: client API ``api_addr``, enclave API ``enclave_addr``."""

    api_addr: str = ""
    enclave_addr: str = ""
    cas_key_hash: str = ""

    def client(self, identity: Identity, *, pins_file: Path | None = None) -> CasClient:
        """A client of this CAS pinned to its real key hash."""
        return CasClient(
            self.api_addr,
            identity=identity,
            pinned_key_hash=self.cas_key_hash,
            pins_file=pins_file,
        )


@dataclass(frozen=True)
class Launch:
    """How to start ``sconify``: its command line and environment (another source tree's, for a
    benchmark's baseline); the defaults are this checkout's."""

    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    def argv(self, args: list[str]) -> list[str]:
        """The full command line for ``sconify ARGS``."""
        return [*(self.command or sconify_command()), *args]

    def environ(self) -> dict[str, str]:
        """The environment to start it in."""
        return {**(dict(self.env) if self.env else os.environ), "PYTHONUNBUFFERED": "1"}


def _start(
    state_dir: Path, args: list[str], launch: Launch = Launch()
) -> tuple[subprocess.Popen[bytes], Path, dict[str, Any]]:
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir.parent / f"{state_dir.name}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            launch.argv(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=launch.environ(),
        )
    try:
        ready = wait_ready(state_dir, process, log_path, READY_TIMEOUT)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    return process, log_path, ready


def run_las(
    state_dir: Path, *, host: str | None = "127.0.0.1", port: int = 0, launch: Launch = Launch()
) -> LasProcess:
    """Start ``sconify las serve`` with its state in ``state_dir``; returns once it listens.

    ``host=None`` passes no ``--host``: the LAS listens where it does by default.
    """
    args = ["las", "serve", "--state-dir", str(state_dir), "--port", str(port)]
    args += [] if host is None else ["--host", host]
    process, log_path, ready = _start(state_dir, args, launch)
    return LasProcess(
        state_dir=state_dir,
        process=process,
        log_path=log_path,
        ready=ready,
        # (a LAS older than issue 9 does not say where it listens)
        addr=f"{ready.get('host', host)}:{ready['port']}",
        qe_key_id=ready["qe_key_id"],
    )


def run_cas(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    api_port: int = 0,
    enclave_port: int = 0,
    db: str | None = None,
    launch: Launch = Launch(),
) -> CasProcess:
    """Start ``sconify cas serve`` with its state in ``state_dir`` (its data in ``db`` when
    given, e.g. a PostgreSQL URL); returns once it listens."""
    args = [
        *("cas", "serve", "--state-dir", str(state_dir), "--host", host),
        *("--api-port", str(api_port), "--enclave-port", str(enclave_port)),
    ]
    if db is not None:
        args += ["--db", db]
    process, log_path, ready = _start(state_dir, args, launch)
    return CasProcess(
        state_dir=state_dir,
        process=process,
        log_path=log_path,
        ready=ready,
        api_addr=f"{host}:{ready['api_port']}",
        enclave_addr=f"{host}:{ready['enclave_port']}",
        cas_key_hash=ready["cas_key_hash"],
    )


@pytest.fixture(scope="session")
def las(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LasProcess]:
    """A LAS for the whole test session."""
    with run_las(tmp_path_factory.mktemp("las") / "state") as process:
        yield process


@pytest.fixture(scope="session")
def cas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CasProcess]:
    """A CAS for the whole test session (use unique session names per test)."""
    with run_cas(tmp_path_factory.mktemp("cas") / "state") as process:
        yield process


@pytest.fixture
def fresh_cas(tmp_path: Path) -> Iterator[CasProcess]:
    """A CAS of its own for one test."""
    with run_cas(tmp_path / "cas-state") as process:
        yield process


@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$XDG_CONFIG_HOME`` and ``$XDG_STATE_HOME`` at a temp dir (identity, pins, dev)."""
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    return home
