"""Checks on the whole tree read from YAML, before any field is validated.

No field of the session language is nested more than a few levels, but a YAML document can be
nested much deeper (:mod:`sconify.session.yamlsafe` stops at its own, larger bound without a
place to name); a tree nested more than :data:`MAX_NESTING` levels is refused here with its
path, before anything walks it recursively. (Strings that are not Unicode text, such as a
``"\\ud800"`` escape, never get this far: libyaml refuses them where they stand.)

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
    """``raw`` itself, once it is known to nest at most :data:`MAX_NESTING` levels."""
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
            for key, value in node.items():
                stack.append(
                    (value, f.child(path, key) if isinstance(key, str) else path, depth + 1)
                )
        else:
            for index, item in enumerate(node):
                stack.append((item, f.child(path, index) if path else f"[{index}]", depth + 1))
    return raw
