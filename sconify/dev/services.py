"""``sconify dev up|down|status``: a local CAS, LAS (and registry) as detached processes.

State, pid files and logs live under ``$XDG_STATE_HOME/sconify/dev/`` (default
``~/.local/state/sconify/dev``): ``cas/`` and ``las/`` are the services' state dirs,
``<name>.pid`` and ``<name>.log`` beside them. ``up`` is idempotent: a service that already
runs is left as it is.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sconify.errors import SconifyError, ServiceError

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 8081
DEFAULT_ENCLAVE_PORT = 18765
DEFAULT_LAS_PORT = 18766
DEFAULT_LAS_HOST = "127.0.0.1"
DEFAULT_REGISTRY_PORT = 5000
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def dev_home() -> Path:
    """``$XDG_STATE_HOME/sconify/dev``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sconify" / "dev"


def sconify_command() -> list[str]:
    """How to run this installation's ``sconify`` command in a child process."""
    script = Path(sys.executable).parent / "sconify"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sconify.cli.main import main; main()"]


def spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``args`` detached (own session), stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    state_dir: Path, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> dict[str, Any]:
    """Wait for ``state_dir/ready.json`` written by ``process``; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(
                f"{' '.join(process.args[:3]) if isinstance(process.args, list) else 'service'} "
                f"exited with status {process.returncode} before it was ready:\n"
                f"{log_tail(log_path)}",
                hint=f"see {log_path}; is the port in use?",
            )
        info = read_ready(state_dir)
        if info is not None and info.get("pid") == process.pid:
            return info
        time.sleep(0.05)
    process.terminate()
    raise ServiceError(
        f"no ready.json in {state_dir} after {timeout:.0f}s",
        hint=f"see {log_path}",
    )


def read_ready(state_dir: Path) -> dict[str, Any] | None:
    """The ready.json of a service, or ``None``."""
    try:
        data = json.loads((state_dir / "ready.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def log_tail(path: Path, lines: int = 15) -> str:
    """The end of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return status != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class ServiceStatus:
    """One dev service as ``status`` sees it."""

    name: str
    running: bool
    pid: int | None = None
    address: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "address": self.address,
            "name": self.name,
            "pid": self.pid,
            "running": self.running,
            **self.details,
        }


class DevServices:
    """The dev services under one home directory."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or dev_home()

    def _pid_file(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def _pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        marker = "docker-registry" if name == "registry" else "sconify"
        if pid_alive(pid) and marker in _cmdline(pid):
            return pid
        return None

    def status(self) -> list[ServiceStatus]:
        """What runs now."""
        out = []
        for name in ("cas", "las"):
            pid = self._pid(name)
            info = read_ready(self.home / name) if pid else None
            address, details = None, {}
            if pid and info:
                host = info.get("host", "127.0.0.1")
                if name == "cas":
                    address = f"{host}:{info.get('api_port')}"
                    details = {
                        "enclave_address": f"{host}:{info.get('enclave_port')}",
                        "cas_key_hash": info.get("cas_key_hash"),
                    }
                else:
                    address = f"{host}:{info.get('port')}"
                    details = {"qe_key_id": info.get("qe_key_id")}
            out.append(ServiceStatus(name, pid is not None, pid, address, details))
        pid = self._pid("registry")
        address = None
        if pid:
            try:
                address = (self.home / "registry.addr").read_text().strip()
            except OSError:
                address = None
        out.append(ServiceStatus("registry", pid is not None, pid, address))
        return out

    def up(
        self,
        *,
        host: str = "127.0.0.1",
        api_port: int = DEFAULT_API_PORT,
        enclave_port: int = DEFAULT_ENCLAVE_PORT,
        las_port: int = DEFAULT_LAS_PORT,
        registry_port: int | None = DEFAULT_REGISTRY_PORT,
        las_host: str = DEFAULT_LAS_HOST,
    ) -> list[ServiceStatus]:
        """Start what is not running; returns the status of every service.

        ``host`` is where the CAS listens; the LAS listens on ``las_host`` (loopback unless
        told otherwise): whoever reaches it can obtain quotes for any measurement, and the
        containers that need it run on this host with ``--network host``.
        """
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._pid("las") is None:
            self._start(
                "las",
                [
                    *("las", "serve", "--state-dir", str(self.home / "las")),
                    *("--port", str(las_port), "--host", las_host),
                ],
            )
        if self._pid("cas") is None:
            self._start(
                "cas",
                [
                    *("cas", "serve", "--state-dir", str(self.home / "cas")),
                    *("--api-port", str(api_port), "--enclave-port", str(enclave_port)),
                    *("--host", host),
                ],
            )
        if registry_port is not None and self._pid("registry") is None:
            self._start_registry(registry_port)
        return self.status()

    def _start(self, name: str, args: list[str]) -> None:
        log_path = self.home / f"{name}.log"
        process = spawn(sconify_command() + args, log_path)
        self._pid_file(name).write_text(f"{process.pid}\n")
        wait_ready(self.home / name, process, log_path, READY_TIMEOUT)
        log.info("%s started (pid %d, log %s)", name, process.pid, log_path)

    def _start_registry(self, port: int) -> None:
        from sconify.dev.registry import REGISTRY_BINARY, start_registry

        if not Path(REGISTRY_BINARY).exists():
            log.info("no %s installed: not starting a registry", REGISTRY_BINARY)
            return
        try:
            registry = start_registry(self.home / "registry", port)
        except SconifyError as err:
            log.warning("the registry did not start: %s", err.message)
            return
        self._pid_file("registry").write_text(f"{registry.process.pid}\n")
        (self.home / "registry.addr").write_text(registry.addr + "\n")
        log.info("registry started at %s (pid %d)", registry.addr, registry.process.pid)

    def down(self) -> list[str]:
        """Stop every running dev service; returns the names stopped."""
        stopped = []
        for name in ("registry", "cas", "las"):
            pid = self._pid(name)
            if pid is not None:
                _terminate(pid)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        return stopped


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
