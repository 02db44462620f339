"""The merged file system of an image, as a container would see it, built by streaming its layers.

One pass over every layer tar records, for each path that survives whiteouts, where its content
lives (layer and tar member), its metadata, the sha256 of regular files and, for ELF files, what
the loader needs. Nothing is extracted to disk and no file is held whole in memory except ELF
files, which are parsed (libraries are small; huge ones are hashed but not parsed).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sconify.elf import ELF_MAGIC, ElfInfo, NotElf, parse_elf
from sconify.errors import ImageError, UnsafeLayer
from sconify.image import Layer
from sconify.mutate.tarpaths import Whiteout, clean_hardlink_target, clean_name, whiteout_of

log = logging.getLogger(__name__)

_ELF_PARSE_LIMIT = 512 * 1024 * 1024
_READ = 1 << 20
_SYMLINK_HOPS = 40


@dataclass(frozen=True)
class Node:
    """One path of the merged file system.

    ``kind`` is ``file``, ``dir``, ``symlink`` or ``other`` (devices, fifos). For a file,
    ``layer``/``member`` name the tar entry holding its bytes (for a hard link, its target's
    entry in the same layer).
    """

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    layer: int
    member: str
    size: int = 0
    target: str = ""
    sha256: str = ""
    elf: ElfInfo | None = None


@dataclass
class FsView:
    """The merged view of an image's layers, plus where each layer's entries are."""

    nodes: dict[str, Node] = field(default_factory=dict)
    layer_paths: list[set[str]] = field(default_factory=list)
    # directory -> the paths directly below it, so that replacing or whiting out a tree costs
    # the size of that tree, not of the whole file system
    _below: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def _put(self, node: Node) -> None:
        self.nodes[node.path] = node
        # Tars may leave out parent directories; link every ancestor so trees stay reachable.
        child, parent = node.path, posixpath.dirname(node.path)
        while child != "/":
            siblings = self._below.setdefault(parent, set())
            if child in siblings:
                break
            siblings.add(child)
            child, parent = parent, posixpath.dirname(parent)

    def remove_tree(self, path: str, *, keep_root: bool) -> None:
        """Remove ``path`` and everything below it (only what is below with ``keep_root``)."""
        pending = list(self._below.pop(path, ()))
        while pending:
            item = pending.pop()
            self.nodes.pop(item, None)
            pending.extend(self._below.pop(item, ()))
        if not keep_root:
            self.nodes.pop(path, None)
            self._below.get(posixpath.dirname(path), set()).discard(path)

    def add(self, node: Node) -> None:
        """Add a layer's entry: a non-directory replaces whatever tree was at its path."""
        old = self.nodes.get(node.path)
        replaces_tree = node.kind != "dir" and node.path in self._below
        if replaces_tree or (old is not None and (node.kind != "dir" or old.kind != "dir")):
            self.remove_tree(node.path, keep_root=False)
        self._put(node)

    def get(self, path: str) -> Node | None:
        """The node at ``path`` exactly (no symlink resolution)."""
        return self.nodes.get(path)

    def resolve(self, path: str) -> str | None:
        """Follow symlinks in every component of ``path`` as the kernel would; None if missing."""
        hops = 0
        parts = [p for p in path.split("/") if p]
        resolved = "/"
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            node = self.nodes.get(candidate)
            if node is None:
                return None
            if node.kind == "symlink":
                hops += 1
                if hops > _SYMLINK_HOPS:
                    return None
                target = node.target
                base = "/" if target.startswith("/") else resolved
                parts = [p for p in target.split("/") if p] + parts
                resolved = base
                continue
            resolved = candidate
        return resolved

    def children(self, root: str) -> Iterator[Node]:
        """Every node strictly below ``root``, in path order."""
        found: list[str] = []
        pending = list(self._below.get(root, ()))
        while pending:
            path = pending.pop()
            found.append(path)
            pending.extend(self._below.get(path, ()))
        for path in sorted(found):
            if path in self.nodes:
                yield self.nodes[path]

    def close_matches(self, path: str, limit: int = 3) -> list[str]:
        """Paths that look like ``path`` (same base name first), for error hints."""
        import difflib

        base = posixpath.basename(path)
        same_base = sorted(p for p, n in self.nodes.items() if posixpath.basename(p) == base)
        if same_base:
            return same_base[:limit]
        return difflib.get_close_matches(path, list(self.nodes), n=limit, cutoff=0.6)


def _refuse_write_through_symlink(view: FsView, path: str, layer: str) -> None:
    """A layer entry below a symlink would be written wherever the link points: refuse it.

    Docker resolves such entries inside the root; sconify would see them under the wrong path
    and could leave a protected file's plaintext in the image, so it does not convert them.
    """
    parent = posixpath.dirname(path)
    while parent != "/":
        node = view.nodes.get(parent)
        if node is not None and node.kind == "symlink":
            raise UnsafeLayer(
                f"layer {layer} writes {path} through the symlink {parent} -> {node.target}",
                hint="rebuild the image so that its layers hold real paths (as docker build does)",
            )
        parent = posixpath.dirname(parent)


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.isreg() or member.islnk():
        return "file"
    return "other"


