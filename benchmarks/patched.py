"""Run a sconify command with proposed performance fixes applied in memory (benchmarks only).

    python benchmarks/patched.py FIX[,FIX...] sconify|sconify_image ARGS...

The fixes are what ``BENCHMARKS.md`` proposes to the owners of the code they touch; applying
them here, in a fresh process measured exactly like the unpatched command, puts a number on
each one before anybody changes the real code. Nothing here is imported by sconify. A fix whose
target has changed shape is reported as not applicable rather than guessed at.

- ``plain-protected``: the protected layer (ciphertexts, which no compressor shrinks) stored as
  an uncompressed tar layer instead of gzip.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

FIXES: dict[str, str] = {
    "plain-protected": "store the protected layer (ciphertext) as an uncompressed tar layer",
}

#: sconify variants measured beside the unchanged command: (label, fixes).
VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sconify", ()),
    ("sconify +plain-protected", ("plain-protected",)),
)


def _plain_protected() -> None:
    from sconify import convert
    from sconify.image import Compression

    # Looked up by name: the module's public surface does not (and need not) export it.
    target = "protected_layer"
    original: Callable[..., Any] = getattr(convert, target)

    # protected_layer(shim_config, manifest, fspf, ciphertexts, regions, root, store,
    # compression): the eighth argument, positional or not.
    def protected_layer(*args: Any, **kwargs: Any) -> Any:
        if len(args) >= 8:
            args = (*args[:7], Compression.NONE, *args[8:])
        else:
            kwargs["compression"] = Compression.NONE
        return original(*args, **kwargs)

    setattr(convert, target, protected_layer)


_APPLY: dict[str, Callable[[], None]] = {
    "plain-protected": _plain_protected,
}


def apply(names: list[str]) -> None:
    """Apply the named fixes to sconify (before the command imports it)."""
    for name in names:
        _APPLY[name]()


def applicable(name: str) -> bool:
    """Whether the code a fix targets still has the shape the fix expects."""
    if name == "plain-protected":
        from sconify import convert

        return hasattr(convert, "protected_layer")
    return name in _APPLY


def main() -> None:
    names = [n for n in sys.argv[1].split(",") if n and n != "none"]
    command = sys.argv[2]
    sys.argv = [command, *sys.argv[3:]]
    apply(names)
    if command == "sconify_image":
        from sconify.cli.sconify_image import main as entry
    else:
        from sconify.cli.main import main as entry
    entry()


if __name__ == "__main__":
    main()
