"""The CLI's contract: data on stdout, one error on stderr with a hint, exit codes 0/1/2/130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=env, timeout=60
    )


def test_usage_error_exits_2() -> None:
    result = _run("sconify_image", "--bogus")
    assert result.returncode == 2
    assert "No such option" in result.stderr and result.stdout == ""


def test_failure_exits_1_with_one_error_and_a_hint(tmp_path: Path) -> None:
    result = _run("sconify", "image", "measure", f"oci:{tmp_path}/none")
    assert result.returncode == 1
    assert result.stderr.count("error:") == 1 and "hint:" in result.stderr
    assert result.stdout == ""


def test_bad_size_is_a_usage_error() -> None:
    result = _run("sconify_image", "--from=a", "--to=b", "--binary=/x", "--heap=lots")
    assert result.returncode == 2 and "'lots' is not a size" in result.stderr


def test_json_errors_go_to_stdout_too() -> None:
    result = _run("sconify_image", "--from=a", "--to=b", "--binary=/x", "--heap=1K", "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"] == "UsageError"


def test_interrupt_exits_130(tmp_path: Path) -> None:
    # A LAS server runs until interrupted; SIGINT must end it with 130, like any command.
    proc = subprocess.Popen(
        [str(BIN / "sconify"), "las", "serve", "--state-dir", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(200):
        if (tmp_path / "ready.json").exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130


def test_progress_off_a_terminal_does_not_import_rich() -> None:
    # Rich costs ~20 ms to import; a run whose stderr is a pipe or file gets log lines instead.
    code = (
        "import sys\n"
        "from sconify.cli import render\n"
        "with render.progress('converting') as step:\n"
        "    step('reading')\n"
        "print('rich' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
