"""The measurement (MRENCLAVE analogue) of a converted image, as the shim computes it.

docs/contracts.md section 5 fixes the fields; the shim recomputes the same value from the files
on disk and the effective ``SCONE_*`` settings, so a changed heap or a swapped binary changes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sconify.canonical import canonical_json
from sconify.settings import RuntimeSettings

VERSION = 1


@dataclass(frozen=True)
class MeasuredFiles:
    """SHA-256 digests (hex) of the files that the measurement covers."""

    shim_sha256: str
    guard_sha256: str
    binary: str
    binary_sha256: str
    config_sha256: str
    auth_manifest_sha256: str


def measurement_fields(files: MeasuredFiles, settings: RuntimeSettings) -> dict[str, object]:
    """The document whose canonical JSON is hashed."""
    return {
        "auth_manifest_sha256": files.auth_manifest_sha256,
        "binary": files.binary,
        "binary_sha256": files.binary_sha256,
        "config_sha256": files.config_sha256,
        "debug": settings.debug,
        "dlopen": settings.dlopen,
        "fork": settings.fork,
        "guard_sha256": files.guard_sha256,
        "heap": settings.heap,
        "shim_sha256": files.shim_sha256,
        "stack": settings.stack,
        "version": VERSION,
    }


def measure(files: MeasuredFiles, settings: RuntimeSettings) -> str:
    """Return the measurement as 64 hex digits."""
    return hashlib.sha256(canonical_json(measurement_fields(files, settings))).hexdigest()
