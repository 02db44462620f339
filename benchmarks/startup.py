"""The runtime start-up benchmark (issue 5): converted against native Flask, on the real engine.

    .venv/bin/python benchmarks/run.py --only-startup    # this stage alone (make bench runs it too)

Three images, all in the local Docker engine (``sconify.dev.engine.ensure_engine``):

- ``native``: the Flask sample of ``images/flask/build.sh``;
- ``converted``: the same converted by ``sconify image convert docker-daemon:... docker-daemon:...
  --binary=/usr/bin/python3 --dir=/app --env PORT=... --allow-simulation`` (real CAS and LAS
  processes on loopback, which the container reaches through ``--network host``);
- ``data``: the sample plus a layer of 50 files of 4 MiB of random bytes in ``/app/data``
  (200 MiB to decrypt at start), converted the same way and run with ``--shm-size=512m``.

One run is: ``docker run -d --network host`` issued as a child process, the port polled every
few milliseconds from that moment with a plain HTTP GET, the time of the first complete HTTP
answer taken, then ``docker logs --timestamps`` (the engine's own arrival time of each log
line, which splits the converted start into its phases), ``docker inspect`` and ``docker rm -f``.
Native and converted runs are interleaved, the order alternating by round.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from tests.support.services import run_cas, run_las  # noqa: E402

BIN = Path(sys.executable).parent
ROUNDS = 5
DATA_FILES = 50
DATA_FILE_BYTES = 4 * 1024 * 1024
POLL_SECONDS = 0.005
ANSWER_DEADLINE = 60.0
PREFIX = "sconify-bench-startup"
DECRYPTED = re.compile(
    r"decrypted (?P<what>.*?) into (?P<into>\S+): (?P<files>\d+) files, (?P<bytes>\d+) bytes "
    r"in (?P<seconds>[0-9.]+) s \((?P<mbps>[0-9.]+) MB/s\)"
)
#: Shim log lines (at SCONE_LOG=INFO) that end a phase of the start, in order.
MILESTONES = (
    ("shim started", "simulation mode"),
    ("measured", "measurement "),
    ("attested", "attested as "),
    ("decrypted", "decrypted "),
)


def _docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    """Whether a complete HTTP status line comes back from ``GET /`` on the port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            head = conn.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and b" 200 " in head[:16]


def _engine_time(text: str) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds) as epoch seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    whole = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC).timestamp()
    return whole + float(f"0.{frac or 0}")


def _running(name: str) -> bool:
    state = _docker("inspect", "--format", "{{.State.Running}}", name, check=False)
    return state.strip() == "true"


