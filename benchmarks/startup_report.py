"""The runtime start-up section of ``BENCHMARKS.md`` (from :mod:`startup`'s results).

The section sits between two HTML comments, so ``run.py --only-startup`` can replace it in an
existing ``BENCHMARKS.md`` without touching the other numbers, and a full ``make bench``
renders it in the same place (before ``## Machine``, after the CAS load section).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import sections

BEGIN = "<!-- startup:begin (benchmarks/startup.py) -->"
END = "<!-- startup:end -->"
TARGET_EXTRA_S = 0.5
TARGET_MBPS = 500.0
LABELS = {
    "native": "native Flask",
    "converted": "converted Flask",
    "data": "converted Flask + 200 MiB in /app/data",
}


def _s(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f} s"


def _spread(entry: dict[str, float]) -> str:
    if not entry.get("n"):
        return "-"
    return f"{entry['min']:.3f} - {entry['max']:.3f} s"


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _phase_table(summary: dict[str, Any]) -> list[str]:
    """Medians of the moments (since ``docker run``) at which each phase of a start ended."""
    out = [
        "| moment (median since `docker run -d`, s) | native | converted | converted + 200 MiB |",
        "|---|---:|---:|---:|",
    ]
    rows = [("container process started (engine's `StartedAt`)", "process_started")]
    rows += [
        ("shim: started (first log line)", "shim started"),
        ("shim: image measured (authenticated set verified)", "measured"),
        ("shim: attested (CAS and LAS round trips, JWE opened)", "attested"),
        ("shim: protected directory decrypted", "decrypted"),
        ("first HTTP answer", "answer"),
    ]
    for label, key in rows:
        cells = []
        for kind in ("native", "converted", "data"):
            entry = summary.get(kind, {})
            value = entry.get(key) if key in ("process_started", "answer") else None
            if value is None:
                value = entry.get("phases", {}).get(key)
            cells.append(_s(value["median"]) if value and value.get("n") else "-")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def _delta(summary: dict[str, Any], kind: str, a: str, b: str) -> float:
    """Median time between two moments of ``kind`` (nan when either is missing)."""

    def at(key: str) -> float:
        entry = summary.get(kind, {})
        value = entry.get(key) if key in ("process_started", "answer") else None
        if value is None:
            value = entry.get("phases", {}).get(key)
        return float(value["median"]) if value and value.get("n") else float("nan")

    return at(b) - at(a)


#: What the measurements say and what follows from them (kept here, as BENCHMARKS.md is only
#: ever written by run.py).
NOTES = [
    "The shim logs at `SCONE_LOG=INFO` in every converted run (a handful of lines on stderr); "
    "the moments of its phases are the engine's arrival times of those lines "
    "(`docker logs --timestamps`), so they include the log pipe's latency but no clock of "
    "the harness.",
    "The poll is a plain `GET /` over a new TCP connection every 5 ms (after each failed "
    "attempt), from the moment the `docker run -d` child is spawned; a run counts when an "
    "`HTTP/1.x 200` status line comes back.",
]


def section(data: dict[str, Any]) -> list[str]:
    """The markdown lines, markers included."""
    summary: dict[str, Any] = data.get("summary", {})
    native = summary.get("native", {}).get("answer", {})
    converted = summary.get("converted", {}).get("answer", {})
    big = summary.get("data", {})
    extra = converted.get("median", float("nan")) - native.get("median", float("nan"))
    mbps = big.get("decrypt_mbps", {})
    out = [
        BEGIN,
        "## Runtime start-up (issue 5)",
        "",
        f"Measured {data.get('started', '?')} by `benchmarks/startup.py` (`make bench`, or "
        "`make bench BENCH_ARGS=--only-startup` for this section alone), Docker engine "
        f"{data.get('engine', '?')}, `--network host`. The native image is "
        "`images/flask/build.sh`'s Flask sample (`-e PORT=...`); the converted one is that "
        "image after `sconify image convert docker-daemon:... docker-daemon:... "
        "--binary=/usr/bin/python3 --dir=/app --env PORT=... --allow-simulation` (defaults "
        "otherwise: `--dlopen=1`, `--fork=0`, `--heap=1G`), attesting against a real "
        "`sconify cas serve` and `sconify las serve` on loopback. The third image adds "
        "50 files of 4 MiB of random bytes to `/app/data` (200 MiB to decrypt at start), "
        "converted the same way and run with `--shm-size=512m`. "
        f"{data.get('rounds', '?')} interleaved rounds (the order alternates), after one "
        "unmeasured start of each image; each container is removed after its answer. "
        "Medians, min - max spread.",
        "",
        "| image | first HTTP answer (median) | spread | runs ok |",
        "|---|---:|---:|---:|",
    ]
    for kind, label in LABELS.items():
        entry = summary.get(kind, {})
        answer = entry.get("answer", {})
        ok = answer.get("n", 0)
        out.append(
            f"| {label} | {_s(answer.get('median', float('nan')))} | {_spread(answer)} | "
            f"{ok}/{ok + entry.get('failed', 0)} |"
        )
    spread = max(
        converted.get("max", 0.0) - converted.get("min", 0.0),
        native.get("max", 0.0) - native.get("min", 0.0),
    )
    within = "within" if abs(extra) < spread else "beyond"
    out += [
        "",
        f"**Converted minus native: {extra:+.3f} s** (goal: at most +{TARGET_EXTRA_S:.1f} s: "
        f"{_mark(extra <= TARGET_EXTRA_S)}; {within} the larger spread of the two rows, "
        f"{spread:.3f} s).",
        "",
    ]
    if mbps.get("n"):
        seconds = big.get("decrypt_s", {})
        out += [
            f"**Decrypt at start: median {mbps['median']:.0f} MB/s** "
            f"(min - max {mbps['min']:.0f} - {mbps['max']:.0f} MB/s; "
            f"{big.get('decrypt_files', 0)} files, {big.get('decrypt_bytes', 0) / 1e6:.1f} MB "
            f"in a median {seconds.get('median', float('nan')):.3f} s, as the shim logs it: "
            "`decrypted ... : N files, B bytes in T s (X MB/s)`, MB = 10^6 bytes). Goal: at "
            f"least {TARGET_MBPS:.0f} MB/s: {_mark(mbps['median'] >= TARGET_MBPS)}.",
            "",
        ]
    else:
        out += ["**Decrypt at start: no run logged a decrypt line.**", ""]
    out += ["Where the time goes (median moments of each phase's end):", ""]
    out += _phase_table(summary)
    measure = _delta(summary, "converted", "shim started", "measured")
    attest = _delta(summary, "converted", "measured", "attested")
    after = _delta(summary, "converted", "decrypted", "answer")
    native_py = _delta(summary, "native", "process_started", "answer")
    decrypt_big = _delta(summary, "data", "attested", "decrypted")
    auth_files, auth_bytes = data.get("auth_set", (0, 0))
    parts = {"measure": measure, "attest": attest, "python": after - native_py}
    largest = (
        " (the largest part of the difference)"
        if all(not math.isnan(v) for v in parts.values())
        and max(parts, key=lambda k: parts[k]) == "measure"
        else ""
    )
    native_started = summary.get("native", {}).get("process_started", {})
    busy = sorted(float(r.get("busy", 0.0)) for r in data.get("runs", []))
    busy_median = statistics.median(busy) if busy else float("nan")
    busy_max = busy[-1] if busy else float("nan")
    converted_started = (
        summary.get("converted", {}).get("process_started", {}).get("median", float("nan"))
    )
    engine_extra = converted_started - native_started.get("median", float("nan"))
    out += [
        "",
        "Reading it (converted Flask, medians): the engine starts the container's process "
        f"{_s(converted_started)} after `docker run -d` (native: "
        f"{_s(native_started.get('median', float('nan')))}, a difference of "
        f"{engine_extra:+.3f} s); "
        f"the shim then spends {measure:.3f} s measuring the image: hashing the shim, the guard, "
        f"the binary and the {auth_files} files ({auth_bytes / 1e6:.1f} MB) of the "
        "authenticated set (the binary's ELF dependencies and the Python standard library), "
        f"one file after the other, and comparing them with the manifest{largest}. "
        f"Attesting takes {attest:.3f} s (one TLS connection to the CAS "
        "enclave "
        "API for challenge and attest, one LAS quote, the JWE opened), and almost nothing "
        "decrypting the small `/app`. "
        f"From there Python and Flask need {after:.3f} s to answer, against {native_py:.3f} s "
        "from process start to answer natively (the same interpreter and app; in the "
        "converted image it starts under the dlopen guard and seccomp filter, reading `/app` "
        "from `/dev/shm`). "
        f"With 200 MiB, decryption adds {decrypt_big:.3f} s between attestation and exec. "
        "The measuring step could hash the authenticated files on several goroutines instead "
        "of one after the other (the shim owner's call, `runtime_shim/internal/measure`). The "
        f"machine is shared with other sessions: just before a run, a median {busy_median:.0%} "
        f"and at most {busy_max:.0%} of the cores were busy with other work (the runs table).",
        "",
        *(f"- {note}" for note in NOTES),
        "",
        "| round | image | first answer | `docker run -d` returned | cores busy before | decrypt |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for run in data.get("runs", []):
        answer = run.get("answer_s")
        decrypt = run.get("decrypt")
        out.append(
            f"| {run.get('round')} | {LABELS.get(run.get('kind', ''), '?')} | "
            f"{_s(answer) if answer is not None else 'no answer'} | "
            f"{_s(run.get('cli_s') or float('nan'))} | {run.get('busy', float('nan')):.0%} | "
            + (f"{decrypt['bytes'] / 1e6:.1f} MB, {decrypt['mbps']:.0f} MB/s" if decrypt else "-")
            + " |"
        )
    convert_s = data.get("convert_s", {})
    out += [
        "",
        f"Stage duration {data.get('duration', float('nan')):.0f} s (conversions, not part "
        f"of the timing: {convert_s.get('converted', float('nan')):.1f} s and "
        f"{convert_s.get('data', float('nan')):.1f} s).",
        END,
    ]
    return out


def splice(text: str, lines: list[str]) -> str:
    """``text`` (a BENCHMARKS.md) with its start-up section replaced, or inserted before
    ``## Machine`` (at the end when there is none)."""
    return sections.splice(text, lines, BEGIN, END)
