"""Run Debian's ``docker-registry`` (distribution 2.x) as a child process on a loopback port."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from sconify.dev import stop_process
from sconify.errors import SconifyError

log = logging.getLogger(__name__)

REGISTRY_BINARY = "/usr/bin/docker-registry"
READY_TIMEOUT = 30.0


class RegistryStartError(SconifyError):
    """The local registry could not be started."""


@dataclass(frozen=True)
class TokenAuth:
    """Settings for the registry's Bearer token auth (``auth.token`` in its config)."""

    realm: str
    service: str
    issuer: str
    root_cert_bundle: Path


@dataclass
class RegistryProcess:
    """A running registry: ``addr`` is ``127.0.0.1:<port>``; :meth:`stop` ends it."""

    addr: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.addr.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        """The base URL of its API."""
        return f"http://{self.addr}"

    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the registry (SIGTERM, then SIGKILL after ``timeout``)."""
        stop_process(self.process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registry_config(
    state_dir: Path, port: int, *, htpasswd: Path | None = None, token: TokenAuth | None = None
) -> dict[str, Any]:
    """Return the registry's ``config.yml`` content as a dict."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(state_dir / "data")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if htpasswd is not None and token is not None:
        raise ValueError("choose htpasswd or token auth, not both")
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "sconify-registry", "path": str(htpasswd)}}
    if token is not None:
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.root_cert_bundle),
            }
        }
    return config


def start_registry(
    state_dir: Path,
    port: int = 0,
    *,
    htpasswd: Path | None = None,
    token: TokenAuth | None = None,
    binary: str = REGISTRY_BINARY,
) -> RegistryProcess:
    """Start ``docker-registry serve`` with its storage and log in ``state_dir``; wait until ready.

    ``port`` 0 picks a free port (the registry itself cannot). ``htpasswd`` (bcrypt entries)
    turns on Basic auth, ``token`` Bearer token auth.
    """
    if not (shutil.which(binary) or os.access(binary, os.X_OK)):
        raise RegistryStartError(
            f"the registry program {binary} is not installed",
            hint="install the Debian package: apt-get install docker-registry",
        )
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    attempts = 3 if port == 0 else 1
    last: RegistryStartError | None = None
    for _ in range(attempts):
        chosen = port or free_port()
        try:
            return _start_once(state_dir, chosen, htpasswd, token, binary)
        except RegistryStartError as e:
            # Another process may have taken the free port between probe and bind.
            last = e
    assert last is not None
    raise last


def _start_once(
    state_dir: Path, port: int, htpasswd: Path | None, token: TokenAuth | None, binary: str
) -> RegistryProcess:
    config_path = state_dir / "config.yml"
    config_path.write_text(
        yaml.safe_dump(registry_config(state_dir, port, htpasswd=htpasswd, token=token))
    )
    log_path = state_dir / "registry.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [binary, "serve", str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle = RegistryProcess(f"127.0.0.1:{port}", state_dir, process, log_path, log_file)
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not handle.running():
                tail = handle.log_tail()
                handle.stop()
                raise RegistryStartError(
                    f"the registry exited with status {process.returncode} on start:\n{tail}",
                    hint=f"see {log_path}; is port {port} in use?",
                )
            try:
                reply = client.get(f"{handle.url}/v2/")
                if reply.status_code in (200, 401):
                    log.info("registry ready at %s (state in %s)", handle.addr, state_dir)
                    return handle
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    handle.stop()
    raise RegistryStartError(
        f"the registry on port {port} did not answer within {READY_TIMEOUT:.0f}s",
        hint=f"see {log_path}",
    )
