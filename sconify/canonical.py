"""Canonical JSON (docs/contracts.md section 1): the bytes that get hashed and signed."""

from __future__ import annotations

import json
from typing import Any


def compact_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: stable bytes for documents sconify did not define
    (image configs and manifests may hold anything JSON allows)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON: :func:`compact_json`, and integers only."""
    _reject_floats(value)
    return compact_json(value)


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("canonical JSON holds integers only, not floats")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)
