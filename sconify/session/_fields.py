"""Field readers for session validation: each names the field path in its error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sconify.errors import SessionError
from sconify.session._yaml import YamlFloat, YamlInt

_HEX = re.compile(r"[0-9a-fA-F]+")


def fail(path: str, problem: str, hint: str | None = None) -> SessionError:
    """Build the error for field ``path`` (raise it at the call site)."""
    return SessionError(f"{path}: {problem}", hint=hint)


def child(path: str, key: str | int) -> str:
    """The path of a member (``a.b``) or item (``a[0]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def mapping(
    raw: Any, path: str, *, allowed: set[str], required: frozenset[str] = frozenset()
) -> Mapping[str, Any]:
    """A map whose keys are all in ``allowed`` and include ``required``."""
    if not isinstance(raw, Mapping):
        raise fail(path or "session", f"must be a map, not {_kind(raw)}")
    for key in raw:
        if key not in allowed:
            raise fail(
                child(path, key),
                "is not a known field (or not supported yet)",
                hint=f"known fields here: {', '.join(sorted(allowed))}",
            )
    for key in sorted(required):
        if raw.get(key) is None:
            raise fail(child(path, key), "is required")
    return raw


def seq(raw: Any, path: str) -> list[Any]:
    """A YAML sequence; ``None`` (field absent) is an empty one."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail(path, f"must be a list, not {_kind(raw)}")
    return raw


def text(raw: Any, path: str, *, allow_numbers: bool = False) -> str:
    """A string; with ``allow_numbers`` an unquoted number is taken as written."""
    if isinstance(raw, str):
        return raw
    if allow_numbers and isinstance(raw, YamlInt | YamlFloat) and not isinstance(raw, bool):
        return raw.source
    raise fail(path, f"must be a string, not {_kind(raw)}", hint="quote the value")


def optional_text(raw: Any, path: str) -> str | None:
    """A string or absent."""
    return None if raw is None else text(raw, path)


def boolean(raw: Any, path: str, *, default: bool = False) -> bool:
    """``true``/``false`` or absent."""
    if raw is None:
        return default
    if not isinstance(raw, bool):
        raise fail(path, f"must be true or false, not {_kind(raw)}")
    return raw


def integer(raw: Any, path: str, *, minimum: int, maximum: int) -> int:
    """An integer within bounds."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise fail(path, f"must be an integer, not {_kind(raw)}")
    if not minimum <= raw <= maximum:
        raise fail(path, f"must lie between {minimum} and {maximum}, not {raw}")
    return int(raw)


def hex_string(raw: Any, path: str, *, nbytes: int) -> str:
    """Exactly ``nbytes`` bytes of hex, returned lower-case."""
    value = text(raw, path, allow_numbers=True)
    if len(value) != 2 * nbytes or not _HEX.fullmatch(value):
        raise fail(path, f"must be {2 * nbytes} hex digits ({nbytes} bytes)")
    return value.lower()


def absolute_path(raw: Any, path: str) -> str:
    """An absolute POSIX path without NUL."""
    value = text(raw, path)
    if not value.startswith("/") or "\0" in value:
        raise fail(path, f"must be an absolute path, not {value!r}")
    return value


def names_unique(names: list[str], path: str, what: str) -> None:
    """Refuse a repeated ``name`` among list items."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise fail(child(child(path, index), "name"), f"{what} {name!r} is defined twice")
        seen.add(name)


def _kind(raw: Any) -> str:
    if raw is None:
        return "nothing"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int):
        return "a number"
    if isinstance(raw, float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list):
        return "a list"
    if isinstance(raw, Mapping):
        return "a map"
    return type(raw).__name__
