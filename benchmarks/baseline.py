"""A baseline revision of sconify, measured side by side with the work tree (``--baseline REV``).

    .venv/bin/python benchmarks/run.py --baseline c8111d0      # or: make bench BENCH_ARGS=...

:func:`checkout` puts ``REV`` into a scratch ``git worktree add --detach`` (removed at the end),
builds what its Makefile lists as runtime files (``$(SHIMS) $(GUARDS)``: the Go shims and the
dlopen guard, into *its* ``sconify/_runtime``), and checks that the venv's interpreter with
``PYTHONPATH=<tree>`` imports every ``sconify`` module from that tree. That check matters: this
checkout is an editable install, whose finder could serve modules of the work tree instead.
(It does not: setuptools appends its finder to ``sys.meta_path`` after the ``PYTHONPATH``
search, and a regular package's submodules are searched on its own ``__path__`` only; the
check makes sure it stays so.)

The baseline then runs with the *same* interpreter, the same third-party packages and the same
entry script (``.venv/bin/sconify``) as the work tree; only ``PYTHONPATH`` differs. Its CAS and
LAS (:func:`run_cas`, :func:`run_las`) are started from its tree the same way, so a "before"
conversion or attestation is the old client against the old services.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent

# Variables that would make the baseline run the work tree's pieces.
_DROPPED = ("SCONIFY_SHIM", "PYTHONPATH")

# What the check imports: the conversion's and the services' entry points.
_CHECK = """
import importlib, json, sys
for name in ("sconify.cli.main", "sconify.convert", "sconify.cas.server", "sconify.las.server"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        pass  # not in that revision
print(json.dumps({n: getattr(m, "__file__", None) for n, m in sys.modules.items()
                  if n == "sconify" or n.startswith("sconify.")}))
"""


@dataclass(frozen=True)
class Baseline:
    """A checked-out and built baseline revision."""

    rev: str
    commit: str
    subject: str
    tree: Path

    @property
    def short(self) -> str:
        """The abbreviated commit (7 hex digits, as ``git log --oneline``)."""
        return self.commit[:7]

    @property
    def label(self) -> str:
        """Its column in the conversion tables."""
        return f"sconify (before, {self.short})"

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with ``PYTHONPATH`` pointing at the baseline tree (and nothing of ours)."""
        out = {k: v for k, v in base.items() if k not in _DROPPED}
        out["PYTHONPATH"] = str(self.tree)
        return out

    def sconify_command(self) -> list[str]:
        """The same entry script as the work tree's; :meth:`env` makes it the baseline."""
        return [str(BIN / "sconify")]

    def describe(self) -> dict[str, str]:
        """What the report says about it (kept in the results)."""
        return {
            "rev": self.rev,
            "commit": self.commit,
            "short": self.short,
            "subject": self.subject,
            "label": self.label,
        }


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return done.stdout.strip()


def _runtime_files(tree: Path) -> list[str]:
    """The runtime files the baseline's Makefile builds (``$(SHIMS) $(GUARDS)``)."""
    done = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(tree),
            "--eval=bench-print-runtime: ; @echo $(SHIMS) $(GUARDS)",
            "bench-print-runtime",
        ],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    files = done.stdout.split()
    if not files:
        raise RuntimeError(f"the Makefile of {tree} names no SHIMS or GUARDS to build")
    return files


def build(tree: Path, log: Callable[[str], None]) -> None:
    """Build the baseline's shims and guard into its own ``sconify/_runtime`` (its Makefile)."""
    files = _runtime_files(tree)
    log(f"baseline: make {' '.join(files)}")
    subprocess.run(
        ["make", "-s", "-C", str(tree), *files],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    missing = [f for f in files if not (tree / f).is_file()]
    if missing:
        raise RuntimeError(f"baseline build left {missing} missing in {tree}")


def verify(baseline: Baseline, env: Mapping[str, str]) -> dict[str, str]:
    """Every ``sconify`` module the baseline imports comes from its tree; returns them."""
    done = subprocess.run(
        [sys.executable, "-c", _CHECK],
        env=baseline.env(env),
        cwd=baseline.tree.parent,
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    modules: dict[str, str] = json.loads(done.stdout)
    tree = baseline.tree.resolve()
    strays = {
        name: path
        for name, path in modules.items()
        if path is not None and not Path(path).resolve().is_relative_to(tree)
    }
    if strays or not modules:
        raise RuntimeError(
            f"with PYTHONPATH={baseline.tree}, {sys.executable} imports sconify modules from "
            f"elsewhere: {strays or 'none found'} (an editable install's finder wins?)"
        )
    return modules


def resolve(rev: str) -> str:
    """The full commit ``rev`` names; ValueError (saying why) when it names none."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise ValueError(f"{rev!r} names no commit in {ROOT}") from None


@contextlib.contextmanager
def checkout(rev: str, scratch: Path, log: Callable[[str], None]) -> Iterator[Baseline]:
    """``rev`` checked out (detached) under ``scratch``, built and verified; removed after."""
    commit = resolve(rev)
    subject = _git("log", "-1", "--format=%s", commit)
    tree = scratch / f"baseline-{commit[:7]}"
    scratch.mkdir(parents=True, exist_ok=True)
    log(f"baseline: git worktree add --detach {tree} {commit[:7]} ({subject[:60]})")
    _git("worktree", "add", "--detach", "--quiet", str(tree), commit)
    try:
        baseline = Baseline(rev=rev, commit=commit, subject=subject, tree=tree)
        build(tree, log)
        modules = verify(baseline, os.environ)
        log(f"baseline: {len(modules)} sconify modules import from {tree}")
        yield baseline
    finally:
        try:
            _git("worktree", "remove", "--force", str(tree))
        except subprocess.CalledProcessError as error:
            log(f"baseline: git worktree remove failed ({error.stderr.strip()}); pruning")
            shutil.rmtree(tree, ignore_errors=True)
            _git("worktree", "prune")


# -- its services ------------------------------------------------------------------------------


def _launch(baseline: Baseline) -> Any:
    from tests.support.services import Launch

    return Launch(tuple(baseline.sconify_command()), tuple(baseline.env(os.environ).items()))


def run_las(baseline: Baseline, state_dir: Path, host: str = "127.0.0.1") -> Any:
    """The baseline's ``sconify las serve`` (a ``tests.support.services.LasProcess``)."""
    from tests.support import services

    return services.run_las(state_dir, host=host, launch=_launch(baseline))


def run_cas(baseline: Baseline, state_dir: Path, host: str = "127.0.0.1") -> Any:
    """The baseline's ``sconify cas serve``, SQLite store (a ``CasProcess``)."""
    from tests.support import services

    return services.run_cas(state_dir, host=host, launch=_launch(baseline))
