"""Make sure a Docker engine answers: use the running one, or start ``dockerd`` (as root).

The handle's :meth:`EngineHandle.stop` stops only an engine this module started.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors

from sconify.dev import stop_process
from sconify.transports.daemon import EngineUnavailable

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
DOCKERD_ARGS = ("--iptables=false", "--bridge=none")


@dataclass
class EngineHandle:
    """A Docker engine that answers; ``started`` says whether this process started it."""

    started: bool
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def client(self) -> Any:
        """A ``docker.DockerClient`` for the engine."""
        return docker.from_env()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the engine if this handle started it; otherwise do nothing."""
        if self.process is not None:
            stop_process(self.process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None


def engine_answers() -> bool:
    """Whether the engine at ``DOCKER_HOST`` (or the default socket) answers a ping."""
    try:
        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except docker.errors.DockerException:
        return False


def ensure_engine(*, log_dir: Path | None = None, timeout: float = READY_TIMEOUT) -> EngineHandle:
    """Return a handle on an answering engine, starting ``dockerd`` when none answers.

    Starting needs root and ``dockerd`` on the PATH; its log goes to ``log_dir/dockerd.log``
    (a temporary directory by default).
    """
    if engine_answers():
        return EngineHandle(started=False)
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise EngineUnavailable(
            "no Docker engine answers and none can be started here",
            hint="start one (as root: dockerd --iptables=false --bridge=none), or install"
            " docker.io; starting it needs root",
        )
    directory = log_dir or Path(tempfile.mkdtemp(prefix="sconify-dockerd-"))
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "dockerd.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [dockerd, *DOCKERD_ARGS],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle = EngineHandle(True, process, log_path, log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            handle.stop()
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise EngineUnavailable(
                f"dockerd exited with status {process.returncode} on start:\n{tail}",
                hint=f"see {log_path}",
            )
        if engine_answers():
            log.info("started dockerd (pid %d, log %s)", process.pid, log_path)
            return handle
        time.sleep(0.25)
    handle.stop()
    raise EngineUnavailable(f"dockerd did not answer within {timeout:.0f}s", hint=f"see {log_path}")
