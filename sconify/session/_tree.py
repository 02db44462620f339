"""Checks on the whole tree read from YAML, before any field is validated.

Two things the field readers cannot see, each of which used to end in a traceback:

- **Nesting.** No field of the session language is nested more than a few levels, but a YAML
  document can be nested thousands deep; such a tree is refused here with its path, before
  anything walks it recursively.
- **Strings that are not Unicode text.** A YAML ``"\\ud800"`` escape reads as a lone UTF-16
  surrogate, a Python string that cannot be encoded as UTF-8 (so not hashed, stored or sent).
  Escaped surrogate *pairs*, as JSON writes characters beyond the BMP (``"\\ud83d\\ude00"``),
  are joined into the character they mean; a lone surrogate is refused with its path.

The walk is iterative and visits each container once, so neither depth nor shared (aliased)
nodes make it recurse or repeat work.
"""

from __future__ import annotations

from typing import Any

from sconify.session import _fields as f

#: The deepest nesting accepted. The language itself needs 5 (``services[0].attestation.
#: mrenclave[0]``); the margin keeps errors about misplaced fields to the field readers.
MAX_NESTING = 32


def checked_tree(raw: Any) -> Any:
    """``raw`` with surrogate pairs joined; refuses deep nesting and lone surrogates."""
    if isinstance(raw, str):
        return _text(raw, "session")
    seen: set[int] = set()
    stack: list[tuple[Any, str, int]] = [(raw, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if not isinstance(node, dict | list) or id(node) in seen:
            continue
        seen.add(id(node))
        if depth > MAX_NESTING:
            raise f.fail(
                path or "session",
                f"is nested more than {MAX_NESTING} levels deep",
                hint="no field of a session is nested that deep: check the brackets and "
                "indentation here",
            )
        if isinstance(node, dict):
            _check_map(node, path, depth, stack)
        else:
            for index, item in enumerate(node):
                ipath = f.child(path, index) if path else f"[{index}]"
                if isinstance(item, str):
                    node[index] = _text(item, ipath)
                else:
                    stack.append((item, ipath, depth + 1))
    return raw


def _check_map(node: dict[Any, Any], path: str, depth: int, stack: list[Any]) -> None:
    items: list[tuple[Any, Any]] = []
    changed = False
    for key, value in node.items():
        kpath = f.child(path, _printable(key)) if isinstance(key, str) else path
        if isinstance(key, str):
            fixed = _text(key, kpath, what="key")
            changed |= fixed is not key
            key = fixed
        if isinstance(value, str):
            fixed = _text(value, kpath)
            changed |= fixed is not value
            value = fixed
        else:
            stack.append((value, kpath, depth + 1))
        items.append((key, value))
    if not changed:
        return
    rebuilt = dict(items)
    if len(rebuilt) != len(items):
        raise f.fail(
            path or "session",
            "has two keys that are the same text once escaped surrogate pairs are joined",
            hint="keep exactly one of them",
        )
    node.clear()
    node.update(rebuilt)


def _text(value: str, path: str, *, what: str = "value") -> str:
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return value
    position = _lone_surrogate(value)
    if position is not None:
        raise f.fail(
            path,
            f"the {what} holds a lone UTF-16 surrogate (\\u{ord(value[position]):04x} at "
            f"character {position}), which is not Unicode text",
            hint="a \\uD800-\\uDFFF escape must be half of a pair (as JSON writes characters "
            "beyond U+FFFF); write the character itself, or its \\U0001F600-style escape",
        )
    # Only well-formed pairs are left: the UTF-16 round trip turns each into its character.
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def _lone_surrogate(value: str) -> int | None:
    index = 0
    while index < len(value):
        code = ord(value[index])
        pair = index + 1 < len(value) and 0xDC00 <= ord(value[index + 1]) <= 0xDFFF
        if 0xD800 <= code <= 0xDBFF and pair:
            index += 2
            continue
        if 0xD800 <= code <= 0xDFFF:
            return index
        index += 1
    return None


def _printable(key: str) -> str:
    # A path must itself be printable and encodable: lone surrogates shown as escapes.
    return key.encode("utf-8", "backslashreplace").decode("utf-8")
