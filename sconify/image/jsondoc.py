"""Parsing the JSON documents of an image (manifests, indexes, configs) from untrusted bytes:
one :class:`ImageError` for anything :mod:`sconify.boundedjson` refuses."""

from __future__ import annotations

from typing import Any

from sconify import boundedjson
from sconify.errors import ImageError

#: How deep arrays and objects may nest. Real configs and manifests nest 4 or 5 deep; the
#: limit keeps every later walk (copies, serialisation) far from Python's recursion limit.
MAX_DEPTH = 64


def load_document(raw: bytes, what: str, *, hint: str) -> Any:
    """Parse ``raw`` as JSON; ``what`` names the document in the error (``image config``)."""
    try:
        return boundedjson.loads(raw, max_depth=MAX_DEPTH)
    except boundedjson.JsonRefused as refused:
        raise ImageError(f"{what} {refused}", hint=hint) from None
