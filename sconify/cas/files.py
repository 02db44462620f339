"""Files in state and config directories: private (0600) writes and P-256 keys."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sconify.errors import ServiceError


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` in one rename; the file never exists half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file, readable by its owner only."""
    write_atomic(path, data, mode=0o600)


def read_private(path: Path) -> bytes:
    """Read a secret file, refusing one that others can read."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ServiceError(
            f"{path} is readable by others (mode {mode:o})",
            hint=f"chmod 600 {path}",
        )
    return path.read_bytes()


def load_or_create_key(path: Path) -> tuple[ec.EllipticCurvePrivateKey, bool]:
    """Load the P-256 key at ``path`` (PKCS#8 PEM) or create it; returns (key, created)."""
    if path.exists():
        key = serialization.load_pem_private_key(read_private(path), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ServiceError(f"{path} does not hold a P-256 key", hint="move it away")
        return key, False
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, pem)
    return key, True


def load_or_create_secret(path: Path, size: int) -> bytes:
    """Load a raw random secret (a master key) or create one of ``size`` bytes."""
    if path.exists():
        data = read_private(path)
        if len(data) != size:
            raise ServiceError(f"{path} does not hold a {size}-byte key", hint="restore it")
        return data
    data = os.urandom(size)
    write_private(path, data)
    return data
