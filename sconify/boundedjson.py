"""JSON from untrusted bytes, within bounds: one exception, with a reason, for everything
:func:`json.loads` gets wrong on hostile input.

:func:`json.loads` alone raises :class:`RecursionError` for a document nested 100,000 deep and a
bare :class:`ValueError` for a 5,000-digit number, and it accepts what cannot be written back
(``NaN``, lone surrogates such as ``"\\ud800"``, which UTF-8 cannot encode). Here each is a
:class:`JsonRefused`, whose message completes a sentence naming the document ("the image config
" + message). Image documents (:mod:`sconify.image.jsondoc`) and the CAS's request bodies
(:mod:`sconify.cas.bodies`) are read through it.

The checks beyond parsing cost a substring count on ordinary documents: nesting is walked only
when the bytes hold more brackets than the limit, strings only when they hold a ``\\u`` escape
(UTF-8 bytes that decode never make a lone surrogate; only an escape does).
"""

from __future__ import annotations

import json
from typing import Any


class JsonRefused(ValueError):
    """The bytes are not a JSON document within the bounds; the message says why."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: bytes, *, max_depth: int) -> Any:
    """Parse ``raw``; arrays and objects may nest at most ``max_depth`` levels."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonRefused("nests arrays or objects too deeply to be read") from None
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise JsonRefused(f"is not valid JSON: {err}") from None
    if raw.count(b"[") + raw.count(b"{") > max_depth and _depth(value) > max_depth:
        raise JsonRefused(f"nests arrays or objects more than {max_depth} levels deep")
    if b"\\u" in raw and (bad := _unencodable(value)) is not None:
        shown = bad.encode("utf-8", "backslashreplace")[:80]
        raise JsonRefused(
            f"holds a string that is not Unicode text (a lone surrogate escape): {shown!r}"
        )
    return value


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, list):
        return value
    return []


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in _children(item))
    return deepest


def _unencodable(value: Any) -> str | None:
    """The first string (or key) in ``value`` that UTF-8 cannot encode, if any."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return item
        else:
            stack.extend(_children(item))
    return None
