"""The CAS attestation load benchmark: simulated enclaves against one real CAS and LAS.

    .venv/bin/python benchmarks/run.py --only-cas        # this stage alone (make bench runs it too)

Every attestation is the full protocol of contracts.md sections 6-7, run by the shim's own code
(``runtime_shim/internal/attest``) as a starting enclave runs it: a fresh ephemeral P-256 key, a
*new* pinned TLS connection to the CAS enclave API carrying ``challenge`` and then ``attest``, a
new plain HTTP connection to the LAS for the quote whose ``report_data`` binds the nonce and the
key's thumbprint, and the JWE opened with the ephemeral key. The decrypted configuration is
checked (session hash, fspf key, the three injection files), so an answer only counts when it is
the right one.

The load generator is ``runtime_shim/cmd/attestload`` (Go, built here): one goroutine per
simulated enclave, in one process that reports its own CPU time, so the report can say how much
of the two cores the load took from the CAS. (Python clients, one process each, used to take
about 0.8 of the 2 cores at 32 enclaves, leaving the CAS less than it would have beside real
shims.)

With a baseline revision (``run.py --baseline REV``, :mod:`baseline`), the baseline's own CAS
and LAS (started from its tree, with a session of their own) are measured beside the work
tree's: at every level, ``rounds`` rounds, each one window against either CAS, the order
alternating between rounds and levels. Both are driven by the *same* ``attestload`` (built from
the work tree): the enclave API it speaks is the contract both CASes serve.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from sconify.cas.client import split_address  # noqa: E402
from sconify.cas.identity import Identity  # noqa: E402
from sconify.cas.pinning import certificate_key_hash, fetch_certificate  # noqa: E402
from tests.support.services import CasProcess, LasProcess, run_cas, run_las  # noqa: E402

MEASUREMENT = "3c" * 32
FSPF_KEY = "8d1b3a1f0c2e4d5b6a7980a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5"
FSPF_TAG = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
LEVELS = (1, 8, 32)
WARMUP_SECONDS = 3.0
WINDOW_SECONDS = 20.0
#: With a baseline: rounds per level, each a shorter window against either CAS in turn.
BASELINE_ROUNDS = 3
BASELINE_WINDOW_SECONDS = 10.0
TARGET_RATE = 200.0
TARGET_P99_MS = 100.0


def session_yaml(name: str, qe_key_id: str) -> str:
    """A realistic converted-image session: command, environment, fspf, secrets, an injection
    file, a generated key and certificate (what ``sconify image convert`` plus a user's
    additions would hold)."""
    return textwrap.dedent(
        f"""\
        name: {name}
        version: "0.3"
        access_policy:
          read: [CREATOR]
          update: [CREATOR]
        services:
          - name: app
            image_name: app_image
            command: ["/usr/bin/python3", "/app/app.py", "--token", "$$SCONE::api_token$$"]
            environment:
              LANG: C.UTF-8
              PYTHONUNBUFFERED: "1"
              DB_PASSWORD: "$$SCONE::db_password$$"
              SESSION_KEY_HEX: "$$SCONE::session_key:hex$$"
            pwd: /app
            attestation:
              mrenclave: [{MEASUREMENT}]
            fspf_path: /sconify/fspf/fs.fspf
            fspf_key: {FSPF_KEY}
            fspf_tag: {FSPF_TAG}
        images:
          - name: app_image
            injection_files:
              - path: /etc/app/tls.key
                content: "$$SCONE::server_key:pem$$"
                permission: 0o600
              - path: /etc/app/tls.crt
                content: "$$SCONE::server_cert:crt$$"
              - path: /etc/app/config.ini
                content: "[db]\\npassword = $$SCONE::db_password$$\\n"
        secrets:
          - {{name: api_token, kind: ascii, size: 24}}
          - {{name: db_password, kind: ascii, size: 20}}
          - {{name: session_key, kind: binary, size: 32}}
          - {{name: server_key, kind: private-key}}
          - {{name: server_cert, kind: x509, private_key: server_key, dns: [app.example],
              endpoint: server, valid_for: 90 days}}
        security:
          attestation:
            tolerate: [simulation]
            trusted_scone_qe_pubkeys: [{qe_key_id}]
        """
    )


def namespace_yaml(name: str) -> str:
    """The namespace the benchmark session lives in."""
    return textwrap.dedent(
        f"""\
        name: {name}
        version: "0.3"
        access_policy:
          read: [CREATOR]
          update: [CREATOR]
          create_sessions: [CREATOR]
        """
    )


@dataclass(frozen=True)
class Target:
    """What a simulated enclave needs: the addresses, the pin and the config id."""

    cas_enclave: str
    cas_key_hash: str
    las: str
    config_id: str
    session_hash: str


def build_client(out: Path) -> Path:
    """Build ``runtime_shim/cmd/attestload`` (static, like the shim) into ``out``."""
    binary = out / "attestload"
    subprocess.run(
        ["go", "build", "-o", str(binary), "./cmd/attestload"],
        cwd=HERE.parent / "runtime_shim",
        env={**os.environ, "CGO_ENABLED": "0"},
        check=True,
    )
    return binary


def _client_argv(client: Path, target: Target, enclaves: int) -> list[str]:
    return [
        str(client),
        f"-cas={target.cas_enclave}",
        f"-las={target.las}",
        f"-config-id={target.config_id}",
        f"-cas-key-hash={target.cas_key_hash}",
        f"-measurement={MEASUREMENT}",
        f"-session-hash={target.session_hash}",
        f"-fspf-key={FSPF_KEY}",
        "-injection-files=3",
        f"-enclaves={enclaves}",
    ]


def check_once(client: Path, target: Target) -> None:
    """A first, unmeasured attestation: fails early (naming why) when anything is broken."""
    argv = [*_client_argv(client, target, 1), "-warmup=0s", "-window=1ms"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    report = json.loads(done.stdout)
    if report["errors"] or not report["latencies"]:
        raise RuntimeError(f"a first attestation failed: {report['error_samples']}")


def _pid_cpu(pid: int) -> float:
    """User plus system CPU seconds of a process (and its reaped threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return float(total - idle), float(total)


def _percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-pct * len(sorted_values) // 100)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def run_level(
    target: Target,
    client: Path,
    concurrency: int,
    cas_pid: int,
    las_pid: int,
    *,
    warmup: float = WARMUP_SECONDS,
    window: float = WINDOW_SECONDS,
) -> dict[str, Any]:
    """``concurrency`` simulated enclaves for ``warmup + window`` seconds; the window's numbers."""
    start = time.time() + 0.5  # the client process is up and waiting
    window_start = start + warmup
    stop = window_start + window
    argv = [
        *_client_argv(client, target, concurrency),
        f"-start={start:.6f}",
        f"-warmup={warmup}s",
        f"-window={window}s",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while time.time() < window_start:
        time.sleep(0.005)
    cas_cpu0, las_cpu0 = _pid_cpu(cas_pid), _pid_cpu(las_pid)
    busy0, total0 = _machine_busy()
    while time.time() < stop:
        time.sleep(0.005)
    cas_cpu1, las_cpu1 = _pid_cpu(cas_pid), _pid_cpu(las_pid)
    busy1, total1 = _machine_busy()
    # Attestations started before ``stop`` may still finish: their latency counts, and the rate
    # divides by the time until the last one ended (the drain is short beside the window).
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"attestload exited with {proc.returncode}: {err.strip()[-500:]}")
    report = json.loads(out)
    latencies = sorted(report["latencies"])
    elapsed = max(report["elapsed"], window)
    cores = os.cpu_count() or 1
    return {
        "latencies": latencies,
        "concurrency": concurrency,
        "window": window,
        "elapsed": elapsed,
        "completed": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": 1000 * _percentile(latencies, 50),
        "p99_ms": 1000 * _percentile(latencies, 99),
        "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        "errors": report["errors"],
        "error_samples": report["error_samples"],
        # CPU in core-seconds per wall second of the window (1.0 = one core busy).
        "cas_cpu": (cas_cpu1 - cas_cpu0) / window,
        "las_cpu": (las_cpu1 - las_cpu0) / window,
        "clients_cpu": report["cpu"] / window,
        "machine_busy": (busy1 - busy0) / max(total1 - total0, 1.0) * cores,
        "cas_cpu_per_attestation_ms": 1000 * (cas_cpu1 - cas_cpu0) / max(len(latencies), 1),
        "cores": cores,
    }


