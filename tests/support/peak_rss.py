"""Run a command and measure its own peak RSS, whatever the test process holds.

Linux counts a child's peak RSS from before its ``exec`` too: a child forked from a test
process that has grown (a fuzz test, a big fixture) reports that process's size. So the command
runs under a small Python wrapper that starts it and reads ``RUSAGE_CHILDREN``: what is counted
is the wrapper's few MB and the command itself.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence

_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'PEAK-KIB {peak}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_with_peak_rss(
    argv: Sequence[str], *, env: Mapping[str, str], timeout: float = 900
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``argv`` (output captured as text) and return the result and its peak RSS in KiB;
    the wrapper's line is taken out of the result's stderr."""
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
    )
    lines = result.stderr.splitlines(keepends=True)
    line = next(x for x in reversed(lines) if x.startswith("PEAK-KIB "))
    lines.remove(line)
    result.stderr = "".join(lines)
    return result, int(line.split()[1])
