"""The CAS attestation load benchmark: simulated enclaves against one real CAS and LAS.

    .venv/bin/python benchmarks/run.py --only-cas        # this stage alone (make bench runs it too)

Every attestation is the full protocol of contracts.md sections 6-7, as a starting enclave's
shim does it (``runtime_shim/internal/attest``): a fresh ephemeral P-256 key, a *new* pinned TLS
connection to the CAS enclave API carrying ``challenge`` and then ``attest`` (the shim's
``http.Transport`` keeps one connection per host), a new plain HTTP connection to the LAS for
the quote whose ``report_data`` binds the nonce and the key's thumbprint, and the JWE opened
with the ephemeral key. The decrypted configuration is checked (session hash, fspf key, the
three injection files), so an answer only counts when it is the right one.

The clients are Python (the :mod:`sconify` crypto helpers the tests use, over ``http.client``),
one *process* per simulated enclave so the GIL does not serialise them; each process reports
its own CPU time, so the report can say how much of the two cores the load generator took from
the CAS. The pin is checked like the shim checks it (SPKI SHA-256 of the presented
certificate), inside the same handshake: no extra connection to fetch the certificate first.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import ssl
import statistics
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from sconify.cas.client import split_address  # noqa: E402
from sconify.cas.identity import Identity  # noqa: E402
from sconify.cas.pinning import certificate_key_hash, fetch_certificate, pinned_context  # noqa: E402
from sconify.crypto.jwe import TeePrivateKey, open_sealed  # noqa: E402
from sconify.las.quote import bind_report_data  # noqa: E402
from tests.support.services import CasProcess, LasProcess, run_cas, run_las  # noqa: E402

MEASUREMENT = "3c" * 32
FSPF_KEY = "8d1b3a1f0c2e4d5b6a7980a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5"
FSPF_TAG = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
LEVELS = (1, 8, 32)
WARMUP_SECONDS = 3.0
WINDOW_SECONDS = 20.0
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
    cas_cert_pem: bytes
    las: str
    config_id: str
    session_hash: str


class _Refused(Exception):
    """A non-2xx answer from the CAS or LAS."""


def _exchange(
    conn: http.client.HTTPConnection, path: str, payload: dict[str, Any]
) -> dict[str, Any]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise _Refused(f"{path}: HTTP {response.status}: {data[:200]!r}")
    value: dict[str, Any] = json.loads(data)
    return value


class Enclave:
    """One simulated enclave: attests again and again, each time as a freshly started shim."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.cas_host, self.cas_port = split_address(target.cas_enclave, 0)
        self.las_host, self.las_port = split_address(target.las, 0)
        # The shim builds its TLS configuration from the pinned hash; building the context is
        # not part of an attestation, the handshake (with the pin check) is.
        self.context: ssl.SSLContext = pinned_context(target.cas_cert_pem)

    def attest_once(self) -> None:
        """The whole protocol once; raises on any failure or wrong answer."""
        tee = TeePrivateKey.generate()
        cas = http.client.HTTPSConnection(
            self.cas_host, self.cas_port, context=self.context, timeout=30
        )
        try:
            cas.connect()
            der = cas.sock.getpeercert(binary_form=True) if cas.sock is not None else None
            presented = ssl.DER_cert_to_PEM_cert(der).encode() if der else b""
            if certificate_key_hash(presented) != self.target.cas_key_hash:
                raise _Refused("the CAS presented another key")
            config_id = self.target.config_id
            nonce = _exchange(cas, "/v1/enclave/challenge", {"config_id": config_id})["nonce"]
            report_data = bind_report_data(nonce, tee.public_key.thumbprint())
            las = http.client.HTTPConnection(self.las_host, self.las_port, timeout=30)
            try:
                quote = _exchange(
                    las,
                    "/v1/quote",
                    {"debug": False, "measurement": MEASUREMENT, "report_data": report_data.hex()},
                )
            finally:
                las.close()
            answer = _exchange(
                cas,
                "/v1/enclave/attest",
                {
                    "config_id": config_id,
                    "nonce": nonce,
                    "qe_pubkey": quote["qe_pubkey"],
                    "quote": quote["quote"],
                    "signature": quote["signature"],
                    "tee_pubkey": tee.public_key.to_jwk(),
                },
            )
        finally:
            cas.close()
        config = json.loads(open_sealed(answer["config"], tee))
        if (
            config.get("session_hash") != self.target.session_hash
            or config.get("fspf_key") != FSPF_KEY
            or len(config.get("injection_files", ())) != 3
        ):
            raise _Refused("the released configuration is not the session's")