def setup_session(cas: CasProcess, las: LasProcess, home: Path) -> Target:
    """A namespace and the realistic session, created by a fresh identity."""
    identity, _ = Identity.load_or_create(home / "identity.pem")
    client = cas.client(identity, pins_file=home / "pins.json")
    try:
        ns = f"bench-{uuid.uuid4().hex[:10]}"
        client.create_session(namespace_yaml(ns))
        name = f"{ns}/webapp"
        session_hash = client.create_session(session_yaml(name, las.qe_key_id))
    finally:
        client.close()
    host, port = split_address(cas.enclave_addr, 0)
    cert = fetch_certificate(host, port, 10)
    if certificate_key_hash(cert) != cas.cas_key_hash:
        raise RuntimeError("the CAS enclave port presents another key than ready.json names")
    return Target(
        cas_enclave=cas.enclave_addr,
        cas_key_hash=cas.cas_key_hash,
        las=las.addr,
        config_id=f"{name}/app",
        session_hash=session_hash,
    )


def profile_cas(py_spy: str, cas_pid: int, out: Path, seconds: int) -> Callable[[], int]:
    """Start py-spy on the running CAS for ``seconds``; the returned call waits for it."""
    import subprocess

    proc = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(cas_pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "--threads",
            "--gil",
            "--duration",
            str(seconds),
            "--output",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc.wait


def fold_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """py-spy raw (folded) stacks of the CAS: share of busy samples by leaf and by area."""
    leaves: dict[str, int] = {}
    areas: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf = frames[-1]
        leaves[leaf] = leaves.get(leaf, 0) + count
        area = _area(frames)
        areas[area] = areas.get(area, 0) + count
    ranked = sorted(leaves.items(), key=lambda kv: -kv[1])[:top]
    return {
        "samples": total,
        "leaves": [(name, n / total) for name, n in ranked] if total else [],
        "areas": sorted(((a, n / total) for a, n in areas.items()), key=lambda kv: -kv[1])
        if total
        else [],
    }


# Innermost match wins: the first entry found walking from the leaf outwards.
AREAS = (
    ("do_handshake", "TLS handshake"),
    ("load_session", "session YAML parse + validation (load_session)"),
    ("ParsedSessions", "validated-session cache"),
    ("service_config", "config rendering (service_config: placeholders, keys, certificates)"),
    ("seal (", "JWE seal (ECDH-ES + AES-GCM)"),
    ("signature_valid", "quote signature verify (ECDSA)"),
    ("load_qe_public_key", "quoting key PEM parse"),
    ("sconify/cas/store/", "store read (SQLite, decryption)"),
    ("logging/", "logging"),
    ("read_json_object", "request body parse"),
    ("json_response", "response"),
    ("attest (sconify/cas/attest.py", "attest checks (other)"),
    ("challenge (sconify/cas/attest.py", "challenge (other)"),
    ("NonceBook", "nonces"),
    ("concurrent/futures", "thread pool hand-off (asyncio.to_thread)"),
    ("aiohttp/", "aiohttp HTTP machinery"),
    ("asyncio/", "asyncio event loop, sockets, TLS records"),
)


def _area(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        for needle, label in AREAS:
            if needle in frame:
                return label
    return "other"


@dataclass
class System:
    """One CAS and LAS under load, with the session the enclaves attest to."""

    key: str
    cas: CasProcess
    las: LasProcess
    target: Target


#: Per-level numbers that are medians over rounds (the rest: pooled latencies, sums).
_MEDIANS = (
    "rate",
    "cas_cpu",
    "las_cpu",
    "clients_cpu",
    "machine_busy",
    "cas_cpu_per_attestation_ms",
    "busy_before",
)


def aggregate(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One level's rounds as one level: the median rate (and CPU) of the rounds, percentiles
    of all their latencies pooled, errors summed; ``round_rates`` keeps each round's rate (in
    round order, so a baseline's can be paired with them)."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    out = {k: v for k, v in rounds[0].items() if k != "latencies"}
    for key in _MEDIANS:
        out[key] = statistics.median(r.get(key, float("nan")) for r in rounds)
    samples: list[str] = []
    for r in rounds:
        samples += [e for e in r["error_samples"] if e not in samples]
    out.update(
        {
            "rounds": len(rounds),
            "round_rates": [r["rate"] for r in rounds],
            "round_p99_ms": [r["p99_ms"] for r in rounds],
            "completed": sum(r["completed"] for r in rounds),
            "elapsed": sum(r["elapsed"] for r in rounds),
            "errors": sum(r["errors"] for r in rounds),
            "error_samples": samples[:5],
            "p50_ms": 1000 * _percentile(latencies, 50),
            "p99_ms": 1000 * _percentile(latencies, 99),
            "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
            "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        }
    )
    return out


def run(
    scratch: Path,
    log: Callable[[str], None],
    *,
    profile: bool = True,
    before: Any = None,
    window: float = WINDOW_SECONDS,
    rounds: int = 1,
) -> dict[str, Any]:
    """The whole stage: CAS, LAS, the session, the three levels, and a py-spy profile.

    ``before`` (a :class:`baseline.Baseline`) adds the baseline's CAS and LAS, alternating
    with the work tree's at every level; its levels go to ``results["baseline"]``.
    """
    import datetime

    import sampling
    from measure import QuietWaiter

    results: dict[str, Any] = {
        "levels": [],
        "window": window,
        "warmup": WARMUP_SECONDS,
        "rounds": rounds,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    # The machine is shared: wait a little for other work to calm down before each window
    # (10 s at most each, 40 s in all for the three levels of one system, more with rounds).
    windows = len(LEVELS) * rounds * (2 if before is not None else 1)
    quiet = QuietWaiter(patience=10.0, budget=min(40.0 * windows / len(LEVELS), 160.0))
    scratch.mkdir(parents=True, exist_ok=True)
    client = build_client(scratch)
    with contextlib.ExitStack() as stack:
        las = stack.enter_context(run_las(scratch / "las"))
        cas = stack.enter_context(run_cas(scratch / "cas"))
        after = System("after", cas, las, setup_session(cas, las, scratch / "identity"))
        systems = [after]
        if before is not None:
            import baseline

            blas = stack.enter_context(baseline.run_las(before, scratch / "las-before"))
            bcas = stack.enter_context(baseline.run_cas(before, scratch / "cas-before"))
            target = setup_session(bcas, blas, scratch / "identity-before")
            systems.insert(0, System("before", bcas, blas, target))
            results["baseline"] = {**before.describe(), "levels": []}
        results["config_id"] = after.target.config_id
        for system in systems:
            check_once(client, system.target)
        for index, concurrency in enumerate(LEVELS):
            measured: dict[str, list[dict[str, Any]]] = {s.key: [] for s in systems}
            for round_no in range(rounds):
                order = systems if (index + round_no) % 2 == 0 else systems[::-1]
                for system in order:
                    busy = quiet()
                    level = run_level(
                        system.target,
                        client,
                        concurrency,
                        system.cas.process.pid,
                        system.las.process.pid,
                        window=window,
                    )
                    level["busy_before"] = busy
                    measured[system.key].append(level)
                    log(
                        f"cas load x{concurrency}"
                        + (f" ({system.key}, round {round_no + 1})" if len(systems) > 1 else "")
                        + f": {level['rate']:.0f}/s, p50 {level['p50_ms']:.1f} ms, "
                        f"p99 {level['p99_ms']:.1f} ms, {level['errors']} errors, CAS CPU "
                        f"{level['cas_cpu']:.2f}, LAS {level['las_cpu']:.2f}, clients "
                        f"{level['clients_cpu']:.2f}"
                    )
            results["levels"].append(aggregate(measured["after"]))
            if before is not None:
                results["baseline"]["levels"].append(aggregate(measured["before"]))
        py_spy = sampling.available() if profile else None
        if py_spy is not None:
            raw = scratch / "cas-profile.txt"
            seconds = 10
            waiter = profile_cas(py_spy, cas.process.pid, raw, seconds)
            level = run_level(
                after.target, client, 8, cas.process.pid, las.process.pid, warmup=0.5, window=9
            )
            waiter()
            if raw.exists():
                results["profile"] = {**fold_profile(raw), "concurrency": 8, "rate": level["rate"]}
                log("profiled the CAS under 8 clients")
    return results


def main() -> None:
    """Run the stage alone and print its JSON (``run.py --only-cas`` also writes the report)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sconify-casload-") as tmp:
        result = run(Path(tmp), lambda m: print(m, file=sys.stderr), profile=False)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
