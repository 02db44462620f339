"""The CAS attestation load section of ``BENCHMARKS.md`` (from :mod:`cas_load`'s results).

The section sits between two HTML comments, so ``run.py --only-cas`` can replace it in an
existing ``BENCHMARKS.md`` without touching the conversion numbers, and a full ``make bench``
renders it in the same place (before ``## Machine``).
"""

from __future__ import annotations

import math
from typing import Any

import before_after
import sections

BEGIN = "<!-- cas-load:begin (benchmarks/cas_load.py) -->"
END = "<!-- cas-load:end -->"
TARGET_RATE = 200.0
TARGET_P99_MS = 100.0


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} ms"


def _cores(value: float) -> str:
    return f"{value:.2f}"


def _rate_ok(level: dict[str, Any]) -> bool:
    return bool(level["rate"] >= TARGET_RATE)


def _p99_ok(level: dict[str, Any]) -> bool:
    return bool(level["p99_ms"] < TARGET_P99_MS)


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


#: What the benchmark found and what was done about it (kept here, as BENCHMARKS.md is only
#: ever written by run.py).
FINDINGS = [
    "First measurement (2026-11-26, before 178fea3): 84 / 105 / 104 attestations/s at "
    "1 / 8 / 32 enclaves, p99 16.7 / 113.6 / 384.9 ms, 8.9 ms of CAS CPU per attestation. "
    "py-spy `--gil` showed 53% of the CAS's Python time in parsing and validating the "
    "session's YAML (pure-Python PyYAML), twice per attestation (challenge and attest).",
    "Fix (178fea3, `sconify/cas/attest.py`): validated sessions are cached by the SHA-256 of "
    "their stored text (256 entries; the store is still read on every request, so updates and "
    "other replicas are seen at once, and every check of the attest request still runs), and "
    "the LAS's quoting key PEM is parsed and hashed once per distinct PEM. CAS CPU per "
    "attestation fell to about 2.5-4 ms.",
    "Second round (this session, 2026-11-26): the simulated enclaves became `attestload` "
    "(Go, the shim's own attestation code, one goroutine per enclave), which takes about 0.4 "
    "cores at 32 enclaves where one Python process per enclave took 0.83. That alone left the "
    "CAS at ~360/s with p99 118 ms: it was CPU-bound at ~0.93 cores (one GIL). Then, in "
    "`sconify/cas/`: a version's rendered configuration is kept by (version hash, service) "
    "once every check of the request has passed (rendering keys and certificates again was "
    "~10%); SQLite reads reuse one connection per thread (opening one per read was ~10%); the "
    "enclave API logs each release but not each request; and a single-process SQLite CAS "
    "answers challenge and attest inline instead of handing each to a thread (~9%; a shared "
    "PostgreSQL store still uses a thread so the event loop never waits on the server). CAS "
    "CPU per attestation fell from ~2.5 to ~1.2 ms.",
    "Left as is: the event loop, TLS records and aiohttp's HTTP handling are now about half "
    "of the CAS's Python time (uvloop measured no better here); each request still reads and "
    "decrypts the session version from the store (updates and replicas are seen at once). "
    "Past one core, several CAS processes on one PostgreSQL store (docs/dev/cas-store.md) are "
    "the way; not needed for the target and not measured here.",
]


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
        "one P-256 key and one x509 certificate, three injection files). The simulated "
        "enclaves are goroutines of `runtime_shim/cmd/attestload`, which runs the shim's own "
        "attestation code; each repeats the whole protocol as a starting shim does: new "
        "ephemeral P-256 key, new pinned TLS connection to the enclave API, challenge, LAS "
        "quote over a new connection with report_data bound to nonce and key, attest, open "
        "the JWE and check the released configuration. "
        f"{data.get('warmup', 0):.0f} s of warm-up, then a {data.get('window', 0):.0f} s "
        "window per level"
        + (
            f" and round ({data['rounds']} rounds: the rate and CPU are the median of the "
            "rounds, the percentiles are of all the rounds' attestations)"
            if data.get("rounds", 1) > 1
            else ""
        )
        + "; an attestation counts when it starts inside the window. "
        + (
            "The table is the work tree's CAS; the baseline's is compared with it below. "
            if data.get("baseline")
            else ""
        )
        + f"Target: at least {TARGET_RATE:.0f} attestations/s with p99 under "
        f"{TARGET_P99_MS:.0f} ms, 0 errors.",
        "",
        "CPU columns are cores (CPU seconds per second of the window; the machine has "
        f"{levels[0]['cores'] if levels else '?'}). *Machine* is every process on it, other "
        "sessions' test suites included; *busy before* is how busy the cores were (other "
        "work) just before the level started.",
        "",
        "| enclaves | attestations/s | p50 | p99 | max | errors | CAS CPU | LAS CPU | clients CPU "
        f"| machine CPU | busy before | CAS CPU per attestation | >= {TARGET_RATE:.0f}/s "
        f"| p99 < {TARGET_P99_MS:.0f} ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        out.append(
            f"| {level['concurrency']} | **{level['rate']:.0f}** | {_ms(level['p50_ms'])} "
            f"| {_ms(level['p99_ms'])} | {_ms(level['max_ms'])} | {level['errors']} "
            f"| {_cores(level['cas_cpu'])} | {_cores(level['las_cpu'])} "
            f"| {_cores(level['clients_cpu'])} | {_cores(level['machine_busy'])} "
            f"| {level.get('busy_before', float('nan')):.0%} "
            f"| {level['cas_cpu_per_attestation_ms']:.1f} ms "
            f"| {_mark(_rate_ok(level))} | {_mark(_p99_ok(level))} |"
        )
    errors = [e for level in levels for e in level.get("error_samples", [])]
    if errors:
        out += ["", "Errors seen (first of each kind):", ""]
        out += [f"- `{e}`" for e in errors]
    out += ["", *_verdict(levels), ""]
    out += before_after.cas_table(data)
    profile = data.get("profile")
    if profile:
        out += [
            f"### Where the CAS's time goes ({profile['concurrency']} enclaves, py-spy)",
            "",
            f"{profile['samples']} samples at 200 Hz of the CAS thread holding the GIL "
            f"(py-spy `--gil`) while {profile['concurrency']} enclaves attested "
            f"({profile['rate']:.0f}/s under py-spy): where the CAS's Python CPU goes. Work "
            "in C that releases the GIL (OpenSSL inside the TLS handshake) is under-counted. "
            "By area (innermost matching frame):",
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
    out += ["### Findings", "", *[f"- {n}" for n in FINDINGS], ""]
    out.append(END)
    return out


def _verdict(levels: list[dict[str, Any]]) -> list[str]:
    if not levels:
        return ["(not run)"]
    best = max(levels, key=lambda lv: lv["rate"])
    errors = sum(lv["errors"] for lv in levels)
    met = [lv["concurrency"] for lv in levels if _rate_ok(lv) and _p99_ok(lv)]
    out = [
        f"**Capacity: {best['rate']:.0f} attestations/s** (at {best['concurrency']} enclaves; "
        f"target {TARGET_RATE:.0f}: {'met' if _rate_ok(best) else '**missed**'}), "
        f"{errors} errors in all. Both targets together are met at "
        + (", ".join(f"{c} enclaves" for c in met) if met else "**no** level")
        + ".",
        "",
        "How to read the levels: every enclave attests again as soon as its last attestation "
        "ended (a closed loop), so mean latency = enclaves / rate (Little's law). With 1 "
        "enclave the rate is 1 / latency: it measures one attestation's latency (three round "
        "trips, a TLS handshake and the crypto on both sides), not what the CAS can serve. "
        f"With {levels[-1]['concurrency']} enclaves in flight, the mean latency is "
        f"{levels[-1]['concurrency']} / {levels[-1]['rate']:.0f} per s = "
        f"{1000 * levels[-1]['concurrency'] / max(levels[-1]['rate'], 1e-9):.0f} ms; a p99 "
        f"under {TARGET_P99_MS:.0f} ms needs a rate well above "
        f"{levels[-1]['concurrency'] * 1000 / TARGET_P99_MS:.0f}/s (that bound is for "
        "equal latencies; the p99 here is "
        f"{levels[-1]['p99_ms'] / max(levels[-1]['p50_ms'], 1e-9):.1f}x the p50).",
    ]
    top = levels[-1]
    if not _p99_ok(top) or not _rate_ok(best):
        load = top["cas_cpu"] + top["las_cpu"] + top["clients_cpu"]
        out += [
            "",
            f"Where the limit is: at {top['concurrency']} enclaves the CAS used "
            f"{top['cas_cpu']:.2f} cores, the LAS {top['las_cpu']:.2f} and the load "
            f"generator {top['clients_cpu']:.2f} ({load:.2f} of {top['cores']} cores); the "
            f"machine as a whole was {top['machine_busy']:.2f} busy (the rest is other "
            "sessions' work on the shared machine). The CAS needs "
            f"{top['cas_cpu_per_attestation_ms']:.1f} ms of CPU per attestation and gets "
            "what the two cores leave it; past that it is one Python process whose event "
            "loop (TLS, HTTP) and handler threads share one GIL, so it can never use more "
            "than about one core (about "
            f"{1000 / max(top['cas_cpu_per_attestation_ms'], 0.1):.0f} attestations/s at "
            "this cost).",
        ]
    return out


def splice(text: str, lines: list[str]) -> str:
    """``text`` (a BENCHMARKS.md) with its CAS section replaced, or inserted before
    ``## Machine`` (at the end when there is none)."""
    return sections.splice(text, lines, BEGIN, END)
