"""The paths of an image that sconify or the container engine own, which ``--dir`` may not name."""

from __future__ import annotations

from sconify.mutate.tarpaths import is_below
from sconify.mutate.wrap import DEFAULT_PLAINTEXT_ROOT

__all__ = ["DEFAULT_PLAINTEXT_ROOT", "ENGINE_MOUNTS", "SCONIFY_ROOT", "reserved_reason"]

#: Paths a protected directory may not be, lie in or hold (after resolving symlinks): what
#: sconify puts in the image, and what the container engine mounts over the image's own files.
SCONIFY_ROOT = "/sconify"
ENGINE_MOUNTS = ("/proc", "/sys", "/dev")


def reserved_reason(path: str, plaintext_root: str) -> str | None:
    """Why the real path ``path`` cannot be protected, or None when it can."""
    if path == "/":
        return "it is the whole image"
    if is_below(path, SCONIFY_ROOT):
        return f"{SCONIFY_ROOT} holds sconify's own files"
    root = plaintext_root.rstrip("/") or "/"
    if is_below(path, root) or is_below(root, path):
        return f"the plaintext is decrypted into {root} at start"
    mount = next((m for m in ENGINE_MOUNTS if is_below(path, m)), None)
    if mount is not None:
        return f"the container engine mounts its own {mount} over the image's"
    return None