def _hash_member(stream: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[str, ElfInfo | None]:
    handle = stream.extractfile(member)
    if handle is None:
        return hashlib.sha256(b"").hexdigest(), None
    digest = hashlib.sha256()
    head = handle.read(_READ)
    digest.update(head)
    if head.startswith(ELF_MAGIC) and member.size <= _ELF_PARSE_LIMIT:
        chunks = [head]
        while chunk := handle.read(_READ):
            digest.update(chunk)
            chunks.append(chunk)
        try:
            return digest.hexdigest(), parse_elf(b"".join(chunks))
        except NotElf:
            return digest.hexdigest(), None
    while chunk := handle.read(_READ):
        digest.update(chunk)
    return digest.hexdigest(), None


@dataclass(frozen=True)
class LayerIndex:
    """What one layer holds, independent of the layers around it (so it can be cached by its
    ``diff_id``): entries in tar order (``layer`` still 0), whiteouts, and every path named."""

    entries: tuple[Node, ...]
    whiteouts: tuple[Whiteout, ...]
    paths: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        """A compact JSON form for the cache."""
        return {
            "entries": [
                [
                    n.path,
                    n.kind,
                    n.mode,
                    n.uid,
                    n.gid,
                    n.member,
                    n.size,
                    n.target,
                    n.sha256,
                    None
                    if n.elf is None
                    else [
                        n.elf.machine,
                        n.elf.interpreter,
                        n.elf.needed,
                        n.elf.rpath,
                        n.elf.runpath,
                    ],
                ]
                for n in self.entries
            ],
            "whiteouts": [[w.path, w.opaque] for w in self.whiteouts],
            "paths": sorted(self.paths),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LayerIndex:
        """Read the cache form back."""
        entries = []
        for path, kind, mode, uid, gid, member, size, target, sha256, elf in obj["entries"]:
            info = None
            if elf is not None:
                machine, interp, needed, rpath, runpath = elf
                info = ElfInfo(machine, interp, tuple(needed), tuple(rpath), tuple(runpath))
            entries.append(Node(path, kind, mode, uid, gid, 0, member, size, target, sha256, info))
        return cls(
            tuple(entries),
            tuple(Whiteout(p, bool(o)) for p, o in obj["whiteouts"]),
            frozenset(obj["paths"]),
        )


def index_layer(layer: Layer, name: str) -> LayerIndex:
    """Read one layer's tar: every entry's metadata, the sha256 of files, ELF facts."""
    additions: list[Node] = []
    whiteouts = []
    seen: set[str] = set()
    by_member: dict[str, Node] = {}
    try:
        with layer.open_tar() as raw, tarfile.open(fileobj=raw, mode="r|") as stream:
            for member in stream:
                path = clean_name(member.name, layer=name)
                if path == "/":
                    continue
                seen.add(path)
                wo = whiteout_of(path)
                if wo is not None:
                    whiteouts.append(wo)
                    continue
                node = _node_of(stream, member, path, name, by_member)
                by_member[path] = node
                additions.append(node)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ImageError(
            f"layer {name} is not a readable tar: {err}",
            hint="the blob is corrupt or not a layer; pull the image again",
        ) from err
    return LayerIndex(tuple(additions), tuple(whiteouts), frozenset(seen))


class IndexCache(Protocol):
    """Where layer indexes are kept between conversions (see :mod:`sconify.mutate.indexcache`)."""

    def get(self, diff_id: str) -> LayerIndex | None:
        """The index of the layer whose uncompressed tar hashes to ``diff_id``, if kept."""

    def put(self, diff_id: str, index: LayerIndex) -> None:
        """Keep an index."""


def scan_layers(layers: Sequence[Layer], cache: IndexCache | None = None) -> FsView:
    """Build the merged view of ``layers`` (bottom first), applying whiteouts and opaque dirs.

    A layer's index depends only on its content, so ``cache`` may answer for layers seen
    before (a shared base image is read once, not at every conversion).
    """
    view = FsView()
    for position, layer in enumerate(layers):
        name = f"{position} ({layer.digest})"
        index = cache.get(str(layer.diff_id)) if cache is not None else None
        if index is None:
            index = index_layer(layer, name)
            if cache is not None:
                cache.put(str(layer.diff_id), index)
        for wo in index.whiteouts:
            view.remove_tree(wo.path, keep_root=wo.opaque)
        for node in index.entries:
            _refuse_write_through_symlink(view, node.path, name)
            view.add(replace(node, layer=position))
        view.layer_paths.append(set(index.paths))
    return view


def _node_of(
    stream: tarfile.TarFile,
    member: tarfile.TarInfo,
    path: str,
    layer_name: str,
    earlier: dict[str, Node],
) -> Node:
    kind = _kind(member)
    node = Node(path, kind, member.mode & 0o7777, member.uid, member.gid, 0, member.name)
    if member.islnk():
        target = clean_hardlink_target(member, layer=layer_name)
        source = earlier.get(target)
        if source is None or source.kind != "file":
            raise UnsafeLayer(
                f"layer {layer_name}: hard link {path} points to {target}, which is not a file "
                "earlier in the same layer",
                hint="rebuild the image; hard links must point to a file in their own layer",
            )
        return replace(
            node,
            kind="file",
            member=source.member,
            size=source.size,
            sha256=source.sha256,
            elf=source.elf,
        )
    if kind == "symlink":
        return replace(node, target=member.linkname)
    if kind == "file":
        sha, elf = _hash_member(stream, member)
        return replace(node, size=member.size, sha256=sha, elf=elf)
    return node
