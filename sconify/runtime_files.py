"""Where the runtime pieces that go into converted images (the shim, the guard) are found."""

from __future__ import annotations

import os
from pathlib import Path

from sconify.errors import ConversionError

_RUNTIME_DIR = Path(__file__).parent / "_runtime"


def shim_path(arch: str = "amd64") -> Path:
    """The static shim binary for ``arch`` (``SCONIFY_SHIM`` overrides, for development)."""
    override = os.environ.get("SCONIFY_SHIM")
    path = Path(override) if override else _RUNTIME_DIR / f"shim-linux-{arch}"
    if not path.is_file():
        raise ConversionError(
            f"the runtime shim for linux/{arch} is not built ({path} is missing)",
            hint="run `make install` (it builds the shim with Go) or set SCONIFY_SHIM",
        )
    return path


# Architectures whose guard `make install` builds; for the others, images ship without one and
# the shim warns that SCONE_ALLOW_DLOPEN is not enforced (docs/dev/guard.md).
GUARD_ARCHES = frozenset({"amd64"})


def guard_path(arch: str = "amd64") -> Path | None:
    """The dlopen guard library for ``arch``, or None for an architecture it is not built for."""
    path = _RUNTIME_DIR / f"libsconify_guard-linux-{arch}.so"
    if path.is_file():
        return path
    if arch in GUARD_ARCHES:
        raise ConversionError(
            f"the dlopen guard for linux/{arch} is not built ({path} is missing)",
            hint="run `make install` (it builds the guard with gcc)",
        )
    return None
