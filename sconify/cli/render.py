"""The one place where errors become text and exit codes.

Data goes to stdout, everything for humans (logs, progress, errors) to stderr. Exit codes:
0 ok, 1 failed, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, cast

import typer

from sconify.errors import SconifyError, UnexpectedError

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_state: dict[str, Any] = {"verbose": 0, "json": False, "no_color": False}
_console: Console | None = None


def _stderr() -> Console:
    """The console for humans, made on first use: rich costs ~20 ms to import, which a command
    that prints nothing for humans (``--json``, no warnings) need not pay."""
    global _console
    if _console is None:
        from rich.console import Console

        no_color = True if _state["no_color"] else None
        _console = Console(stderr=True, highlight=False, no_color=no_color)
    return _console


def _stderr_is_terminal() -> bool:
    # Rich takes a stream that is not a TTY for no terminal unless TTY_COMPATIBLE or FORCE_COLOR
    # is set; seeing that here keeps non-interactive runs from importing it.
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty and not {"TTY_COMPATIBLE", "FORCE_COLOR"} & os.environ.keys():
        return False
    return _stderr().is_terminal


def configure(*, verbose: int = 0, no_color: bool = False) -> None:
    """Set up logging to stderr; ``-v`` shows info, ``-vv`` debug."""
    global _console
    if no_color or os.environ.get("NO_COLOR"):
        _state["no_color"] = True
        _console = None
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    _state["verbose"] = verbose


def set_json(enabled: bool) -> None:
    """Render errors as JSON on stdout as well (for ``--json`` callers)."""
    _state["json"] = enabled


def emit(data: Any, *, as_json: bool = False) -> None:
    """Write a command's result to stdout: JSON when asked, plain text otherwise."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(f"{data}\n")
    sys.stdout.flush()


def info(text: str) -> None:
    """Tell the human something on stderr."""
    _stderr().print(text, soft_wrap=True)


def warn(text: str) -> None:
    """Warn the human on stderr."""
    _stderr().print(f"[yellow]warning:[/yellow] {text}", soft_wrap=True)


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[str], None]]:
    """Show what a long command is doing: a spinner on a terminal, log lines otherwise."""
    if not _stderr_is_terminal():
        yield lambda step: logging.getLogger("sconify").info("%s: %s", label, step)
        return
    with _stderr().status(label) as status:
        yield lambda step: status.update(f"{label}: {step}")


def fail(err: SconifyError) -> NoReturn:
    """Render ``err`` for a human (and for machines under ``--json``) and exit."""
    if _state["verbose"] >= 2:
        traceback.print_exception(err, file=sys.stderr)
    _stderr().print(f"[red]error:[/red] {err.diagnostics()}", markup=True, soft_wrap=True)
    if _state["json"]:
        emit(err.to_json(), as_json=True)
    sys.exit(err.exit_code)


# Typer bundles its own copy of click and exports only some of its exceptions; the base classes
# are found through the public ones rather than by importing a private module.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
_UsageError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


def run(entry: Callable[..., Any], **kwargs: Any) -> NoReturn:
    """Run a Typer/Click entry point with sconify's error rendering and exit codes."""
    # A conversion keeps some 100,000 objects alive (layer indexes, the merged view) and makes
    # few reference cycles: at the default threshold (700) the collector walks the live ones
    # again and again (about 5% of a conversion). And whatever is alive at exit dies with the
    # process, so it is frozen rather than collected once more (about 30 ms).
    gc.set_threshold(100_000, 50, 100)
    try:
        _run(entry, **kwargs)
    finally:
        gc.freeze()


def _run(entry: Callable[..., Any], **kwargs: Any) -> NoReturn:
    try:
        # Outside standalone mode Typer turns an interrupt or ``typer.Exit`` into a returned code.
        code = entry(standalone_mode=False, **kwargs)
    except SconifyError as err:
        fail(err)
    except (typer.Abort, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    except _ClickException as ex:
        cast(Any, ex).show(file=sys.stderr)
        sys.exit(EXIT_USAGE if isinstance(ex, _UsageError) else EXIT_FAILED)
    except Exception as ex:  # a bug, or an input nobody foresaw: still one error, no traceback
        unexpected = UnexpectedError(
            f"unexpected failure: {type(ex).__name__}: {ex}",
            hint="this is a bug in sconify, or an input it does not check yet; run again with "
            "-vv for the traceback and report it",
        )
        unexpected.__cause__ = ex
        fail(unexpected)
    if code == EXIT_INTERRUPTED:
        _stderr().print("interrupted")
    sys.exit(code if isinstance(code, int) else EXIT_OK)
