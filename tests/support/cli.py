"""Run the console scripts as a user would: subprocesses with a private config directory."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class Cli:
    """Runs ``sconify`` / ``sconify_image`` as a user would, with a private config dir."""

    home: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_STATE_HOME=str(self.home / "state"),
            XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
            NO_COLOR="1",
        )
        return env

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / tool), *args], capture_output=True, text=True, env=self.env(), timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result
