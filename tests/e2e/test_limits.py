"""The runtime limits of a converted Python image, on the real engine (issue 5's acceptance).

Two conversions of the Flask sample run one probe script as the session's command: a strict one
(``--heap=256M --dlopen=0 --fork=0``) and an open one (``--stack=4M --dlopen=1 --fork=1``). The
script tries each behaviour in turn and prints one ``<check>: <result>`` line; each test reads
the line of one check.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from tests.e2e.conftest import Cli, Samples
from tests.e2e.test_sconify_image import _finished, _free_port, _run
from tests.support.registry import Registry
from tests.support.services import CasProcess, LasProcess

pytestmark = pytest.mark.e2e

PROBE = r"""
import os, threading

def check(name, probe):
    try:
        result = probe()
    except BaseException as err:
        result = f"{type(err).__name__}: {err}"
    print(f"{name}: {result}", flush=True)

def allocate(mib):
    block = bytearray(mib << 20)
    return f"allocated {len(block) >> 20} MiB"

def import_ctypes():
    import _ctypes
    return "imported"

def load_outside():
    import ctypes
    ctypes.CDLL("libffi.so.8")
    return "loaded"

def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    return f"child exited {os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}"

def thread_stack():
    import ctypes
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    seen = []
    def probe():
        attr = ctypes.create_string_buffer(128)
        size = ctypes.c_size_t()
        if libc.pthread_getattr_np(ctypes.c_ulong(libc.pthread_self()), attr) == 0:
            libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
            seen.append(size.value)
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return f"{seen[0]} bytes" if seen else "unknown"

check("allocate 16 MiB", lambda: allocate(16))
check("allocate 512 MiB", lambda: allocate(512))
check("import _ctypes", import_ctypes)
check("ctypes.CDLL libffi.so.8", load_outside)
check("fork", fork)
check("thread stack", thread_stack)
print("probe done", flush=True)
"""


def _probe(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
    name: str,
    *flags: str,
) -> dict[str, str]:
    """Convert the sample with ``flags`` and the probe as command, run it; its lines by check."""
    port = _free_port()
    target = f"{registry.addr}/limits-{name}:latest"
    result = cli.run(
        "sconify_image",
        f"--from={flask_samples.root}",
        f"--to={target}",
        "--binary=/usr/bin/python3",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--service-name=probe",
        f"--name=limits-{name}-{port}",
        "--namespace=limits",
        "--create-namespace",
        "--dir=/app",
        "--allow-simulation",
        f"--command=python3 -c {shlex.quote(PROBE)}",
        "--push-image",
        "--json",
        *flags,
    )
    assert json.loads(result.stdout)["pushed"]
    code, logs, _ = _finished(_run(docker_client, target))
    assert code == 0 and "probe done" in logs, logs
    lines = [line.partition(": ") for line in logs.splitlines() if ": " in line]
    return {check: outcome for check, _, outcome in lines}


@pytest.fixture(scope="module")
def strict(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
) -> dict[str, str]:
    """The probe's results under ``--heap=256M --dlopen=0 --fork=0``."""
    return _probe(
        cli, cas, las, flask_samples, registry, docker_client, "strict",
        "--heap=256M", "--dlopen=0", "--fork=0",
    )  # fmt: skip


@pytest.fixture(scope="module")
def lenient(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
) -> dict[str, str]:
    """The probe's results under ``--stack=4M --dlopen=1 --fork=1`` (heap 1G)."""
    return _probe(
        cli, cas, las, flask_samples, registry, docker_client, "lenient",
        "--heap=1G", "--stack=4M", "--dlopen=1", "--fork=1",
    )  # fmt: skip


def test_heap_256m_refuses_512mib(strict: dict[str, str]) -> None:
    assert strict["allocate 512 MiB"].startswith("MemoryError")


def test_heap_256m_allows_16mib(strict: dict[str, str]) -> None:
    assert strict["allocate 16 MiB"] == "allocated 16 MiB"


def test_dlopen_0_refuses_a_c_extension(strict: dict[str, str]) -> None:
    outcome = strict["import _ctypes"]
    assert outcome.startswith("ImportError: sconify guard: dlopen of ")
    assert "_ctypes.cpython-311-x86_64-linux-gnu.so refused (SCONE_ALLOW_DLOPEN=0" in outcome


def test_dlopen_1_imports_an_authenticated_c_extension(lenient: dict[str, str]) -> None:
    assert lenient["import _ctypes"] == "imported"


def test_dlopen_1_refuses_a_library_outside_the_authenticated_set(
    lenient: dict[str, str],
) -> None:
    outcome = lenient["ctypes.CDLL libffi.so.8"]
    assert outcome.startswith("OSError: sconify guard: dlopen of libffi.so.8 refused ")
    assert "(SCONE_ALLOW_DLOPEN=1: only libraries in the authenticated manifest)" in outcome
    assert "x86_64-linux-gnu/libffi.so.8 (sha256 " in outcome


def test_fork_0_makes_fork_fail(strict: dict[str, str]) -> None:
    assert strict["fork"] == "PermissionError: [Errno 1] Operation not permitted"


def test_fork_1_lets_fork_work(lenient: dict[str, str]) -> None:
    assert lenient["fork"] == "child exited 7"


def test_stack_4m_is_the_default_thread_stack(lenient: dict[str, str]) -> None:
    # glibc sizes a new thread's stack from RLIMIT_STACK, which the shim set from SCONE_STACK.
    assert lenient["thread stack"] == f"{4 << 20} bytes"
