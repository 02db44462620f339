"""Writing a file that holds a secret (``--session FILE`` holds the volume key) safely.

The file is written as a new temporary file, created exclusively with mode 0600 in the target's
directory, and renamed over the target: a symlink planted at the target is never followed (and
is refused), an existing file's looser mode is never kept, and nobody sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from sconify.errors import ConversionError

_HINT = "give a path to a new or regular file in an existing directory you can write to"


def check_secret_target(path: Path, what: str) -> None:
    """Refuse early (before any work) a target that :func:`write_secret_file` would refuse."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise ConversionError(f"{what} {path} cannot be used: {err.strerror}", hint=_HINT) from None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise ConversionError(
            f"{what} {path} is a symbolic link; a file holding a key is not written through one",
            hint="give the real path of the file",
        )
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise ConversionError(f"{what} {path} exists and is not a regular file", hint=_HINT)
    parent = path.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConversionError(f"{what} {path}: {parent} is not a writable directory", hint=_HINT)


def write_secret_file(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path`` readable by its owner only (mode 0600), atomically."""
    check_secret_target(path, what)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as err:
        raise ConversionError(
            f"{what} {path} cannot be written: {err.strerror}", hint=_HINT
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # whatever the umask
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)  # replaces a link planted meanwhile, never writes through it
    except OSError as err:
        raise ConversionError(
            f"{what} {path} cannot be written: {err.strerror}", hint=_HINT
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
