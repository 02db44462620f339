"""``BENCHMARKS.md`` from the results of :mod:`run`: machine, versions, method, numbers, notes."""

from __future__ import annotations

import platform
import re
import shutil
import statistics
import subprocess
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import before_after
import cas_report
import patched
import sampling
import startup_report
from measure import Measurement

import images

RATIO_TARGET = 1.5
RSS_TARGET_MB = 150
WAIT_NOTE = "4 min of waiting in all"
ROOT = Path(__file__).resolve().parent.parent


# -- facts about the machine -------------------------------------------------------------------


def _first_line(argv: Sequence[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return "not installed"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _proc(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> list[tuple[str, str]]:
    """CPU, cores, memory, OS, kernel."""
    import os

    mem_kb = _proc("/proc/meminfo", "MemTotal").split()[0]
    debian = Path("/etc/debian_version")
    return [
        ("CPU", _proc("/proc/cpuinfo", "model name")),
        ("cores", str(os.cpu_count())),
        ("memory", f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else mem_kb),
        ("OS", f"Debian {debian.read_text().strip()}" if debian.exists() else platform.platform()),
        ("kernel", platform.release()),
        ("disk (scratch, registries)", "the machine's root file system (/tmp)"),
    ]


def versions() -> list[tuple[str, str]]:
    """Every program and library whose speed is measured or matters."""
    import ssl

    import sconify

    rev = _first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
    return [
        ("Python", platform.python_version()),
        (
            "sconify",
            f"{sconify.__version__} (git {rev}"
            + (
                "; uncommitted changes in the work tree were measured too)"
                if "dirty" in rev
                else ")"
            ),
        ),
        ("skopeo", _first_line(["skopeo", "--version"])),
        ("docker-registry", _first_line(["/usr/bin/docker-registry", "--version"])),
        ("Go", _first_line(["go", "version"])),
        ("zlib (Python)", zlib.ZLIB_RUNTIME_VERSION),
        ("OpenSSL (Python)", ssl.OPENSSL_VERSION),
        ("httpx", _package_version("httpx")),
        ("py-spy", _package_version("py-spy")),
        ("isal (ISA-L gzip, used by sconify)", _package_version("isal")),
    ]


# -- numbers -----------------------------------------------------------------------------------


def _median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


def _s(value: float) -> str:
    return f"{value:.2f} s"


def _mb(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def _by_tool(runs: Sequence[Measurement]) -> dict[str, list[Measurement]]:
    out: dict[str, list[Measurement]] = {}
    for m in runs:
        out.setdefault(m.tool, []).append(m)
    return out


def _good(runs: Sequence[Measurement]) -> list[Measurement]:
    return [m for m in runs if m.ok and m.extra.get("tagged")]


def _summary(runs: Sequence[Measurement]) -> dict[str, dict[str, float]]:
    out = {}
    for tool, items in _by_tool(runs).items():
        good = _good(items)
        out[tool] = {
            "wall": _median(m.wall for m in good),
            "cpu": _median(m.cpu for m in good),
            "rss": max((m.rss_mib for m in good), default=float("nan")),
            "rss_median": _median(m.rss_mib for m in good),
            "min": min((m.wall for m in good), default=float("nan")),
            "max": max((m.wall for m in good), default=float("nan")),
            "ok": len(good),
            "n": len(items),
        }
    return out


def _comparison_table(summary: dict[str, dict[str, float]]) -> list[str]:
    base = summary.get("skopeo", {}).get("wall", float("nan"))
    lines = [
        "| tool | wall (median) | wall (min - max) | ratio to skopeo | CPU (median) "
        "| peak RSS (max of runs) | ok |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for tool, s in summary.items():
        ratio = "1.00x" if tool == "skopeo" else f"{s['wall'] / base:.2f}x"
        lines.append(
            f"| {tool} | {_s(s['wall'])} | {s['min']:.2f} - {s['max']:.2f} s | {ratio} | "
            f"{_s(s['cpu'])} | {s['rss']:.0f} MiB | {s['ok']:.0f}/{s['n']:.0f} |"
        )
    return lines


def _runs_table(runs: Sequence[Measurement]) -> list[str]:
    lines = [
        "| run | tool | wall | CPU | peak RSS | exit | tagged | uploaded_bytes (--json) "
        "| cores busy before |",
        "|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for m in runs:
        up = m.extra.get("uploaded_bytes")
        busy = m.extra.get("busy")
        lines.append(
            f"| {m.run} | {m.tool} | {_s(m.wall)} | {_s(m.cpu)} | {m.rss_mib:.0f} MiB | "
            f"{m.exit_code} | {'yes' if m.extra.get('tagged') else 'no'} | "
            f"{up if isinstance(up, int) else '-'} | "
            f"{f'{busy:.0%}' if isinstance(busy, float) else '-'} |"
        )
    return lines


def _failures(runs: Sequence[Measurement]) -> list[str]:
    bad = [m for m in runs if not (m.ok and m.extra.get("tagged"))]
    if not bad:
        return []
    lines = ["", "Failed runs (excluded from the medians):", ""]
    for m in bad:
        tail = m.stderr_tail.replace("\n", " / ")[-400:]
        lines.append(f"- {m.case} run {m.run}, {m.tool}: exit {m.exit_code}: `{tail}`")
    return lines


def _versus(summary: dict[str, dict[str, float]], a: str, b: str) -> str:
    """``A s -> B s`` and whether the difference exceeds the runs' spread."""
    x, y = summary[a], summary[b]
    spread = max(x["max"] - x["min"], y["max"] - y["min"])
    verdict = "beyond" if abs(x["wall"] - y["wall"]) > spread else "within"
    return (
        f"wall {_s(x['wall'])} -> {_s(y['wall'])} ({verdict} the runs' spread of {spread:.2f} s), "
        f"CPU {_s(x['cpu'])} -> {_s(y['cpu'])}"
    )


def _status(ok: bool) -> str:
    return "met" if ok else "**missed**"


# -- sections ----------------------------------------------------------------------------------


def _method(results: dict[str, Any], bench: images.BenchImages) -> list[str]:
    native_c, native_u = bench.size("native")
    big_c, big_u = bench.size("big")
    variants = "\n".join(
        f"  - `{label}`: " + "; ".join(patched.FIXES[f] for f in fixes)
        for label, fixes in _variant_fixes(results)
        if fixes
    )
    return [
        "## Method",
        "",
        f"- **Image** (`benchmarks/images.py`, cached): Debian {images.SUITE} minbase with "
        f"`{images.PACKAGES}` (mmdebstrap) as one layer, plus an application layer with "
        f"`/app` (a Flask app: templates, CSS/JS, images, vendored Flask/Werkzeug/Jinja2 "
        f"sources) and `/data` (CSV, JSON, SQLite, binary blobs): {_mb(native_u)} "
        f"uncompressed, {_mb(native_c)} as gzip layers. `--dir=/app --dir=/data` are the two "
        f"protected directories, `--binary={images.BINARY}`. The 1 GiB case adds a layer with "
        f"one file of random bytes at `{images.BIG_FILE}` (inside a protected directory, so it "
        f"is encrypted: the heaviest path through sconify): {_mb(big_u)} uncompressed, "
        f"{_mb(big_c)} compressed.",
        "- **Source**: both tools read the same image from the same *source registry* "
        "(Debian's `docker-registry` on loopback, filled once with `skopeo copy "
        "--preserve-digests` from the OCI layout). A registry rather than an `oci:` layout, "
        "because pulling is part of what users wait for in CI; both tools pull over HTTP.",
        "- **Destination**: every measured run pushes into a **fresh, empty registry**: a new "
        "`docker-registry` process with empty storage on a new port, started before and removed "
        "after the run, outside the timing. Not a new repository in one long-lived registry: "
        "that registry's storage is shared by all repositories, and skopeo keeps a blob-info "
        "cache of where it has seen blobs (it may try cross-repository mounts), so later runs "
        "could be cheaper than a first push. A fresh registry is what the issue asks (an "
        "empty registry) and is the same starting point for both tools.",
        "- **skopeo**: `skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false "
        "--encryption-key jwe:pub.pem docker://SRC docker://DST` with a fresh RSA-2048 key; it "
        "encrypts every layer (the gzip blobs as they are: no decompression).",
        "- **sconify**: `sconify image convert docker://SRC docker://DST --binary=... --dir=/app "
        "--dir=/data --cas=... --las=... --namespace=<new> --create-namespace "
        "--allow-simulation --json`: pull, scan, encrypt, wrap, push untagged, store the "
        "session in the CAS (real `sconify cas serve` and `las serve` processes on loopback, "
        "started once), tag. Each run uses a new namespace, as a first conversion does. "
        "sconify runs from compiled bytecode, as an installed package does (the warm-up run "
        "compiles this editable checkout into `PYTHONPYCACHEPREFIX`; the machine sets "
        "`PYTHONDONTWRITEBYTECODE`, which the harness drops for its runs).",
        "- **Layer-index cache**: sconify keeps the index of every layer it has scanned under "
        "`$XDG_CACHE_HOME/sconify/layer-index`, so a base layer converted once is not read "
        "again. Every measured sconify run gets an empty cache of its own (a fresh CI runner; "
        "no state from earlier runs, like skopeo); the row `sconify (warm layer-index cache)` "
        "shares one cache filled by the warm-up run (a machine that converted the same base "
        "image before).",
        "- **Variants**: the same command in a fresh process with one or more proposed fixes "
        "applied in memory by `benchmarks/patched.py` (nothing in `sconify/` is changed), "
        "cold cache:",
        variants,
        f"- **Rounds**: {results.get('runs')} on the {_mb(native_u)} image and "
        f"{results.get('big_runs')} on the 1 GiB image; in each round every tool runs once, "
        "odd rounds in one order and even rounds in the reverse, after one unmeasured warm-up "
        "run of each tool (page cache, `.pyc` files, the client's CAS enrollment). Medians of "
        "the successful runs are reported, with their spread: a difference smaller than "
        "the spread is noise (the machine's two cores also run the registries and the CAS). "
        "Before each run the harness waits, up to 10 s, until other work keeps under 25% of "
        f"the cores busy ({WAIT_NOTE}), and records how busy they were (last column of the "
        "run tables).",
        "- **Measured**: wall time from spawn to exit; CPU time (user + system) and peak RSS "
        "(`ru_maxrss`) from `wait4` on the fresh child process; a run counts when it exits 0 "
        "and the destination tag then exists.",
        "- **Re-convert**: convert `v1` into `bench/reconvert-sconify:latest`, then `v2` "
        "(the same plus a top layer that changes `/app/app.py`) into the same repository; the "
        "bytes each run sends to the registry are counted by a TCP relay in front of it "
        "(`benchmarks/measure.py`: request bodies plus HTTP headers, HEAD probes included) and "
        "compared with the CLI's `uploaded_bytes`. skopeo does the same for comparison.",
        "- **Profile**: py-spy samples the real command (all threads, "
        f"{sampling.RATE} Hz): with idle samples for the main thread's phases, without them for "
        "CPU hot spots. Profiled runs are not in the timing tables.",
    ]


def _variant_fixes(results: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    labels = set(results.get("variants", []))
    return [(label, fixes) for label, fixes in patched.VARIANTS if label in labels]


def _phases_table(profile: sampling.Profile) -> list[str]:
    lines = ["| phase (main thread) | wall | share |", "|---|---:|---:|"]
    for name, count in profile.phases.most_common():
        lines.append(f"| {name} | {_s(profile.seconds(count))} | {count / profile.total:.0%} |")
    lines.append(f"| **total** | {_s(profile.seconds(profile.total))} | |")
    return lines


def _clean_frame(frame: str) -> str:
    return re.sub(r"\s+", " ", frame).replace("|", "\\|")


def _hot_table(profile: sampling.Profile, limit: int = 12) -> list[str]:
    lines = [
        "| innermost sconify frame (what asked for the work) | CPU | share |",
        "|---|---:|---:|",
    ]
    for frame, count in profile.sconify_frames.most_common(limit):
        lines.append(
            f"| `{_clean_frame(frame)}` | {_s(profile.seconds(count))} | "
            f"{count / profile.total:.0%} |"
        )
    lines += ["", "| leaf function (where the CPU is) | CPU | share |", "|---|---:|---:|"]
    for frame, count in profile.leaves.most_common(limit):
        lines.append(
            f"| `{_clean_frame(frame)}` | {_s(profile.seconds(count))} | "
            f"{count / profile.total:.0%} |"
        )
    return lines


def _experiments_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "| what | how | time (median of 3) | in | out | throughput |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["group"] == "imports":
            lines.append(
                f"| import (python -X importtime, cumulative) | `{r['name']}` | "
                f"{r['seconds'] * 1000:.0f} ms | | | |"
            )
            continue
        rate = r["bytes_in"] / r["seconds"] / 1e6 if r["seconds"] > 0 else float("inf")
        out = (
            _mb(r["bytes_out"])
            if r["group"] != "scan the native layers"
            else (f"{r['bytes_out']} paths")
        )
        lines.append(
            f"| {r['group']} | {r['name']} | {r['seconds']:.3f} s | {_mb(r['bytes_in'])} | "
            f"{out} | {rate:.0f} MB/s |"
        )
    return lines


def _exp(rows: Sequence[dict[str, Any]], group: str, name: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["group"] == group and r["name"] == name), None)


def _reconvert_section(data: dict[str, Any]) -> tuple[list[str], str]:
    lines = [
        "## Re-convert after a change in `/app`",
        "",
        "| tool | source | bytes sent to the registry (TCP relay) | `uploaded_bytes` (--json) "
        "| wall | ok |",
        "|---|---|---:|---:|---:|---|",
    ]
    verdict = "not measured"
    for tool in ("sconify", "skopeo"):
        for entry in data.get(tool, []):
            up = entry.get("uploaded_bytes")
            lines.append(
                f"| {tool} | {entry['source']} | {entry['sent']:,} | "
                f"{f'{up:,}' if isinstance(up, int) else '-'} | {_s(entry['wall'])} | "
                f"{'yes' if entry['ok'] else 'no: ' + str(entry.get('error', ''))[-200:]} |"
            )
    runs = data.get("sconify", [])
    if len(runs) == 2 and runs[0].get("manifest") and runs[1].get("manifest"):
        first, second = runs[0]["manifest"], runs[1]["manifest"]
        old = {x["digest"] for x in first["layers"]} | {first["config"]["digest"]}
        lines += [
            "",
            "Layers of the second conversion (from its manifest) and whether the first one "
            "had already put them into the repository:",
            "",
            "| # | media type | size | already there |",
            "|---:|---|---:|---|",
        ]
        new_bytes = 0
        for i, layer in enumerate(second["layers"]):
            there = layer["digest"] in old
            if not there:
                new_bytes += layer["size"]
            lines.append(
                f"| {i} | `{layer['mediaType']}` | {layer['size']:,} | {'yes' if there else 'no'} |"
            )
        config = second["config"]
        if config["digest"] not in old:
            new_bytes += config["size"]
        sent = runs[1]["sent"]
        total = sum(x["size"] for x in second["layers"]) + config["size"]
        lines += [
            "",
            f"The second conversion needed {new_bytes:,} bytes of new blobs (new layers and "
            f"config) out of {total:,}; it sent {sent:,} bytes in all (blobs, manifests, HTTP "
            f"headers and probes). The first sent {runs[0]['sent']:,}.",
        ]
        verdict = (
            f"{_mb(sent)} sent by the second run ({sent / max(runs[0]['sent'], 1):.0%} of the "
            f"first run's {_mb(runs[0]['sent'])}); only changed layers: "
            f"{_status(sent < new_bytes * 1.05 + 200_000)}"
        )
    return lines, verdict


# -- the document ------------------------------------------------------------------------------


def render(results: dict[str, Any], bench: images.BenchImages) -> str:
    """The whole of BENCHMARKS.md."""
    native: list[Measurement] = results.get("native", [])
    big: list[Measurement] = results.get("big", [])
    s_native = _summary(native)
    s_big = _summary(big)
    rows: list[dict[str, Any]] = results.get("experiments", [])
    profiles: dict[str, Any] = results.get("profile", {})

    def ratio(summary: dict[str, dict[str, float]], tool: str = "sconify") -> float:
        return summary.get(tool, {}).get("wall", float("nan")) / summary.get("skopeo", {}).get(
            "wall", float("nan")
        )

    r_native = ratio(s_native)
    rss_native = s_native.get("sconify", {}).get("rss", float("nan"))
    rss_big = s_big.get("sconify", {}).get("rss", float("nan"))
    re_lines, re_verdict = _reconvert_section(results.get("reconvert", {}))
    imports: Measurement | None = results.get("imports")

    out: list[str] = [
        "# Benchmarks: `sconify image convert` against `skopeo copy --encryption-key`",
        "",
        "Written by `make bench` (`benchmarks/run.py`) from "
        f"{results.get('started')} to {results.get('finished')} "
        f"({results.get('duration', 0) / 60:.1f} min). Do not edit: run it again. Method, "
        "fixtures and how to read the numbers: `docs/dev/benchmarks.md`.",
        "",
        "## Summary",
        "",
        "| acceptance point (issue 3) | measured | target |",
        "|---|---|---|",
        f"| full convert within 1.5x of skopeo's wall time ({_mb(bench.size('native')[1])} image) "
        f"| {_s(s_native.get('sconify', {}).get('wall', float('nan')))} vs "
        f"{_s(s_native.get('skopeo', {}).get('wall', float('nan')))}: **{r_native:.2f}x** "
        f"| {_status(r_native <= RATIO_TARGET)} |",
        f"| peak RSS under {RSS_TARGET_MB} MB, same image | {rss_native:.0f} MiB "
        f"| {_status(rss_native * 1.048576 < RSS_TARGET_MB)} |",
    ]
    if s_big:
        out.append(
            f"| peak RSS under {RSS_TARGET_MB} MB, image with a 1 GiB incompressible layer "
            f"| {rss_big:.0f} MiB | {_status(rss_big * 1.048576 < RSS_TARGET_MB)} |"
        )
    out.append(
        f"| re-convert after a change in /app uploads only the changed layers | {re_verdict} | |"
    )
    phase = "native|sconify"
    out += [
        "",
        f"**{'Why the speed target is missed' if r_native > RATIO_TARGET else 'How'}.** "
        "skopeo never opens a layer: it encrypts the gzip blobs as they stream from one "
        "registry to the other. sconify must inflate every layer to build the merged file "
        "system (to find the binary's libraries and every file below `--dir`), hash every "
        "file, encrypt the protected trees and write new layers. It overlaps what it can: each "
        "layer is indexed on a thread while it downloads (the download feeds the inflater); "
        "as soon as the last index is in and the `--dir` paths are resolved, the layers that "
        "hold no protected path start uploading, and every layer sconify writes starts "
        "uploading when it is written; the session is stored while they upload; the tag "
        "comes last. What cannot overlap by design: the untouched base layer's upload starts "
        "only once its whole index is in, since until then nobody knows that it holds no "
        "protected plaintext. In the profiled run (main thread): pull and index "
        f"{_s(_phase_seconds(profiles, phase, 'pull'))}, scan (the rest of the indexing) "
        f"{_s(_phase_seconds(profiles, phase, 'scan'))}, push (waiting for the uploads) "
        f"{_s(_phase_seconds(profiles, phase, 'push'))}, Python imports "
        f"{_s(_phase_seconds(profiles, phase, 'Python imports'))}; skopeo's whole copy takes "
        f"{_s(s_native.get('skopeo', {}).get('wall', float('nan')))}.",
    ]
    best = [(t, ratio(s_native, t)) for t in s_native if t.startswith("sconify +")]
    if best:
        tool, value = min(best, key=lambda x: x[1])
        out += [
            "",
            f"With the fixes proposed below applied in memory, `{tool}` takes "
            f"{_s(s_native[tool]['wall'])}: **{value:.2f}x** skopeo "
            f"({_status(value <= RATIO_TARGET)}; differences within the min - max spread of "
            "the tables below are noise; CPU time, which other work on the machine disturbs "
            "less, is in the tables too).",
        ]
    warm = "sconify (warm layer-index cache)"
    if warm in s_native:
        value = ratio(s_native, warm)
        out += [
            "",
            f"When the machine has converted the same base image before (warm layer-index "
            f"cache), sconify takes {_s(s_native[warm]['wall'])}: **{value:.2f}x** skopeo "
            f"({_status(value <= RATIO_TARGET)}).",
        ]
    titles = {
        "native": f"convert, {_mb(bench.size('native')[1])} image",
        "big": "convert, image with a 1 GiB layer",
    }
    hardening = before_after.section(results, titles)
    if hardening:
        out += ["", *hardening]
    if "cas_load" in results:
        out += ["", *cas_report.section(results["cas_load"])]
    if "startup" in results:
        out += ["", *startup_report.section(results["startup"])]
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in machine()]
    busy = [x for m in [*native, *big] if isinstance(x := m.extra.get("busy"), float)]
    if busy:
        out.append(
            f"| cores busy with other work just before a run | median {_median(busy):.0%}, "
            f"max {max(busy):.0%} (each run waits up to 10 s for under 25%, at most "
            f"{WAIT_NOTE}) |"
        )
    out += ["", "## Versions", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in versions()]
    base = results.get("baseline")
    if base:
        out.append(
            f"| sconify before (`--baseline {base['rev']}`) | git {base['commit']} "
            f'("{base["subject"]}") |'
        )
    out += ["", *_method(results, bench)]
    out += ["", f"## The {_mb(bench.size('native')[1])} image", ""]
    out += _comparison_table(s_native) + _failures(native)
    if big:
        out += ["", "## The image with a 1 GiB incompressible layer", ""]
        out += _comparison_table(s_big) + _failures(big)
    if imports is not None:
        out += [
            "",
            f"For scale: a Python process that only imports what a conversion imports peaks "
            f"at {imports.rss_mib:.0f} MiB and takes {_s(imports.wall)}.",
        ]
    out += ["", *re_lines]
    out += ["", "## Where sconify's time goes", ""]
    out += _profile_section(profiles, s_native, s_big)
    out += ["", "## Micro-measurements behind the fixes", ""]
    out += _experiments_table(rows) if rows else ["(not run: `--no-profile`)"]
    out += ["", "## Proposed fixes, with numbers", ""]
    out += _proposals(
        s_native,
        s_big,
        rows,
        profiles,
        results.get("reconvert", {}),
        bench,
        imports.rss_mib if imports is not None else None,
    )
    out += ["", "## Every run", "", f"### {_mb(bench.size('native')[1])} image", ""]
    out += _runs_table(native)
    if big:
        out += ["", "### 1 GiB layer", "", *_runs_table(big)]
    return "\n".join(out) + "\n"


def _profile_section(
    profiles: dict[str, Any], s_native: dict[str, Any], s_big: dict[str, Any]
) -> list[str]:
    if not profiles:
        return ["(not profiled: py-spy missing or `--no-profile`)"]
    out: list[str] = []
    for key, entry in profiles.items():
        case, label = key.split("|", 1)
        title = "the 230 MB image" if case == "native" else "the 1 GiB image"
        out += [f"### `{label}`, {title}", ""]
        if "phases" in entry:
            out += [*_phases_table(entry["phases"]), ""]
        if "hot" in entry:
            out += [*_hot_table(entry["hot"]), ""]
    out.append(
        "py-spy slows the process a little and the phase attribution is by the innermost "
        "known frame of the main thread (pull and push run in worker threads; the main thread "
        "waits for them inside the pull or push phase)."
    )
    return out


def _phase_seconds(profiles: dict[str, Any], key: str, *names: str) -> float:
    entry = profiles.get(key, {})
    profile: sampling.Profile | None = entry.get("phases")
    if profile is None:
        return float("nan")
    return sum(
        profile.seconds(count)
        for phase, count in profile.phases.items()
        if any(phase.startswith(n) for n in names)
    )


def _proposals(
    s_native: dict[str, Any],
    s_big: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    profiles: dict[str, Any],
    reconvert: dict[str, Any],
    bench: images.BenchImages,
    imports_rss: float | None,
) -> list[str]:
    big_key = "big|sconify"
    out: list[str] = []
    n = 0

    def item(text: str) -> None:
        nonlocal n
        n += 1
        out.append(f"{n}. {text}")

    plain = "sconify +plain-protected"
    now = _exp(rows, "compress ciphertext (protected layer)", "isal-2")
    before = _exp(rows, "compress ciphertext (protected layer)", "gzip-6")
    if plain in s_native or now:
        rate = now["bytes_in"] / now["seconds"] / 1e6 if now and now["seconds"] else float("nan")
        gz_rate = (
            before["bytes_in"] / before["seconds"] / 1e6
            if before and before["seconds"]
            else float("nan")
        )
        numbers = ""
        if now:
            numbers = (
                f" ISA-L level 2 turns {_mb(now['bytes_in'])} of ciphertext into "
                f"{_mb(now['bytes_out'])} at {rate:.0f} MB/s ({1024**3 / 1e6 / rate:.1f} s per "
                f"GiB); zlib level 6, used before ISA-L, managed {gz_rate:.0f} MB/s "
                f"({1024**3 / 1e6 / gz_rate:.0f} s per GiB)."
            )
        measured = ""
        if plain in s_native and "sconify" in s_native:
            measured = f" Whole command: {_versus(s_native, 'sconify', plain)}"
            if plain in s_big and "sconify" in s_big:
                measured += f"; on the 1 GiB image: {_versus(s_big, 'sconify', plain)}"
            measured += "."
        item(
            "**Store the protected layer uncompressed** (`convert.py`, `mutate/wrap.py`, owner: "
            "conversion). It is almost all AES-GCM ciphertext, which no compressor shrinks, "
            "so compressing it is pure cost; an uncompressed OCI layer "
            "(`application/vnd.oci.image.layer.v1.tar`) is read by every engine, Docker 20.10 "
            "included. (Compressing each file's plaintext before encrypting it would shrink "
            "it instead: an SCFS format question for the shim's owner.)" + numbers + measured
        )
    shim = _exp(rows, "compress the shim (runtime layer)", "isal-2")
    shim6 = _exp(rows, "compress the shim (runtime layer)", "gzip-6")
    if shim:
        item(
            "**Build the runtime layer once per sconify build** (`mutate/wrap.py`). It is "
            "byte-identical for every conversion, yet the shim is tarred and compressed each "
            f"time: {shim['seconds'] * 1000:.0f} ms with ISA-L level 2 for "
            f"{_mb(shim['bytes_in'])}"
            + (f" ({shim6['seconds'] * 1000:.0f} ms with zlib level 6)" if shim6 else "")
            + ". Small now; caching the blob beside the shim (keyed by the shim's sha256 and "
            "the compression), or having `make shim` write it, also makes its digest a "
            "constant that registries already hold."
        )
    if big_key in profiles:
        encrypt = _phase_seconds(profiles, big_key, "encrypt")
        protected = _phase_seconds(profiles, big_key, "protected layer")
        item(
            "**Write protected data once** (`mutate/protect.py`, `mutate/wrap.py`). A "
            "protected file is encrypted straight from its layer's stream into one pack file "
            "(spooled first only when hard links share it), and the pack is then copied into "
            "the protected layer, which streams compressed into the blob store: two writes of "
            "every protected byte, and the protected layer's upload starts only when it is "
            "complete. On the 1 GiB image the encryption step takes "
            f"{_s(encrypt)} and building the protected layer {_s(protected)}. Writing the "
            "ciphertexts straight into the protected layer (the fspf after them) would leave "
            "one write, and uploading that layer while it is written (its digest is needed "
            "only by the last request) would overlap most of the rest."
        )
    runs = reconvert.get("sconify", [])
    if len(runs) == 2:
        sizes = bench.protected_bytes()
        item(
            "**Re-convert: upload less than all protected data** (`convert.py`, `lift.py`). "
            f"After a one-file change in `/app` the second run still sent {runs[1]['sent']:,} "
            "bytes, because every conversion draws a new volume key, so every ciphertext and "
            "with it the whole protected layer changes ("
            + ", ".join(f"`{d}` {_mb(b)}" for d, b in sizes.items())
            + " of plaintext). One protected layer per `--dir` would keep an unchanged "
            "directory's layer only if its ciphertexts were reused: that means updating a "
            "session with its existing volume key (read from the CAS by the session's "
            "owner) and keeping unchanged files' `file_id`s. A security decision for the "
            "conversion and CAS owners. skopeo re-sends everything on every copy (table "
            "above), since it encrypts each layer with a new key."
        )
    if "sconify" in s_native:
        big_rss = s_big.get("sconify", {}).get("rss")
        native_rss = s_native["sconify"]["rss"]
        item(
            f"**Memory needs no fix**: sconify's peak RSS is {native_rss:.0f} MiB on the "
            "230 MB image"
            + (
                f" and {big_rss:.0f} MiB with the 1 GiB layer ({big_rss - native_rss:+.0f} MiB "
                "for 1 GiB more data: the stages stream, and a protected file is held in "
                "memory only up to 8 MiB before it is spooled to disk)"
                if big_rss
                else ""
            )
            + (
                f"; importing the modules alone peaks at {imports_rss:.0f} MiB, and the rest "
                "is buffers, the merged view and the HTTP clients"
                if imports_rss
                else ""
            )
            + ". The Python floor is far above skopeo's (Go) but far below the target."
        )
    return out
