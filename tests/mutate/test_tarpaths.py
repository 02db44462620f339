"""Layer entry names: the fast path of clean_name gives what splitting and joining give."""

from __future__ import annotations

import itertools

from sconify.errors import UnsafeLayer
from sconify.mutate.tarpaths import clean_name, whiteout_of


def _slow_clean_name(name: str) -> str:
    """tarpaths.clean_name before its fast path, for names it accepts."""
    stripped = name[2:] if name.startswith("./") else name
    parts = [p for p in stripped.split("/") if p not in ("", ".")]
    assert ".." not in parts
    return "/" + "/".join(parts) if parts else "/"


def test_clean_name_fast_path_agrees_with_splitting() -> None:
    alphabet = ["a", ".", "..", "", "/", "./", "../", ".wh.x", "b/", ".c"]
    for size in range(1, 5):
        for combo in itertools.product(alphabet, repeat=size):
            name = "".join(combo)
            try:
                cleaned = clean_name(name, layer="0")
            except UnsafeLayer:
                parts = (name[2:] if name.startswith("./") else name).split("/")
                assert name.startswith("/") or ".." in parts
                continue
            assert cleaned == _slow_clean_name(name), name


def test_whiteout_of_names_without_the_prefix_is_none() -> None:
    assert whiteout_of("/a/b") is None and whiteout_of("/a.wh/b") is None
    assert whiteout_of("/a/.wh.b") is not None and whiteout_of("/.wh..wh..opq") is not None
