"""Starting the CLI: what is imported before any work, which every command pays for."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_commands_load_without_docker_pydantic_rich_or_x509() -> None:
    modules = _modules_after("import sconify.cli.main")
    assert not {"docker", "requests", "pydantic", "rich.console", "cryptography.x509"} & modules


def test_a_conversion_command_line_is_parsed_without_pydantic_or_docker() -> None:
    # typer 0.29 coerces every parameter through a pydantic TypeAdapter (~90 ms a conversion);
    # the Docker SDK is only for docker-daemon: references. The bad size stops the command
    # after parsing, once run_conversion has imported the conversion's modules.
    modules = _modules_after(
        "from sconify.cli.sconify_image import main\n"
        "sys.argv = ['sconify_image', '--from=a', '--to=b', '--binary=/x', '--heap=lots']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 2, done.code\n"
    )
    assert "sconify.lift" in modules
    assert not {"docker", "requests", "pydantic"} & modules
