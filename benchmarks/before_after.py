"""The "before / after the hardening (issue 9)" tables of ``BENCHMARKS.md`` (``--baseline REV``).

Every ratio is *time after / time before*, so above 1 is slower and the target (issue 9: no
more than 10% slower) is the same for every row: at most :data:`TARGET`. For a conversion the
time is the wall time; for the CAS it is the time per attestation, 1 / rate. Each row gives two
ratios: of the two medians, and the median of the per-round ratios (the before and after runs
of one round ran back to back, so the machine's load changed least between them), and a CPU
ratio (CPU time of the command, or the CAS's CPU per attestation), which other work on the
shared machine disturbs less than wall time. The verdict is on the ratio of the medians.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from measure import Measurement

TARGET = 1.10


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ratio(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}x"


def _verdict(ratio: float) -> str:
    if math.isnan(ratio):
        return "not measured"
    return "yes" if ratio <= TARGET else "**no**"


def _good(runs: Sequence[Measurement], tool: str) -> list[Measurement]:
    return [m for m in runs if m.tool == tool and m.ok and m.extra.get("tagged")]


def conversion_row(
    title: str, runs: Sequence[Measurement], before: str, after: str
) -> tuple[str, float]:
    """One table row for one image (wall time), and its ratio of medians."""
    old, new = _good(runs, before), _good(runs, after)
    if not old or not new:
        row = f"| {title} | {len(old)} ok runs | {len(new)} ok runs | - | - | - | not measured |"
        return row, float("nan")
    old_wall = _median([m.wall for m in old])
    new_wall = _median([m.wall for m in new])
    by_round = {m.run: m.wall for m in old}
    paired = _median([m.wall / by_round[m.run] for m in new if m.run in by_round])
    ratio = new_wall / old_wall
    cpu_ratio = _median([m.cpu for m in new]) / _median([m.cpu for m in old])

    def cell(items: list[Measurement], wall: float) -> str:
        lo, hi = min(m.wall for m in items), max(m.wall for m in items)
        cpu = _median([m.cpu for m in items])
        rss = max(m.rss_mib for m in items)
        return (
            f"**{wall:.2f} s** ({lo:.2f} - {hi:.2f}; CPU {cpu:.2f} s; {rss:.0f} MiB; "
            f"{len(items)} runs)"
        )

    return (
        f"| {title} | {cell(old, old_wall)} | {cell(new, new_wall)} | **{_ratio(ratio)}** "
        f"| {_ratio(paired)} | {_ratio(cpu_ratio)} | {_verdict(ratio)} |",
        ratio,
    )


def _time_ratios(before: dict[str, Any], after: dict[str, Any]) -> tuple[float, float]:
    """(rate before / rate after, median of the same per round) for one CAS level."""
    ratio = before["rate"] / after["rate"] if after["rate"] else float("nan")
    pairs = [
        b / a
        for b, a in zip(before.get("round_rates", []), after.get("round_rates", []), strict=False)
        if a
    ]
    return ratio, _median(pairs)


def _cpu_ratio(before: dict[str, Any], after: dict[str, Any]) -> float:
    """CAS CPU per attestation, after / before."""
    old = before["cas_cpu_per_attestation_ms"]
    return after["cas_cpu_per_attestation_ms"] / old if old else float("nan")


def _cas_cell(level: dict[str, Any]) -> str:
    rounds = level.get("round_rates", [])
    each = f"rounds {', '.join(f'{r:.0f}' for r in rounds)}; " if len(rounds) > 1 else ""
    return (
        f"**{level['rate']:.0f}/s** ({each}p50 {level['p50_ms']:.1f} ms, "
        f"p99 {level['p99_ms']:.1f} ms; {level['errors']} errors)"
    )


def cas_rows(data: dict[str, Any]) -> tuple[list[str], list[float]]:
    """Rows of the CAS throughput per level (from :mod:`cas_load` results with a baseline),
    and their ratios."""
    rows: list[str] = []
    ratios: list[float] = []
    before_levels = data.get("baseline", {}).get("levels", [])
    for old, new in zip(before_levels, data.get("levels", []), strict=False):
        ratio, paired = _time_ratios(old, new)
        ratios.append(ratio)
        rows.append(
            f"| CAS attestations/s, {new['concurrency']} enclaves | {_cas_cell(old)} "
            f"| {_cas_cell(new)} | **{_ratio(ratio)}** | {_ratio(paired)} "
            f"| {_ratio(_cpu_ratio(old, new))} | {_verdict(ratio)} |"
        )
    return rows, ratios


HEADER = [
    "| what | before | after | time after / before (medians) "
    f"| median of per-round ratios | CPU after / before | at most {TARGET:.2f}x |",
    "|---|---|---|---:|---:|---:|---|",
]


def cas_table(data: dict[str, Any]) -> list[str]:
    """The CAS load section's own before / after table (``--only-cas`` shows it alone)."""
    base = data.get("baseline")
    if not base:
        return []
    rows, ratios = cas_rows(data)
    cpu = " / ".join(
        f"{old['cas_cpu_per_attestation_ms']:.1f} -> {new['cas_cpu_per_attestation_ms']:.1f} ms"
        for old, new in zip(base["levels"], data["levels"], strict=False)
    )
    return [
        "### Before / after the hardening (issue 9)",
        "",
        f'*Before* is `{base["short"]}` ("{base["subject"]}"): its own `sconify cas serve` and '
        "`las serve`, started from a scratch worktree of that commit with the same Python and "
        "packages (`PYTHONPATH` pointing at it), a session of their own; *after* is the work "
        "tree's CAS and LAS above. The same `attestload` (built from the work tree) drives "
        "both: the enclave API it speaks did not change. At every level "
        f"{data.get('rounds', 1)} round(s), each one {data.get('window', 0):.0f} s window "
        "against either CAS, the order alternating between rounds and levels; the rate is the "
        "median of the rounds, p50 / p99 are of all the rounds' attestations. The ratio is "
        "the time per attestation after / before (1 / rate): above 1 is slower.",
        "",
        *HEADER,
        *rows,
        "",
        f"CAS CPU per attestation, before -> after, at "
        f"{' / '.join(str(lv['concurrency']) for lv in data['levels'])} enclaves: {cpu}. "
        + summary(ratios),
        "",
    ]


