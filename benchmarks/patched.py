"""Run a sconify command with proposed performance fixes applied in memory (benchmarks only).

    python benchmarks/patched.py FIX[,FIX...] sconify|sconify_image ARGS...

The fixes are what ``BENCHMARKS.md`` proposes to the owners of the code they touch; applying
them here, in a fresh process measured exactly like the unpatched command, puts a number on
each one before anybody changes the real code. Nothing here is imported by sconify. A fix whose
target has changed shape is reported as not applicable rather than guessed at.

- ``lazy-docker``: ``sconify.transports.daemon`` imports the Docker SDK (and with it requests,
  urllib3, ...) at module level, and ``sconify.lift`` imports that module, so every conversion
  pays for it even when no engine is involved. The fix imports it on first use.
- ``plain-protected``: the protected layer (ciphertexts, which no compressor shrinks) stored as
  an uncompressed tar layer instead of gzip.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

FIXES: dict[str, str] = {
    "lazy-docker": "import the Docker SDK on first use, not with sconify.transports.daemon",
    "plain-protected": "store the protected layer (ciphertext) as an uncompressed tar layer",
}

#: sconify variants measured beside the unchanged command: (label, fixes).
VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sconify", ()),
    ("sconify +lazy-docker", ("lazy-docker",)),
    ("sconify +lazy-docker +plain-protected", ("lazy-docker", "plain-protected")),
)


class _LazyModule(types.ModuleType):
    """Stands in for a module in ``sys.modules`` and imports the real one on first use."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._real: types.ModuleType | None = None

    def _load(self) -> types.ModuleType:
        if self._real is None:
            for key in [k for k in sys.modules if k == "docker" or k.startswith("docker.")]:
                if isinstance(sys.modules[key], _LazyModule):
                    del sys.modules[key]
            self._real = importlib.import_module(self.__name__)
        return self._real

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)


def _lazy_docker() -> None:
    if "docker" in sys.modules:
        return
    sys.modules["docker"] = _LazyModule("docker")
    sys.modules["docker.errors"] = _LazyModule("docker.errors")


def _plain_protected() -> None:
    from sconify import convert
    from sconify.image import Compression

    # Looked up by name: the module's public surface does not (and need not) export it.
    target = "protected_layer"
    original: Callable[..., Any] = getattr(convert, target)

    # protected_layer(shim_config, manifest, fspf, volumes, regions, root, store, workdir,
    # compression): the ninth argument, positional or not.
    def protected_layer(*args: Any, **kwargs: Any) -> Any:
        if len(args) >= 9:
            args = (*args[:8], Compression.NONE, *args[9:])
        else:
            kwargs["compression"] = Compression.NONE
        return original(*args, **kwargs)

    setattr(convert, target, protected_layer)


_APPLY: dict[str, Callable[[], None]] = {
    "lazy-docker": _lazy_docker,
    "plain-protected": _plain_protected,
}


def apply(names: list[str]) -> None:
    """Apply the named fixes to sconify (before the command imports it)."""
    for name in names:
        _APPLY[name]()


def applicable(name: str) -> bool:
    """Whether the code a fix targets still has the shape the fix expects."""
    if name == "lazy-docker":
        import ast
        from importlib.util import find_spec

        spec = find_spec("sconify.transports.daemon")
        if spec is None or spec.origin is None:
            return False
        with open(spec.origin) as handle:
            tree = ast.parse(handle.read())
        return any(
            isinstance(node, ast.Import) and any(a.name == "docker" for a in node.names)
            for node in tree.body
        )
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
