"""``make bench``: sconify image convert against skopeo copy --encryption-key, side by side.

    .venv/bin/python benchmarks/run.py [--runs 5] [--big-runs 3] [--no-big] [--no-profile]
                                       [--out BENCHMARKS.md] [--keep] [--render-only]
                                       [--only-cas | --no-cas] [--only-startup | --no-startup]
                                       [--baseline REV] [--cas-window S] [--cas-rounds N]

What it does (BENCHMARKS.md, which it writes, says the same with the numbers):

1. Builds (once, cached) the native images: Debian bookworm + python3 + Flask, about 230 MB, with
   ``/app`` and ``/data`` to protect; the same plus a changed ``/app/app.py``; the same plus a
   layer of 1 GiB of random bytes (:mod:`images`).
2. Starts a *source* registry and copies the images into it with skopeo (digests preserved),
   and a CAS and a LAS (the real ``sconify cas serve`` / ``las serve`` processes).
3. Measures, interleaved and alternating the order, N runs of each tool, each run pushing into
   a *fresh, empty* destination registry (a new registry process with empty storage, started
   and stopped outside the timing): ``skopeo copy --encryption-key jwe:pub.pem`` and
   ``sconify image convert`` (pull, protect, wrap, session, push, tag), plus sconify with the
   proposed fixes applied in memory (:mod:`patched`). Wall time, CPU time and peak RSS come
   from ``wait4`` on each fresh child (:mod:`measure`).
4. Re-convert: converts the image, then the image with one changed file in ``/app`` into the
   same repository, through a counting TCP proxy, and reports the bytes each run sent.
5. Profiles one conversion with py-spy (:mod:`sampling`) and runs micro-measurements
   (:mod:`experiments`), then writes ``BENCHMARKS.md`` (:mod:`report`).
6. Its own stage: the CAS attestation load (:mod:`cas_load`): 1, 8 and 32 simulated enclaves
   against a CAS and LAS of their own; ``--only-cas`` runs just this stage and replaces only
   its section of an existing ``BENCHMARKS.md`` (:mod:`cas_report`).
7. Its own stage: the runtime start-up (:mod:`startup`): converted against native Flask on the
   real Docker engine, time to the first HTTP answer and decrypt throughput at start;
   ``--only-startup`` runs just this stage and replaces only its section
   (:mod:`startup_report`).

``--baseline REV`` (:mod:`baseline`) measures a revision of sconify side by side with the work
tree: checked out into a scratch git worktree and built there, it is one more tool in the
interleaved conversion rounds (its own CAS and LAS, started from its tree), and in the CAS load
stage its CAS and LAS alternate with the work tree's at every level. The report gets a
"before / after" table with both medians and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import baseline  # noqa: E402
import cas_load  # noqa: E402
import cas_report  # noqa: E402
import httpx  # noqa: E402
import patched  # noqa: E402
import report  # noqa: E402
import sampling  # noqa: E402
import startup  # noqa: E402
import startup_report  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from measure import Measurement, QuietWaiter, counting_proxy, run_measured  # noqa: E402

import images  # noqa: E402
from sconify.dev.registry import RegistryProcess, start_registry  # noqa: E402
from tests.support.services import CasProcess, LasProcess, run_cas, run_las  # noqa: E402

BIN = Path(sys.executable).parent
WAIT_FOR_QUIET = QuietWaiter()
SOURCE_REPO = "bench/native"


def log(message: str) -> None:
    """Progress on stderr, with the time since start."""
    print(f"[bench {time.monotonic() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


START = time.monotonic()


@dataclass
class Setup:
    """What every measurement shares."""

    scratch: Path
    source: RegistryProcess
    cas: CasProcess
    las: LasProcess
    pubkey: Path
    env: dict[str, str]
    images: images.BenchImages
    baseline: baseline.Baseline | None = None
    baseline_cas: CasProcess | None = None
    baseline_las: LasProcess | None = None


def _skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, stdin=subprocess.DEVNULL)


def _pubkey(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@contextlib.contextmanager
def fresh_registry(setup: Setup, name: str) -> Iterator[RegistryProcess]:
    """An empty destination registry, removed with its storage afterwards."""
    state = setup.scratch / "registries" / name
    registry = start_registry(state)
    try:
        yield registry
    finally:
        registry.stop()
        shutil.rmtree(state, ignore_errors=True)


def _tagged(addr: str, repository: str, tag: str) -> bool:
    accept = ", ".join(
        [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.index.v1+json",
        ]
    )
    reply = httpx.head(
        f"http://{addr}/v2/{repository}/manifests/{tag}", headers={"Accept": accept}, timeout=30
    )
    return reply.status_code == 200


@dataclass(frozen=True)
class Tool:
    """One column of the comparison: skopeo, or sconify with some fixes and a cache state.

    ``warm`` sconify runs share one layer-index cache filled by the warm-up run (the base layer
    was converted before on this machine); every other sconify run gets an empty cache of its
    own, as on a fresh CI runner. ``env`` is added to the command's environment. ``before``
    runs the ``--baseline`` revision (its tree, its CAS and LAS) instead of the work tree.
    """

    label: str
    fixes: tuple[str, ...] | None = None
    warm: bool = False
    env: tuple[tuple[str, str], ...] = ()
    before: bool = False

    @property
    def is_skopeo(self) -> bool:
        """Whether this is the peer, not sconify."""
        return self.fixes is None


SKOPEO = Tool("skopeo")
SCONIFY = Tool("sconify", ())


def before_tool(base: baseline.Baseline) -> Tool:
    """The baseline revision, cold cache like :data:`SCONIFY`."""
    return Tool(base.label, (), before=True)


def tools_available(base: baseline.Baseline | None = None) -> list[Tool]:
    """sconify as is, the baseline revision (when given), with a warm cache, and with each
    applicable set of proposed fixes."""
    out = [
        SCONIFY,
        *([before_tool(base)] if base is not None else []),
        Tool("sconify (warm layer-index cache)", (), warm=True),
        Tool("sconify (SCONIFY_NO_CACHE=1)", (), env=(("SCONIFY_NO_CACHE", "1"),)),
    ]
    for label, fixes in patched.VARIANTS:
        if fixes and all(map(patched.applicable, fixes)):
            out.append(Tool(label, fixes))
    return out


def skopeo_argv(setup: Setup, src_tag: str, dest: str) -> list[str]:
    """``skopeo copy --encryption-key jwe:pub.pem`` from the source registry to ``dest``."""
    return [
        "skopeo",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--encryption-key",
        f"jwe:{setup.pubkey}",
        f"docker://{setup.source.addr}/{SOURCE_REPO}:{src_tag}",
        f"docker://{dest}",
    ]


def sconify_argv(
    setup: Setup, src_tag: str, dest: str, fixes: tuple[str, ...], *, before: bool = False
) -> list[str]:
    """``sconify image convert`` from the source registry to ``dest`` (with ``fixes``; with
    ``before``, against the baseline's CAS and LAS: the caller sets its ``PYTHONPATH``)."""
    head = [str(BIN / "sconify")]
    if fixes:
        head = [sys.executable, str(HERE / "patched.py"), ",".join(fixes), "sconify"]
    cas, las = setup.cas, setup.las
    if before:
        if setup.baseline is None or setup.baseline_cas is None or setup.baseline_las is None:
            raise RuntimeError("a baseline run without --baseline")
        if fixes:
            raise RuntimeError("fixes are applied to the work tree only")
        head = setup.baseline.sconify_command()
        cas, las = setup.baseline_cas, setup.baseline_las
    return [
        *head,
        "image",
        "convert",
        f"docker://{setup.source.addr}/{SOURCE_REPO}:{src_tag}",
        f"docker://{dest}",
        f"--binary={images.BINARY}",
        *(f"--dir={d}" for d in images.PROTECTED),
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        f"--namespace=bench-{uuid.uuid4().hex[:12]}",
        "--create-namespace",
        "--allow-simulation",
        "--json",
    ]


@contextlib.contextmanager
def invocation(
    setup: Setup, tool: Tool, src_tag: str, dest: str
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The command line and environment of one run; a cold cache is removed afterwards."""
    if tool.fixes is None:
        yield skopeo_argv(setup, src_tag, dest), setup.env
        return
    cache = setup.scratch / ("cache-warm" if tool.warm else f"cache-{uuid.uuid4().hex[:8]}")
    env = {**setup.env, "XDG_CACHE_HOME": str(cache), **dict(tool.env)}
    if tool.before:
        # Its own identity, pins and credentials: the old client never reads the new one's files.
        assert setup.baseline is not None
        home = setup.scratch / "home-before"
        env = setup.baseline.env(
            {
                **env,
                "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_STATE_HOME": str(home / "state"),
                "DOCKER_CONFIG": str(home / "docker"),
            }
        )
    try:
        yield (sconify_argv(setup, src_tag, dest, tool.fixes, before=tool.before), env)
    finally:
        if not tool.warm:
            shutil.rmtree(cache, ignore_errors=True)


def _sconify_json(m: Measurement) -> dict[str, object]:
    try:
        value = json.loads(m.stdout)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def measure_once(setup: Setup, case: str, run: int, tool: Tool, src_tag: str) -> Measurement:
    """One run of one tool into a fresh registry."""
    repo = "bench/skopeo" if tool.is_skopeo else "bench/sconify"
    with fresh_registry(setup, f"{case}-{run}-{uuid.uuid4().hex[:8]}") as dest:
        target = f"{dest.addr}/{repo}:latest"
        busy = WAIT_FOR_QUIET()
        with invocation(setup, tool, src_tag, target) as (argv, env):
            m = run_measured(
                argv, tool=tool.label, case=case, run=run, env=env, scratch=setup.scratch / "logs"
            )
        m.extra["busy"] = busy
        m.extra["tagged"] = m.ok and _tagged(dest.addr, repo, "latest")
        if not tool.is_skopeo:
            m.extra["uploaded_bytes"] = _sconify_json(m).get("uploaded_bytes")
    status = "ok" if m.ok and m.extra["tagged"] else f"FAILED ({m.exit_code})"
    log(f"{case} run {run}: {tool.label}: {m.wall:.2f}s, {m.rss_mib:.0f} MiB, {status}")
    if not m.ok:
        log(m.stderr_tail)
    return m


def compare(
    setup: Setup, case: str, src_tag: str, runs: int, tools: list[Tool]
) -> list[Measurement]:
    """``runs`` rounds of every tool; even rounds in reverse order (none always goes first)."""
    everyone = [SKOPEO, *tools]
    out = []
    for run in range(1, runs + 1):
        order = everyone if run % 2 else list(reversed(everyone))
        for tool in order:
            out.append(measure_once(setup, case, run, tool, src_tag))
    return out


def warm_up(setup: Setup) -> None:
    """One unmeasured run of each tool: page cache, .pyc files, the CAS enrollment, and the
    layer-index cache that the warm sconify runs use (the baseline's own .pyc files and
    enrollment in its CAS too)."""
    log("warm-up (not measured)")
    measure_once(setup, "warmup", 0, SKOPEO, "v1")
    measure_once(setup, "warmup", 0, Tool("sconify", (), warm=True), "v1")
    if setup.baseline is not None:
        measure_once(setup, "warmup", 0, before_tool(setup.baseline), "v1")


def reconvert(setup: Setup) -> dict[str, object]:
    """Convert v1, then v2 (one file of /app changed) into the same repository; bytes sent.

    Both sconify runs share one cache (as one machine converting twice would); skopeo copies
    the same two images for comparison.
    """
    result: dict[str, object] = {}
    shared = Tool("sconify", (), warm=True)
    with (
        fresh_registry(setup, "reconvert") as dest,
        counting_proxy(dest.addr) as proxy,
    ):
        for tool in (shared, SKOPEO):
            repo = "bench/reconvert-" + tool.label
            runs = []
            for i, tag in enumerate(("v1", "v2"), 1):
                proxy.reset()
                target = f"{proxy.addr}/{repo}:latest"
                with invocation(setup, tool, tag, target) as (argv, env):
                    m = run_measured(
                        argv,
                        tool=tool.label,
                        case="reconvert",
                        run=i,
                        env=env,
                        scratch=setup.scratch / "logs",
                    )
                time.sleep(0.2)  # let the relay threads count the last bytes
                entry: dict[str, object] = {
                    "source": tag,
                    "ok": m.ok,
                    "wall": m.wall,
                    "sent": proxy.sent,
                    "manifest": _manifest(dest.addr, repo),
                }
                if not tool.is_skopeo:
                    entry["uploaded_bytes"] = _sconify_json(m).get("uploaded_bytes")
                if not m.ok:
                    entry["error"] = m.stderr_tail
                log(f"reconvert {tool.label} {tag}: sent {proxy.sent} bytes, ok={m.ok}")
                runs.append(entry)
            result[tool.label] = runs
    return result


def _manifest(addr: str, repo: str) -> dict[str, object] | None:
    reply = httpx.get(
        f"http://{addr}/v2/{repo}/manifests/latest",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=30,
    )
    if reply.status_code != 200:
        return None
    value = reply.json()
    return value if isinstance(value, dict) else None


def profile(setup: Setup, big: bool, tools: list[Tool]) -> dict[str, object]:
    """py-spy recordings (cold cache): the main image as is and with the most fixes; the 1 GiB
    image as is."""
    py_spy = sampling.available()
    if py_spy is None:
        log("py-spy is not installed: no profile (make bench installs it)")
        return {}
    out: dict[str, object] = {}
    fixed = [t for t in tools if t.fixes]
    plans = [("native", "v1", SCONIFY)] + ([("native", "v1", fixed[-1])] if fixed else [])
    if big:
        plans.append(("big", "big", SCONIFY))
    for case, tag, tool in plans:
        entry: dict[str, object] = {}
        for idle in (True, False) if case == "native" else (True,):
            name = f"profile-{case}-{len(tool.fixes or ())}-{'idle' if idle else 'busy'}"
            with fresh_registry(setup, name) as dest:
                target = f"{dest.addr}/bench/sconify:latest"
                with invocation(setup, tool, tag, target) as (argv, env):
                    raw = setup.scratch / f"{name}.txt"
                    status = sampling.record(py_spy, argv, raw, env, idle=idle)
                if status != 0 or not raw.exists():
                    log(f"profile {case} {tool.label}: py-spy exited with {status}")
                    continue
                if idle:
                    entry["phases"] = sampling.fold_phases(raw)
                else:
                    entry["hot"] = sampling.fold_hot_spots(raw)
        log(f"profiled {case}: {tool.label}")
        out[f"{case}|{tool.label}"] = entry
    return out


def experiments(setup: Setup) -> list[dict[str, object]]:
    """The micro-measurements (a separate process, so the patches stay there)."""
    done = subprocess.run(
        [sys.executable, str(HERE / "experiments.py"), str(setup.images.layout)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        log("experiments failed:\n" + done.stderr[-2000:])
        return []
    value = json.loads(done.stdout)
    return value if isinstance(value, list) else []


def import_rss(setup: Setup) -> Measurement:
    """Peak RSS of a Python process that only imports what a conversion imports."""
    code = (
        "import sconify.cli.main, sconify.cli.image, sconify.lift, sconify.convert, "
        "sconify.cas.client, sconify.las.client, sconify.registry.client, httpx, cryptography"
    )
    return run_measured(
        [sys.executable, "-c", code],
        tool="imports",
        case="imports",
        run=0,
        env=setup.env,
        scratch=setup.scratch / "logs",
    )


def _only_stage(
    args: argparse.Namespace,
    last: Path,
    kept_file: Path,
    *,
    key: str,
    what: str,
    run: Callable[[Path], dict[str, Any]],
    render: Callable[[str, dict[str, Any]], str],
) -> None:
    """Run one stage alone: its section of ``args.out`` is replaced, the rest kept.

    The result is kept in ``kept_file`` (for ``--render-only``) and goes into the kept results
    of the last full run (when there is one), so a later ``--render-only`` shows it too.
    """
    scratch = Path(tempfile.mkdtemp(prefix=f"sconify-bench-{key}-"))
    try:
        data = run(scratch)
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    kept_file.parent.mkdir(parents=True, exist_ok=True)
    with kept_file.open("wb") as handle:
        pickle.dump(data, handle)
    text = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(render(text, data))
    if last.exists():
        with last.open("rb") as handle:
            kept = pickle.load(handle)
        kept["results"][key] = data
        with last.open("wb") as handle:
            pickle.dump(kept, handle)
    log(f"wrote the {what} section of {args.out} ({time.monotonic() - START:.0f}s in all)")


def only_cas(args: argparse.Namespace, last: Path, last_cas: Path) -> None:
    """The CAS load stage alone (``--only-cas``)."""
    _only_stage(
        args,
        last,
        last_cas,
        key="cas_load",
        what="CAS load",
        run=lambda scratch: _cas_stage(args, scratch, None),
        render=lambda text, data: cas_report.splice(text, cas_report.section(data)),
    )


def _cas_stage(
    args: argparse.Namespace, scratch: Path, base: baseline.Baseline | None
) -> dict[str, Any]:
    """The CAS load stage; with ``--baseline``, alternating with the baseline's CAS (checked
    out here unless ``base`` is already)."""
    with contextlib.ExitStack() as stack:
        if args.baseline and base is None:
            base = stack.enter_context(baseline.checkout(args.baseline, scratch / "src", log))
        rounds = args.cas_rounds or (cas_load.BASELINE_ROUNDS if base else 1)
        window = args.cas_window or (
            cas_load.BASELINE_WINDOW_SECONDS if base else cas_load.WINDOW_SECONDS
        )
        return cas_load.run(
            scratch,
            log,
            profile=not args.no_profile,
            before=base,
            window=window,
            rounds=rounds,
        )


def only_startup(args: argparse.Namespace, last: Path, last_startup: Path) -> None:
    """The start-up stage alone (``--only-startup``)."""
    _only_stage(
        args,
        last,
        last_startup,
        key="startup",
        what="start-up",
        run=lambda scratch: startup.run(scratch, log),
        render=lambda text, data: startup_report.splice(text, startup_report.section(data)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds on the 230 MB image")
    parser.add_argument("--big-runs", type=int, default=3, help="rounds on the 1 GiB image")
    parser.add_argument("--no-big", action="store_true", help="skip the 1 GiB image")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy and experiments")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only write --out again from the results of the last run that wrote it "
        "(with --only-cas or --only-startup: only that stage's section)",
    )
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument(
        "--only-cas",
        action="store_true",
        help="only the CAS attestation load stage; replaces its section of --out",
    )
    stage.add_argument("--no-cas", action="store_true", help="skip the CAS attestation load")
    boot = parser.add_mutually_exclusive_group()
    boot.add_argument(
        "--only-startup",
        action="store_true",
        help="only the runtime start-up stage (Docker engine); replaces its section of --out",
    )
    boot.add_argument("--no-startup", action="store_true", help="skip the runtime start-up")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure git revision REV (checked out and built in a scratch worktree) "
        "side by side: conversions and the CAS load; the report gets a before / after table",
    )
    parser.add_argument(
        "--cas-window",
        type=float,
        metavar="S",
        help=f"CAS load: seconds measured per level and round (default "
        f"{cas_load.WINDOW_SECONDS:.0f}, {cas_load.BASELINE_WINDOW_SECONDS:.0f} with --baseline)",
    )
    parser.add_argument(
        "--cas-rounds",
        type=int,
        metavar="N",
        help="CAS load: rounds per level (default 1; with --baseline "
        f"{cas_load.BASELINE_ROUNDS}, each round one window of the baseline's CAS and one of "
        "the work tree's, in alternating order)",
    )
    args = parser.parse_args()
    if args.baseline and args.render_only:
        parser.error("--render-only renders the last run as it was: drop --baseline")
    if args.baseline and args.only_startup:
        parser.error("--baseline compares conversions and the CAS load, not the start-up")
    if args.baseline:
        try:
            baseline.resolve(args.baseline)
        except ValueError as error:
            parser.error(f"--baseline: {error}")
    if args.only_cas and args.only_startup:
        parser.error("--only-cas and --only-startup: choose one stage")
    # One results file per output file, so a quick run to elsewhere keeps BENCHMARKS.md's.
    key = hashlib.sha256(str(args.out.resolve()).encode()).hexdigest()[:12]
    last = images.cache_root() / "bench" / f"results-{key}.pickle"
    last_cas = last.with_name(f"cas-load-{key}.pickle")
    last_startup = last.with_name(f"startup-{key}.pickle")
    if args.render_only and args.only_startup:
        with last_startup.open("rb") as handle:
            data = pickle.load(handle)
        text = args.out.read_text() if args.out.exists() else ""
        args.out.write_text(startup_report.splice(text, startup_report.section(data)))
        log(f"wrote the start-up section of {args.out} from {last_startup}")
        return
    if args.render_only and args.only_cas:
        with last_cas.open("rb") as handle:
            data = pickle.load(handle)
        text = args.out.read_text() if args.out.exists() else ""
        args.out.write_text(cas_report.splice(text, cas_report.section(data)))
        log(f"wrote the CAS load section of {args.out} from {last_cas}")
        return
    if args.render_only:
        with last.open("rb") as handle:
            kept = pickle.load(handle)
        args.out.write_text(report.render(kept["results"], kept["images"]))
        log(f"wrote {args.out} from {last}")
        return
    if args.only_cas:
        only_cas(args, last, last_cas)
        return
    if args.only_startup:
        only_startup(args, last, last_startup)
        return

    bench_images = images.build(log)
    scratch = Path(tempfile.mkdtemp(prefix="sconify-bench-"))
    log(f"scratch directory {scratch}")
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "XDG_CONFIG_HOME": str(scratch / "home" / "config"),
        "XDG_STATE_HOME": str(scratch / "home" / "state"),
        "DOCKER_CONFIG": str(scratch / "home" / "docker"),
        # An installed sconify runs from compiled bytecode (pip compiles a wheel's modules);
        # this checkout is an editable install, so the warm-up run compiles it here, outside
        # the tree, and the measured runs read it (as they read site-packages' .pyc files).
        "PYTHONPYCACHEPREFIX": str(scratch / "pycache"),
    }
    results: dict[str, object] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "runs": args.runs,
        "big_runs": 0 if args.no_big else args.big_runs,
    }
    try:
        with contextlib.ExitStack() as outer:
            base = None
            if args.baseline:
                base = outer.enter_context(baseline.checkout(args.baseline, scratch / "src", log))
                results["baseline"] = base.describe()
            _measure(args, results, scratch, env, bench_images, base, last_cas, last_startup)
        results["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        results["duration"] = time.monotonic() - START
        last.parent.mkdir(parents=True, exist_ok=True)
        with last.open("wb") as handle:
            pickle.dump({"results": results, "images": bench_images}, handle)
        text = report.render(results, bench_images)
        args.out.write_text(text)
        log(f"wrote {args.out} ({time.monotonic() - START:.0f}s in all)")
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _measure(
    args: argparse.Namespace,
    results: dict[str, object],
    scratch: Path,
    env: dict[str, str],
    bench_images: images.BenchImages,
    base: baseline.Baseline | None,
    last_cas: Path,
    last_startup: Path,
) -> None:
    """Every stage of a full run, into ``results``."""
    tools = tools_available(base)
    results["variants"] = [t.label for t in tools]
    with contextlib.ExitStack() as stack:
        source = start_registry(scratch / "registries" / "source")
        stack.callback(source.stop)
        las = run_las(scratch / "las")
        stack.callback(las.stop)
        cas = run_cas(scratch / "cas")
        stack.callback(cas.stop)
        setup = Setup(scratch, source, cas, las, _pubkey(scratch / "pub.pem"), env, bench_images)
        if base is not None:
            setup.baseline = base
            setup.baseline_las = baseline.run_las(base, scratch / "las-before")
            stack.callback(setup.baseline_las.stop)
            setup.baseline_cas = baseline.run_cas(base, scratch / "cas-before")
            stack.callback(setup.baseline_cas.stop)
        log(f"copying the source images into the source registry {source.addr}")
        for tag, name in (("native", "v1"), ("native-v2", "v2"), ("big", "big")):
            if name == "big" and args.no_big:
                continue
            _skopeo(
                "copy",
                "--quiet",
                "--preserve-digests",
                "--dest-tls-verify=false",
                bench_images.ref(tag),
                f"docker://{source.addr}/{SOURCE_REPO}:{name}",
            )
        results["imports"] = import_rss(setup)
        warm_up(setup)
        results["native"] = compare(setup, "native", "v1", args.runs, tools)
        if not args.no_big:
            fixed = [t for t in tools if t.fixes]
            before = [before_tool(base)] if base is not None else []
            big_tools = [SCONIFY, *before, *fixed[-1:]]
            results["big"] = compare(setup, "big", "big", args.big_runs, big_tools)
        results["reconvert"] = reconvert(setup)
        if not args.no_profile:
            results["profile"] = profile(setup, not args.no_big, tools)
            results["experiments"] = experiments(setup)
    if not args.no_cas:
        results["cas_load"] = _cas_stage(args, scratch / "cas-load", base)
        last_cas.parent.mkdir(parents=True, exist_ok=True)
        with last_cas.open("wb") as handle:
            pickle.dump(results["cas_load"], handle)
    if not args.no_startup:
        results["startup"] = startup.run(scratch / "startup", log)
        last_startup.parent.mkdir(parents=True, exist_ok=True)
        with last_startup.open("wb") as handle:
            pickle.dump(results["startup"], handle)


if __name__ == "__main__":
    main()