@dataclass
class ClientReport:
    """What one client process measured inside the window."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0


def _client(
    target: Target, start: float, window_start: float, stop: float, out: Connection
) -> None:
    """One simulated enclave's process: attest until ``stop`` (monotonic clock, shared)."""
    enclave = Enclave(target)
    report = ClientReport()
    while time.monotonic() < start:
        time.sleep(0.001)
    cpu_start: float | None = None
    while True:
        began = time.monotonic()
        if began >= stop:
            break
        if cpu_start is None and began >= window_start:
            cpu_start = time.process_time()
        try:
            enclave.attest_once()
            ok, problem = True, ""
        except Exception as err:  # every failure is counted and reported, none hidden
            ok, problem = False, f"{type(err).__name__}: {err}"[:300]
        ended = time.monotonic()
        # An attestation counts when it started inside the window; the window's end is only
        # where new ones stop being started.
        if began >= window_start:
            if ok:
                report.latencies.append(ended - began)
            else:
                report.errors.append(problem)
    if cpu_start is not None:
        report.cpu = time.process_time() - cpu_start
    out.send(asdict(report))
    out.close()


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
    concurrency: int,
    cas_pid: int,
    las_pid: int,
    *,
    warmup: float = WARMUP_SECONDS,
    window: float = WINDOW_SECONDS,
) -> dict[str, Any]:
    """``concurrency`` client processes for ``warmup + window`` seconds; the window's numbers."""
    ctx = multiprocessing.get_context("fork")
    start = time.monotonic() + 1.0 + 0.05 * concurrency  # every process forked and ready
    window_start = start + warmup
    stop = window_start + window
    pipes = []
    procs = []
    for _ in range(concurrency):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_client, args=(target, start, window_start, stop, send))
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    while time.monotonic() < window_start:
        time.sleep(0.01)
    cas_cpu0, las_cpu0 = _pid_cpu(cas_pid), _pid_cpu(las_pid)
    busy0, total0 = _machine_busy()
    while time.monotonic() < stop:
        time.sleep(0.01)
    cas_cpu1, las_cpu1 = _pid_cpu(cas_pid), _pid_cpu(las_pid)
    busy1, total1 = _machine_busy()
    # Attestations started before ``stop`` may still finish: their latency counts, and the rate
    # divides by the time until the last one ended (the drain is short beside the window).
    reports = [ClientReport(**pipe.recv()) for pipe in pipes]
    drained = time.monotonic()
    for proc in procs:
        proc.join()
    latencies = sorted(x for r in reports for x in r.latencies)
    errors = [e for r in reports for e in r.errors]
    elapsed = drained - window_start
    cores = os.cpu_count() or 1
    return {
        "concurrency": concurrency,
        "window": window,
        "elapsed": elapsed,
        "completed": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": 1000 * _percentile(latencies, 50),
        "p99_ms": 1000 * _percentile(latencies, 99),
        "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        # CPU in core-seconds per wall second of the window (1.0 = one core busy).
        "cas_cpu": (cas_cpu1 - cas_cpu0) / window,
        "las_cpu": (las_cpu1 - las_cpu0) / window,
        "clients_cpu": sum(r.cpu for r in reports) / window,
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
        cas_cert_pem=cert,
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


def run(scratch: Path, log: Callable[[str], None], *, profile: bool = True) -> dict[str, Any]:
    """The whole stage: CAS, LAS, the session, the three levels, and a py-spy profile."""
    import datetime

    import sampling
    from measure import QuietWaiter

    results: dict[str, Any] = {
        "levels": [],
        "window": WINDOW_SECONDS,
        "warmup": WARMUP_SECONDS,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    # The machine is shared: wait a little for other work to calm down before each level.
    quiet = QuietWaiter(patience=10.0, budget=40.0)
    scratch.mkdir(parents=True, exist_ok=True)
    with run_las(scratch / "las") as las, run_cas(scratch / "cas") as cas:
        target = setup_session(cas, las, scratch / "identity")
        results["config_id"] = target.config_id
        Enclave(target).attest_once()  # a first, unmeasured one: fails early when broken
        for concurrency in LEVELS:
            busy = quiet()
            level = run_level(target, concurrency, cas.process.pid, las.process.pid)
            level["busy_before"] = busy
            log(
                f"cas load x{concurrency}: {level['rate']:.0f}/s, p50 {level['p50_ms']:.1f} ms, "
                f"p99 {level['p99_ms']:.1f} ms, {level['errors']} errors, CAS CPU "
                f"{level['cas_cpu']:.2f}, LAS {level['las_cpu']:.2f}, clients "
                f"{level['clients_cpu']:.2f}"
            )
            results["levels"].append(level)
        py_spy = sampling.available() if profile else None
        if py_spy is not None:
            raw = scratch / "cas-profile.txt"
            seconds = 10
            waiter = profile_cas(py_spy, cas.process.pid, raw, seconds)
            level = run_level(target, 8, cas.process.pid, las.process.pid, warmup=0.5, window=9)
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
