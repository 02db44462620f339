"""Safe handling of the names inside layer tars: normalising, refusing escapes, whiteouts."""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass

from sconify.errors import UnsafeLayer

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


def clean_name(name: str, *, layer: str) -> str:
    """Return a tar member name as an absolute, normalised path, or raise :class:`UnsafeLayer`.

    ``./a/b/`` becomes ``/a/b``. Absolute names and ``..`` components are refused: a layer that
    tries to write outside its root is hostile or broken, either way not to be converted.
    """
    if name.startswith("/"):
        raise UnsafeLayer(
            f"layer {layer} has an absolute entry name {name!r}",
            hint="rebuild the image with a tool that writes relative tar names",
        )
    stripped = name[2:] if name.startswith("./") else name
    # Most names are already clean: nothing to drop, so nothing to split and join again.
    path = "/" + stripped
    if (
        "//" not in path
        and "/./" not in path
        and "/../" not in path
        and not path.endswith(("/", "/.", "/.."))
    ):
        return path
    parts = [p for p in stripped.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeLayer(
            f"layer {layer} has an entry {name!r} that escapes the image root",
            hint="this image is broken or hostile; rebuild it from trusted sources",
        )
    return "/" + "/".join(parts) if parts else "/"


def clean_hardlink_target(member: tarfile.TarInfo, *, layer: str) -> str:
    """Return the normalised absolute target of a hard link entry (same rules as names)."""
    return clean_name(member.linkname, layer=layer)


@dataclass(frozen=True)
class Whiteout:
    """A whiteout entry: ``opaque`` hides the lower contents of ``path``, else ``path`` itself."""

    path: str
    opaque: bool


def whiteout_of(path: str) -> Whiteout | None:
    """Return the whiteout that ``path`` (an entry name) encodes, if it is one."""
    if WHITEOUT_PREFIX not in path:
        return None
    base = posixpath.basename(path)
    if not base.startswith(WHITEOUT_PREFIX):
        return None
    parent = posixpath.dirname(path)
    if base == OPAQUE_MARKER:
        return Whiteout(parent, True)
    return Whiteout(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]), False)


def is_below(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` itself or inside it (both absolute, normalised)."""
    return path == root or path.startswith(root.rstrip("/") + "/")
