"""The authenticated set: the files whose hashes the measurement covers (contracts.md section 4).

The binary, the libraries the loader will open for it (its ELF dependency closure), the trees given
with ``--authenticate``, and for a Python interpreter its standard library.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sconify.errors import ConversionError
from sconify.mutate.fsview import FsView, Node
from sconify.mutate.tarpaths import is_below

# ELF e_machine -> the Debian/Ubuntu multiarch tuple its loader searches first.
_MULTIARCH = {62: "x86_64-linux-gnu", 183: "aarch64-linux-gnu"}


def library_dirs(machine: int) -> tuple[str, ...]:
    """The loader's default search path for an ELF machine (as Debian's ld.so.conf sets it)."""
    tuple_ = _MULTIARCH.get(machine)
    multiarch = (f"/lib/{tuple_}", f"/usr/lib/{tuple_}") if tuple_ else ()
    return (*multiarch, "/usr/local/lib", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


_PYTHON = re.compile(r"^python(3\.\d+)$")
_SKIP_IN_STDLIB = ("dist-packages", "site-packages")


@dataclass(frozen=True)
class AuthSet:
    """The resolved binary and the manifest ``{path: sha256}`` of everything authenticated."""

    binary: str
    files: dict[str, str]

    def manifest(self) -> dict[str, object]:
        """The document written to ``/sconify/auth/manifest.json``."""
        return {"files": dict(sorted(self.files.items())), "version": 1}


def resolve_binary(view: FsView, binary: str) -> Node:
    """Find ``--binary`` in the image, following symlinks; a clear error names close matches."""
    if not binary.startswith("/"):
        raise ConversionError(
            f"--binary={binary} is not an absolute path",
            hint="give the full path inside the image, e.g. --binary=/usr/bin/python3",
        )
    resolved = view.resolve(binary)
    node = view.get(resolved) if resolved else None
    if node is None:
        matches = view.close_matches(binary)
        hint = (
            "did you mean " + " or ".join(matches) + "?"
            if matches
            else "check the path with: docker run --rm --entrypoint ls IMAGE -l " + binary
        )
        raise ConversionError(f"--binary={binary} does not exist in the image", hint=hint)
    if node.kind != "file":
        raise ConversionError(
            f"--binary={binary} is a {node.kind}, not a regular file",
            hint="point --binary at the executable itself",
        )
    if node.elf is None:
        raise ConversionError(
            f"--binary={binary} is not an ELF executable",
            hint="sconify runs a compiled binary; for a script, pass its interpreter "
            "(e.g. --binary=/usr/bin/python3) and the script in --command",
        )
    return node


def _library_search(view: FsView, soname: str, origin: str, node: Node) -> str | None:
    assert node.elf is not None
    if "/" in soname:
        return soname if view.resolve(soname) else None
    dirs: list[str] = []
    if not node.elf.runpath:
        dirs += node.elf.rpath
    dirs += node.elf.runpath
    dirs += library_dirs(node.elf.machine)
    for directory in dirs:
        directory = directory.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
        candidate = posixpath.normpath(posixpath.join(directory, soname))
        resolved = view.resolve(candidate)
        if resolved is not None:
            found = view.get(resolved)
            if found is not None and found.kind == "file":
                return candidate
    return None


def elf_closure(view: FsView, binary: str) -> dict[str, str]:
    """The loader's view: ``{path as opened: sha256}`` for the binary, interpreter and libraries."""
    out: dict[str, str] = {}
    pending = [binary]
    while pending:
        path = pending.pop()
        if path in out:
            continue
        resolved = view.resolve(path)
        node = view.get(resolved) if resolved else None
        if node is None or node.kind != "file":
            continue
        out[path] = node.sha256
        if node.elf is None:
            continue
        if node.elf.interpreter:
            pending.append(node.elf.interpreter)
        origin = posixpath.dirname(resolved or path)
        for soname in node.elf.needed:
            found = _library_search(view, soname, origin, node)
            if found is None:
                raise ConversionError(
                    f"{path} needs {soname}, which is not in the image",
                    hint="install the library in the native image (the app would not start "
                    "natively either)",
                )
            pending.append(found)
    return out


def tree_files(view: FsView, root: str, *, skip: Iterable[str] = ()) -> dict[str, str]:
    """``{path: sha256}`` of every regular file below ``root`` (after resolving ``root``)."""
    resolved = view.resolve(root)
    if resolved is None or (node := view.get(resolved)) is None or node.kind != "dir":
        raise ConversionError(
            f"--authenticate={root} is not a directory in the image",
            hint="pass a directory that exists in the native image",
        )
    skipped = tuple(posixpath.join(resolved, s) for s in skip)
    out = {}
    for child in view.children(resolved):
        if child.kind == "file" and not any(is_below(child.path, s) for s in skipped):
            out[root.rstrip("/") + child.path[len(resolved) :]] = child.sha256
    return out


def python_stdlib(view: FsView, binary: str) -> list[str]:
    """The standard-library directories of a ``python3.X`` binary that exist in the image."""
    match = _PYTHON.match(posixpath.basename(binary))
    if not match:
        return []
    version = match.group(1)
    found = []
    for candidate in (f"/usr/lib/python{version}", f"/usr/local/lib/python{version}"):
        resolved = view.resolve(candidate)
        if resolved and (node := view.get(resolved)) is not None and node.kind == "dir":
            found.append(candidate)
    return found


def build_auth_set(
    view: FsView, binary: str, *, authenticate: Iterable[str], protected: Iterable[str]
) -> AuthSet:
    """Compute the authenticated set; refuses files that sit in protected (encrypted) dirs."""
    node = resolve_binary(view, binary)
    files = elf_closure(view, node.path)
    for tree in python_stdlib(view, node.path):
        files.update(tree_files(view, tree, skip=_SKIP_IN_STDLIB))
    for tree in authenticate:
        files.update(tree_files(view, tree))
    protected = list(protected)
    for path in files:
        _refuse_non_utf8(path)
        real = view.resolve(path) or path
        for region in protected:
            if is_below(real, region):
                raise ConversionError(
                    f"{path} is needed before decryption but lies in the protected directory "
                    f"{region}",
                    hint="the binary, its libraries and --authenticate trees must stay outside "
                    "--dir (they are integrity-protected by the measurement instead)",
                )
    return AuthSet(node.path, files)


def _refuse_non_utf8(path: str) -> None:
    """The manifest is JSON, read by the shim with Go's ``encoding/json``, which turns bytes
    that are not UTF-8 into U+FFFD: the shim would check another path than the one measured."""
    if path.isascii():
        return
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise ConversionError(
            f"{shown} must be authenticated (measured), but its name is not valid UTF-8",
            hint="rename it to a UTF-8 name in the native image",
        ) from None
