"""The CAS attestation load section of ``BENCHMARKS.md`` (from :mod:`cas_load`'s results).

The section sits between two HTML comments, so ``run.py --only-cas`` can replace it in an
existing ``BENCHMARKS.md`` without touching the conversion numbers, and a full ``make bench``
renders it in the same place (before ``## Machine``).
"""

from __future__ import annotations

import math
from typing import Any

BEGIN = "<!-- cas-load:begin (benchmarks/cas_load.py) -->"
END = "<!-- cas-load:end -->"
TARGET_RATE = 200.0
TARGET_P99_MS = 100.0


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} ms"


def _cores(value: float) -> str:
    return f"{value:.2f}"


def _met(level: dict[str, Any]) -> bool:
    return bool(
        level["errors"] == 0 and level["rate"] >= TARGET_RATE and level["p99_ms"] < TARGET_P99_MS
    )


def section(data: dict[str, Any]) -> list[str]:
    """The markdown lines, markers included."""
    levels: list[dict[str, Any]] = data.get("levels", [])
    out = [
        BEGIN,
        "## CAS attestation load (issue 4)",
        "",
        f"Measured {data.get('started', '?')} by `benchmarks/cas_load.py` (`make bench`, or "
        "`make bench BENCH_ARGS=--only-cas` for this section alone). One real `sconify cas "
        "serve` (SQLite store) and one `sconify las serve` on loopback; a realistic session "
        "(command and environment with placeholders, fspf key and tag, five secrets of which "
        "one P-256 key and one x509 certificate, three injection files). Each simulated "
        "enclave is its own process and repeats the whole protocol as a starting shim does: "
        "new ephemeral P-256 key, new pinned TLS connection to the enclave API, challenge, LAS "
        "quote over a new connection with report_data bound to nonce and key, attest, open "
        "the JWE and check the released configuration. "
        f"{data.get('warmup', 0):.0f} s of warm-up, then a {data.get('window', 0):.0f} s "
        "window per level; an attestation counts when it starts inside the window. "
        f"Target: at least {TARGET_RATE:.0f} attestations/s with p99 under "
        f"{TARGET_P99_MS:.0f} ms, 0 errors.",
        "",
        "CPU columns are cores (CPU seconds per second of the window; the machine has "
        f"{levels[0]['cores'] if levels else '?'}). *Machine* is every process on it, other "
        "sessions' test suites included; *busy before* is how busy the cores were (other "
        "work) just before the level started.",
        "",
        "| enclaves | attestations/s | p50 | p99 | max | errors | CAS CPU | LAS CPU | clients CPU "
        "| machine CPU | busy before | CAS CPU per attestation | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        out.append(
            f"| {level['concurrency']} | **{level['rate']:.0f}** | {_ms(level['p50_ms'])} "
            f"| {_ms(level['p99_ms'])} | {_ms(level['max_ms'])} | {level['errors']} "
            f"| {_cores(level['cas_cpu'])} | {_cores(level['las_cpu'])} "
            f"| {_cores(level['clients_cpu'])} | {_cores(level['machine_busy'])} "
            f"| {level.get('busy_before', float('nan')):.0%} "
            f"| {level['cas_cpu_per_attestation_ms']:.1f} ms "
            f"| {'met' if _met(level) else '**missed**'} |"
        )
    errors = [e for level in levels for e in level.get("error_samples", [])]
    if errors:
        out += ["", "Errors seen (first of each kind):", ""]
        out += [f"- `{e}`" for e in errors]
    out += ["", *_verdict(levels), ""]
    profile = data.get("profile")
    if profile:
        out += [
            f"### Where the CAS's time goes ({profile['concurrency']} enclaves, py-spy)",
            "",
            f"{profile['samples']} busy samples of all CAS threads at 200 Hz while "
            f"{profile['concurrency']} enclaves attested ({profile['rate']:.0f}/s under "
            "py-spy). A thread waiting for the GIL counts as busy, so shares are of the "
            "CAS's activity, not of one core. By area (innermost matching frame):",
            "",
            "| area | share |",
            "|---|---|",
        ]
        out += [f"| {name} | {share:.0%} |" for name, share in profile["areas"]]
        out += ["", "Hottest leaf functions:", "", "| function | share |", "|---|---|"]
        out += [
            f"| `{name.replace('|', '/')}` | {share:.1%} |"
            for name, share in profile["leaves"][:12]
        ]
        out.append("")
    notes: list[str] = data.get("notes", [])
    if notes:
        out += ["### Notes", "", *[f"- {n}" for n in notes], ""]
    out.append(END)
    return out


def _verdict(levels: list[dict[str, Any]]) -> list[str]:
    if not levels:
        return ["(not run)"]
    missed = [lv for lv in levels if not _met(lv)]
    if not missed:
        return ["**Target met at every level.**"]
    best = max(levels, key=lambda lv: lv["rate"])
    return [
        f"**Target missed** at {', '.join(str(lv['concurrency']) for lv in missed)} "
        f"enclave(s): the CAS peaks at {best['rate']:.0f} attestations/s "
        f"({best['concurrency']} enclaves), at about "
        f"{best['cas_cpu_per_attestation_ms']:.1f} ms of CAS CPU per attestation. One CAS "
        "process is one Python interpreter: its event loop (TLS, HTTP) and its handler threads "
        "share one GIL, so it cannot use more than about one core whatever the load; "
        "once that core is full, more enclaves only queue (p99 grows with the number of "
        "enclaves, the rate does not). See the profile below and docs/dev/benchmarks.md.",
    ]


def splice(text: str, lines: list[str]) -> str:
    """``text`` (a BENCHMARKS.md) with its CAS section replaced, or inserted before
    ``## Machine`` (at the end when there is none)."""
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + block + tail
    marker = "\n## Machine\n"
    if marker in text:
        head, tail = text.split(marker, 1)
        return head + "\n" + block + "\n" + marker + tail
    return text.rstrip("\n") + "\n\n" + block + "\n"
