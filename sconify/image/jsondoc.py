"""Parsing the JSON documents of an image (manifests, indexes, configs) from untrusted bytes.

:func:`json.loads` alone turns hostile input into the wrong exceptions: a document nested
100,000 deep raises :class:`RecursionError`, a 5,000-digit number a bare :class:`ValueError`,
and it accepts what sconify cannot write back (``NaN``, lone surrogates such as ``"\\ud800"``,
which do not encode as UTF-8). Every such document is one :class:`ImageError` here instead.
"""

from __future__ import annotations

import json
from typing import Any

from sconify.errors import ImageError

#: How deep arrays and objects may nest. Real configs and manifests nest 4 or 5 deep; the
#: limit keeps every later walk (copies, serialisation) far from Python's recursion limit.
MAX_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_document(raw: bytes, what: str, *, hint: str) -> Any:
    """Parse ``raw`` as JSON; ``what`` names the document in the error (``image config``)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ImageError(
            f"{what} nests arrays or objects too deeply to be read", hint=hint
        ) from None
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise ImageError(f"{what} is not valid JSON: {err}", hint=hint) from None
    _check(value, what, hint)
    return value


def _check(value: Any, what: str, hint: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and strings that are not Unicode text."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item, what, hint)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise ImageError(
                f"{what} nests arrays or objects more than {MAX_DEPTH} deep", hint=hint
            )
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key, what, hint)
                pending.append((child, depth + 1))
        else:
            pending.extend((child, depth + 1) for child in item)


def _check_text(text: str, what: str, hint: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ImageError(
            f"{what} holds a string that is not Unicode text (a lone surrogate escape): "
            f"{text.encode('utf-8', 'backslashreplace')[:80]!r}",
            hint=hint,
        ) from None
