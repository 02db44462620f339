"""Every command's --help renders (help texts are Rich markup: a stray [/x] breaks them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
COMMANDS = [
    ["sconify_image"],
    *[
        ["sconify", *c]
        for c in (
            [],
            ["image"],
            ["image", "convert"],
            ["image", "copy"],
            ["image", "inspect"],
            ["image", "measure"],
            ["session"],
            ["session", "create"],
            ["session", "update"],
            ["session", "read"],
            ["session", "hash"],
            ["identity"],
            ["identity", "show"],
            ["identity", "create"],
            ["cas"],
            ["cas", "serve"],
            ["cas", "audit"],
            ["cas", "audit", "verify"],
            ["las"],
            ["las", "serve"],
            ["dev"],
            ["dev", "up"],
            ["dev", "down"],
            ["dev", "status"],
        )
    ],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_renders(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