def summary(ratios: Sequence[float]) -> str:
    """One sentence: is every measured row within the target?"""
    measured = [r for r in ratios if not math.isnan(r)]
    if not measured:
        return "Nothing was measured on both sides."
    worst = max(measured)
    return (
        f"Worst ratio {worst:.2f}x: "
        + ("**every row is within**" if worst <= TARGET else "**not every row is within**")
        + f" the {TARGET:.2f}x target (differences of a few percent are within this "
        "shared machine's noise; see the spreads)."
    )


def section(results: dict[str, Any], titles: dict[str, str]) -> list[str]:
    """The whole-report section (conversions and the CAS), or nothing without a baseline.
    ``titles`` names the conversion cases (``native``, ``big``) for their rows."""
    base = results.get("baseline")
    if not base:
        return []
    before, after = base["label"], "sconify"
    rows: list[str] = []
    ratios: list[float] = []
    for key, title in titles.items():
        if results.get(key):
            row, ratio = conversion_row(title, results[key], before, after)
            rows.append(row)
            ratios.append(ratio)
    cas = results.get("cas_load", {})
    if cas.get("baseline"):
        cas_lines, cas_ratios = cas_rows(cas)
        rows += cas_lines
        ratios += cas_ratios
    return [
        "## Before / after the hardening (issue 9)",
        "",
        f'*Before* is `{base["short"]}` ("{base["subject"]}"), measured in this same run: '
        "`--baseline` checked it out into a scratch git worktree, built its shims and guard "
        "there, and ran it with the same Python interpreter and packages (`PYTHONPATH` "
        "pointing at that tree; every `sconify` module checked to import from it) against its "
        f"own CAS and LAS; `{before}` in the tables below. It took part in the same "
        "interleaved rounds as the other tools (cold cache, compiled bytecode, a fresh "
        "registry per run). *After* is the work tree (`sconify`). Conversion cells: median "
        "wall time (min - max; median CPU; max peak RSS; successful runs). Time ratios above "
        "1 are slower; the issue's target is at most 10% slower.",
        "",
        *HEADER,
        *rows,
        "",
        summary(ratios),
    ]