def run_once(image: str, port: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """``docker run -d`` of ``image`` until it answers on ``port``; times and log facts."""
    name = f"{PREFIX}-{uuid.uuid4().hex[:10]}"
    argv = ["docker", "run", "-d", "--name", name, "--network", "host", *extra, image]
    wall0 = time.time()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    answered: float | None = None
    cli_returned: float | None = None
    polls = 0
    try:
        while time.monotonic() - t0 < ANSWER_DEADLINE:
            if cli_returned is None and proc.poll() is not None:
                cli_returned = time.monotonic() - t0
                if proc.returncode != 0:
                    break
            if _answers(port):
                answered = time.monotonic() - t0
                break
            polls += 1
            # A container that ended (a refused start) will never answer: stop waiting.
            if cli_returned is not None and polls % 100 == 0 and not _running(name):
                break
            time.sleep(POLL_SECONDS)
        proc.wait()
        if cli_returned is None:
            cli_returned = time.monotonic() - t0
        logs = subprocess.run(
            ["docker", "logs", "--timestamps", name],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        started = _docker("inspect", "--format", "{{.State.StartedAt}}", name, check=False)
    finally:
        _docker("rm", "-f", name, check=False)
    text = logs.stdout + logs.stderr
    out: dict[str, Any] = {
        "answer_s": answered,
        "cli_s": cli_returned,
        "ok": answered is not None,
        "process_started_s": _engine_time(started.strip()) - wall0 if started.strip() else None,
    }
    phases: dict[str, float] = {}
    for line in text.splitlines():
        stamp, _, message = line.partition(" ")
        for label, needle in MILESTONES:
            if label not in phases and needle in message:
                with contextlib.suppress(ValueError):  # a line without a timestamp
                    phases[label] = _engine_time(stamp) - wall0
        found = DECRYPTED.search(message)
        if found:
            out["decrypt"] = {
                "files": int(found["files"]),
                "bytes": int(found["bytes"]),
                "seconds": float(found["seconds"]),
                "mbps": float(found["mbps"]),
            }
    out["phases"] = phases
    if not out["ok"]:
        out["error"] = (proc.stderr.read().decode() if proc.stderr else "") + text[-1500:]
    if proc.stderr:
        proc.stderr.close()
    return out


def _quiet(argv: list[str], **env: str) -> None:
    """Run a build step; its output (the legacy builder's notices) only shows on failure."""
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{done.stderr[-2000:]}")


def build_images(scratch: Path, prefix: str, log: Callable[[str], None]) -> dict[str, str]:
    """The native sample (``images/flask/build.sh``) and the sample with 200 MiB in /app/data."""
    native = f"{prefix}/native-flask:latest"
    _quiet([str(ROOT / "images/flask/build.sh"), "--tag", native])
    context = scratch / "data-image"
    (context / "blobs").mkdir(parents=True)
    for i in range(DATA_FILES):
        (context / "blobs" / f"blob-{i:02d}.bin").write_bytes(os.urandom(DATA_FILE_BYTES))
    (context / "Dockerfile").write_text(f"FROM {native}\nCOPY blobs/ /app/data/\n")
    data = f"{prefix}/data-flask:latest"
    _quiet(["docker", "build", "--quiet", "-t", data, str(context)], DOCKER_BUILDKIT="0")
    shutil.rmtree(context, ignore_errors=True)
    log(f"built {native} and {data}")
    return {"native": native, "data": data}


def convert(source: str, target: str, port: int, cas: str, las: str, env: dict[str, str]) -> float:
    """``sconify image convert`` daemon to daemon; returns its wall time."""
    argv = [
        str(BIN / "sconify"),
        "image",
        "convert",
        f"docker-daemon:{source}",
        f"docker-daemon:{target}",
        "--binary=/usr/bin/python3",
        "--dir=/app",
        f"--cas={cas}",
        f"--las={las}",
        f"--namespace=startup-{uuid.uuid4().hex[:10]}",
        "--create-namespace",
        "--allow-simulation",
        "--env",
        f"PORT={port}",
        "--json",
    ]
    t0 = time.monotonic()
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"conversion of {source} failed:\n{done.stderr[-2000:]}")
    return time.monotonic() - t0


AUTH_SET_CODE = (
    "import json, os; f = json.load(open('/sconify/auth/manifest.json'))['files']; "
    "print(json.dumps([len(f), sum(os.path.getsize(p) for p in f)]))"
)


def auth_set_size(image: str) -> tuple[int, int]:
    """Files and bytes the shim hashes at every start (the authenticated-files manifest), read
    by the image's own Python with the shim bypassed (``--entrypoint``)."""
    out = _docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/python3", image,
        "-c", AUTH_SET_CODE,
    )  # fmt: skip
    files, size = json.loads(out)
    return int(files), int(size)


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def run(scratch: Path, log: Callable[[str], None], *, rounds: int = ROUNDS) -> dict[str, Any]:
    """The whole stage: engine, images, CAS and LAS, two conversions, the measured runs."""
    from measure import QuietWaiter

    from sconify.dev.engine import ensure_engine

    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "rounds": rounds,
        "runs": [],
    }
    t_stage = time.monotonic()
    scratch.mkdir(parents=True, exist_ok=True)
    engine = ensure_engine(log_dir=scratch / "dockerd")
    quiet = QuietWaiter(patience=5.0, budget=40.0)
    made: list[str] = []
    # Names unique to this process: two benchmark runs on one engine never share an image.
    prefix = f"{PREFIX}-{os.getpid()}"
    try:
        results["engine"] = _docker("version", "--format", "{{.Server.Version}}").strip()
        sources = build_images(scratch, prefix, log)
        made += sources.values()
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(scratch / "home" / "config"),
            "XDG_STATE_HOME": str(scratch / "home" / "state"),
            "XDG_CACHE_HOME": str(scratch / "home" / "cache"),
        }
        with run_las(scratch / "las") as las, run_cas(scratch / "cas") as cas:
            ports = {"native": _free_port(), "converted": _free_port(), "data": _free_port()}
            targets = {
                "converted": f"{prefix}/converted-flask:latest",
                "data": f"{prefix}/converted-data-flask:latest",
            }
            results["convert_s"] = {}
            for key, source in (("converted", sources["native"]), ("data", sources["data"])):
                results["convert_s"][key] = convert(
                    source, targets[key], ports[key], cas.api_addr, las.addr, env
                )
                made.append(targets[key])
                log(f"converted {source}: {results['convert_s'][key]:.1f} s")
            results["auth_set"] = auth_set_size(targets["converted"])
            kinds: dict[str, tuple[str, list[str]]] = {
                "native": (sources["native"], ["-e", f"PORT={ports['native']}"]),
                "converted": (targets["converted"], ["-e", "SCONE_LOG=INFO"]),
                "data": (targets["data"], ["-e", "SCONE_LOG=INFO", "--shm-size=512m"]),
            }
            # One unmeasured start of each: page cache, the CAS's first session read.
            for kind, (image, extra) in kinds.items():
                first = run_once(image, ports[kind], extra)
                if not first["ok"]:
                    raise RuntimeError(f"{kind} does not start:\n{first.get('error', '')}")
            order = list(kinds)
            for rnd in range(1, rounds + 1):
                for kind in order if rnd % 2 else reversed(order):
                    image, extra = kinds[kind]
                    busy = quiet()
                    one = run_once(image, ports[kind], extra)
                    one.update(kind=kind, round=rnd, busy=busy)
                    results["runs"].append(one)
                    answer = one["answer_s"]
                    decrypt = one.get("decrypt")
                    log(
                        f"startup round {rnd} {kind}: "
                        + (f"{answer:.3f} s" if answer is not None else "NO ANSWER")
                        + (f", decrypt {decrypt['mbps']:.0f} MB/s" if decrypt else "")
                    )
    finally:
        for image in made:
            _docker("rmi", "-f", image, check=False)
        engine.stop()
    results["summary"] = summarise(results["runs"])
    results["duration"] = time.monotonic() - t_stage
    return results


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and spreads per kind: answer time, phase ends, decrypt numbers."""
    out: dict[str, Any] = {}
    for kind in ("native", "converted", "data"):
        mine = [r for r in runs if r["kind"] == kind]
        ok = [r for r in mine if r["ok"]]
        entry: dict[str, Any] = {
            "failed": len(mine) - len(ok),
            "answer": _summary([r["answer_s"] for r in ok]),
            "process_started": _summary(
                [r["process_started_s"] for r in ok if r["process_started_s"] is not None]
            ),
            "phases": {
                label: _summary([r["phases"][label] for r in ok if label in r["phases"]])
                for label, _ in MILESTONES
            },
        }
        decrypts = [r["decrypt"] for r in ok if "decrypt" in r]
        if decrypts:
            entry["decrypt_mbps"] = _summary([d["mbps"] for d in decrypts])
            entry["decrypt_s"] = _summary([d["seconds"] for d in decrypts])
            entry["decrypt_bytes"] = decrypts[0]["bytes"]
            entry["decrypt_files"] = decrypts[0]["files"]
        out[kind] = entry
    return out


def main() -> None:
    """Run the stage alone and print its JSON (``run.py --only-startup`` writes the report)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sconify-startup-") as tmp:
        result = run(Path(tmp), lambda m: print(m, file=sys.stderr))
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
