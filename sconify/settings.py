"""Runtime settings fixed at conversion: heap, stack, dlopen and fork, parsed as SCONE does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sconify.errors import UsageError

HEAP_RANGE = (8 * 1024 * 1024, 60 * 1024**3)
STACK_RANGE = (32 * 1024, 8 * 1024 * 1024)
_SIZE = re.compile(r"^([0-9]{1,20})([kKmMgG]?)$")
_MULT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """Parse a SCONE size (``65536``, ``64K``, ``4M``, ``1G``; powers of 1024) into bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(
            f"{text!r} is not a size",
            hint="write a whole number with an optional K, M or G suffix, e.g. 1G or 4M",
        )
    return int(match.group(1)) * _MULT[match.group(2).lower()]


def _in_range(name: str, value: int, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise UsageError(
            f"--{name}={value} bytes is outside SCONE's range [{low}, {high}]",
            hint=f"choose a --{name} between {low // 1024}K and {high // 1024**2}M",
        )
    return value


@dataclass(frozen=True)
class RuntimeSettings:
    """What the shim enforces and what the measurement covers besides files."""

    heap: int = 64 * 1024 * 1024
    stack: int = 64 * 1024
    dlopen: int = 0
    fork: int = 0
    debug: bool = False

    @classmethod
    def parse(
        cls, *, heap: str, stack: str, dlopen: int, fork: int, debug: bool
    ) -> RuntimeSettings:
        """Validate user input (``--heap 1G --stack 4M --dlopen 2 --fork 0``)."""
        if dlopen not in (0, 1, 2):
            raise UsageError(
                f"--dlopen={dlopen} is not 0, 1 or 2", hint="use --dlopen=1 in production"
            )
        if fork not in (0, 1):
            raise UsageError(f"--fork={fork} is not 0 or 1", hint="use --fork=0 or --fork=1")
        if dlopen == 2 and not debug:
            raise UsageError(
                "--dlopen=2 loads unauthenticated libraries and is for debugging only",
                hint="add --cas-debug or --allow-debug-mode, or use --dlopen=1",
            )
        return cls(
            heap=_in_range("heap", parse_size(heap), HEAP_RANGE),
            stack=_in_range("stack", parse_size(stack), STACK_RANGE),
            dlopen=dlopen,
            fork=fork,
            debug=debug,
        )

    def environment(self) -> dict[str, str]:
        """The ``SCONE_*`` variables baked into the image (exact byte counts)."""
        return {
            "SCONE_HEAP": str(self.heap),
            "SCONE_STACK": str(self.stack),
            "SCONE_ALLOW_DLOPEN": str(self.dlopen),
            "SCONE_FORK": str(self.fork),
        }
