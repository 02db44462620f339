"""Where sconify's time goes: py-spy samples of a real run, folded into phases and hot spots.

py-spy samples every thread of the measured process from outside (the pull and push run in
worker threads, which cProfile would not see). Two recordings per configuration:

- with ``--idle``: every sample of the main thread is 1/rate seconds of wall time; its stack
  says which phase the command is in (:data:`PHASES`, matched innermost frame first);
- without: only busy samples, of all threads; folded by leaf function (what burns the CPU) and
  by the innermost sconify frame (which line of sconify asked for it).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RATE = 200

#: (phase, frame prefixes); the first phase one of whose prefixes starts a frame wins.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Python imports", ("_find_and_load (",)),
    ("contact CAS and LAS", ("CasClient.version (", "LasClient.qe_pubkey (")),
    (
        "pull and index (download; inflate and hash every file on threads)",
        ("read_source (", "read (sconify/transports/"),
    ),
    ("scan (wait for the last index, merge them)", ("scan_layers (",)),
    ("authenticated set", ("build_auth_set (",)),
    ("encrypt /app, /data; rewrite their layers", ("protect_regions (",)),
    ("runtime layer (shim, gzip)", ("runtime_layer (",)),
    ("protected layer (ciphertexts, gzip)", ("protected_layer (",)),
    (
        "push (wait for the layer uploads, config, manifest)",
        ("push (sconify/transports/remote.py", "write_untagged (", "stage ("),
    ),
    ("session (CAS)", ("create_session (", "_ensure_namespace (", "current_hash (")),
    ("tag", ("tag (sconify/transports/remote.py", "Staged.commit (", "_Sink.tag (")),
    ("remove scratch files", ("rmtree (shutil",)),
    ("measure, config", ("measure (", "rewrite_config (", "Image.validate (")),
)


@dataclass
class Profile:
    """Folded samples of one recording."""

    rate: int
    phases: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    sconify_frames: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def seconds(self, samples: int) -> float:
        """Samples to seconds."""
        return samples / self.rate


def available() -> str | None:
    """The py-spy executable, if installed (``make bench`` installs it)."""
    from sys import executable

    beside = Path(executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(
    py_spy: str, argv: Sequence[str], out: Path, env: Mapping[str, str], *, idle: bool
) -> int:
    """Run ``argv`` under py-spy, raw (folded) output to ``out``; return the command's status."""
    flags = ["--rate", str(RATE), "--format", "raw", "--threads", "--nonblocking"]
    if idle:
        flags.append("--idle")
    done = subprocess.run(
        [py_spy, "record", *flags, "-o", str(out), "--", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(env),
        check=False,
    )
    return done.returncode


def _parse(path: Path) -> list[tuple[str, list[str], int]]:
    samples = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = stack.split(";")
        samples.append((thread, frames, int(count)))
    return samples


def _phase(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, prefixes in PHASES:
            if frame.startswith(prefixes):
                return name
    return "other (interpreter start and exit, CLI)"


def _tid(thread: str) -> int:
    """``thread (1234): Name`` -> 1234."""
    digits = thread.split("(", 1)[-1].split(")", 1)[0]
    return int(digits) if digits.isdigit() else -1


def fold_phases(path: Path) -> Profile:
    """Phases of the main thread (a recording made with ``idle=True``)."""
    profile = Profile(RATE)
    samples = _parse(path)
    # Until the threading module names it, the main thread is listed without a name; its id is
    # the process id, the smallest of the process's thread ids.
    named = {_tid(t) for t, _, _ in samples if t.endswith(": MainThread")}
    main = min(named or {_tid(t) for t, _, _ in samples} or {-1})
    for thread, frames, count in samples:
        if _tid(thread) != main:
            continue
        profile.phases[_phase(frames)] += count
        profile.total += count
    return profile


def fold_hot_spots(path: Path) -> Profile:
    """Busy samples of all threads by leaf and by innermost sconify frame."""
    profile = Profile(RATE)
    for _, frames, count in _parse(path):
        if not frames:
            continue
        profile.total += count
        profile.leaves[frames[-1]] += count
        own = [f for f in frames if "(sconify/" in f]
        profile.sconify_frames[own[-1] if own else "(outside sconify) " + frames[-1]] += count
    return profile
