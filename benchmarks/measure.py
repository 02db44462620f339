"""Measuring one command: wall time, CPU time and peak RSS of a fresh child process; bytes sent.

Peak RSS comes from ``wait4`` on the child (Linux ``ru_maxrss``: the largest resident set of the
child or of any descendant it waited for), so every run is a fresh process and nothing of an
earlier run is counted. Bytes uploaded are counted by :class:`CountingProxy`, a TCP relay put
between a client and the registry, so that the count is what crossed the wire (HTTP headers,
HEAD requests and retries included) and does not depend on the client reporting it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Measurement:
    """One run of one tool."""

    tool: str
    case: str
    run: int
    wall: float
    cpu: float
    max_rss_kib: int
    exit_code: int
    stdout: str = ""
    stderr_tail: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the command succeeded."""
        return self.exit_code == 0

    @property
    def rss_mib(self) -> float:
        """Peak RSS in MiB."""
        return self.max_rss_kib / 1024


def run_measured(
    argv: Sequence[str],
    *,
    tool: str,
    case: str,
    run: int,
    env: Mapping[str, str],
    scratch: Path,
) -> Measurement:
    """Run ``argv`` to completion; stdout and stderr go to files in ``scratch`` (not pipes)."""
    scratch.mkdir(parents=True, exist_ok=True)
    out_path = scratch / f"{case}-{tool}-{run}.out"
    err_path = scratch / f"{case}-{tool}-{run}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.monotonic()
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env)
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    stderr = err_path.read_text(errors="replace")
    return Measurement(
        tool=tool,
        case=case,
        run=run,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_rss_kib=usage.ru_maxrss,
        exit_code=process.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr_tail="\n".join(stderr.strip().splitlines()[-8:]),
    )


def cpu_busy(window: float = 0.5) -> float:
    """The fraction of all cores that was busy during the next ``window`` seconds."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            values = [int(x) for x in handle.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    busy0, total0 = sample()
    time.sleep(window)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1)


class QuietWaiter:
    """Waits before each run until other work leaves the cores mostly idle.

    At most ``patience`` seconds per run and ``budget`` seconds in all, so that a busy machine
    makes the benchmark noisier, not endless. Each call returns the last busy fraction seen,
    which goes into the report: a shared machine (other test suites) makes runs slower, and
    this says by how much it was shared.
    """

    def __init__(self, limit: float = 0.25, patience: float = 10.0, budget: float = 240.0):
        self.limit = limit
        self.patience = patience
        self.budget = budget

    def __call__(self) -> float:
        start = time.monotonic()
        deadline = start + min(self.patience, self.budget)
        busy = cpu_busy()
        while busy > self.limit and time.monotonic() < deadline:
            busy = cpu_busy()
        self.budget = max(0.0, self.budget - (time.monotonic() - start))
        return busy


class CountingProxy:
    """A loopback TCP relay to ``upstream`` that counts the bytes clients send through it.

    Each accepted connection gets two pump threads. :attr:`sent` is the total of client to
    upstream bytes since the last :meth:`reset`; :attr:`received` the other direction.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self.sent = 0
        self.received = 0
        self._stopping = False
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    @property
    def addr(self) -> str:
        """``127.0.0.1:<port>`` of the proxy."""
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.sent = 0
            self.received = 0

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            thread = threading.Thread(target=self._relay, args=(client, server), daemon=True)
            thread.start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        down = threading.Thread(target=self._pump, args=(server, client, False), daemon=True)
        down.start()
        self._pump(client, server, True)
        down.join()
        client.close()
        server.close()

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while data := src.recv(1 << 20):
                dst.sendall(data)
                with self._lock:
                    if upward:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting; connections still open end when their peers close them."""
        self._stopping = True
        self._listener.close()


@contextlib.contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """A :class:`CountingProxy` in front of ``host:port`` for the duration of the block."""
    host, _, port = upstream.rpartition(":")
    proxy = CountingProxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.close()
