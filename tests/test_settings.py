"""Runtime settings: SCONE's size syntax and ranges, and the vectors shared with the shim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sconify.errors import UsageError
from sconify.settings import RuntimeSettings, parse_size

SIZES = json.loads((Path(__file__).parent / "vectors" / "sizes" / "cases.json").read_text())


@pytest.mark.parametrize("case", SIZES, ids=lambda c: repr(c["text"]))
def test_size_vectors(case: dict[str, object]) -> None:
    if case.get("error"):
        with pytest.raises(UsageError):
            parse_size(str(case["text"]))
    else:
        assert parse_size(str(case["text"])) == case["bytes"]


def test_heap_outside_range_names_the_range() -> None:
    with pytest.raises(UsageError, match=r"--heap=1024 bytes is outside"):
        RuntimeSettings.parse(heap="1K", stack="4M", dlopen=1, fork=0, debug=False)


def test_stack_too_large() -> None:
    with pytest.raises(UsageError, match="--stack"):
        RuntimeSettings.parse(heap="1G", stack="16M", dlopen=1, fork=0, debug=False)


def test_dlopen_2_needs_debug() -> None:
    with pytest.raises(UsageError, match="debugging only"):
        RuntimeSettings.parse(heap="1G", stack="4M", dlopen=2, fork=0, debug=False)
    ok = RuntimeSettings.parse(heap="1G", stack="4M", dlopen=2, fork=0, debug=True)
    assert ok.environment() == {
        "SCONE_HEAP": "1073741824",
        "SCONE_STACK": "4194304",
        "SCONE_ALLOW_DLOPEN": "2",
        "SCONE_FORK": "0",
    }
