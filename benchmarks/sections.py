"""Sections of BENCHMARKS.md that one stage rewrites alone, between HTML comment markers."""

from __future__ import annotations


def splice(text: str, lines: list[str], begin: str, end: str) -> str:
    """``text`` (a BENCHMARKS.md) with the section between ``begin`` and ``end`` replaced by
    ``lines`` (markers included), or inserted before ``## Machine`` (at the end when there is
    none)."""
    block = "\n".join(lines)
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        return head + block + tail
    marker = "\n## Machine\n"
    if marker in text:
        head, tail = text.split(marker, 1)
        return head + "\n" + block + "\n" + marker + tail
    return text.rstrip("\n") + "\n\n" + block + "\n"
