"""The merged file system of an image, as a container would see it, built from its layers.

Each layer is indexed once (:mod:`sconify.mutate.layerindex`, or a cache that has the index of
the same blob); the indexes are then merged bottom to top, applying whiteouts and opaque
directories, into one view: for each path that survives, where its content lives (layer and tar
member), its metadata and its sha256.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from sconify.errors import DigestMismatch, ImageError, UnsafeLayer
from sconify.image import Layer
from sconify.mutate.layerindex import MAX_ENTRIES, TOO_MANY_HINT, LayerIndex, Node, index_layer

__all__ = ["FsView", "IndexCache", "LayerIndex", "Node", "scan_layers"]

log = logging.getLogger(__name__)

_SYMLINK_HOPS = 40


@dataclass
class FsView:
    """The merged view of an image's layers, plus where each layer's entries are."""

    nodes: dict[str, Node] = field(default_factory=dict)
    layer_paths: list[set[str]] = field(default_factory=list)
    #: each layer's own index, bottom first (what the layer holds, hidden or not)
    indexes: list[LayerIndex] = field(default_factory=list)
    # directory -> the paths directly below it, so that replacing or whiting out a tree costs
    # the size of that tree, not of the whole file system
    _below: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def _put(self, node: Node) -> None:
        self.nodes[node.path] = node
        # Tars may leave out parent directories; link every ancestor so trees stay reachable.
        child, parent = node.path, _parent(node.path)
        while child != "/":
            siblings = self._below.setdefault(parent, set())
            if child in siblings:
                break
            siblings.add(child)
            child, parent = parent, _parent(parent)

    def remove_tree(self, path: str, *, keep_root: bool) -> None:
        """Remove ``path`` and everything below it (only what is below with ``keep_root``)."""
        pending = list(self._below.pop(path, ()))
        while pending:
            item = pending.pop()
            self.nodes.pop(item, None)
            pending.extend(self._below.pop(item, ()))
        if not keep_root:
            self.nodes.pop(path, None)
            self._below.get(_parent(path), set()).discard(path)

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
    nodes = view.nodes
    end = path.rfind("/")
    while end > 0:
        parent = path[:end]
        node = nodes.get(parent)
        if node is not None and node.kind == "symlink":
            raise UnsafeLayer(
                f"layer {layer} writes {path} through the symlink {parent} -> {node.target}",
                hint="rebuild the image so that its layers hold real paths (as docker build does)",
            )
        end = path.rfind("/", 0, end)


def _parent(path: str) -> str:
    """The directory of a clean absolute path (``/`` for ``/`` itself)."""
    return path[: path.rfind("/")] or "/"


class IndexCache(Protocol):
    """Where layer indexes are kept between conversions (see :mod:`sconify.mutate.indexcache`)."""

    def get(self, digest: str) -> LayerIndex | None:
        """The index of the layer blob named ``digest``, if kept."""

    def put(self, digest: str, index: LayerIndex) -> None:
        """Keep the index of the layer blob named ``digest``."""


def scan_layers(layers: Sequence[Layer], cache: IndexCache | None = None) -> FsView:
    """Build the merged view of ``layers`` (bottom first), applying whiteouts and opaque dirs.

    A layer's index depends only on its blob's bytes, named by the blob's digest (which the
    blob store has verified), so ``cache`` may answer for layers seen before (a shared base
    image is read once, not at every conversion). Every index, cached or just made, carries
    the digest of the uncompressed stream it was read from, which must be the layer's diff_id.
    """
    view = FsView()
    for position, layer in enumerate(layers):
        name = f"{position} ({layer.digest})"
        index = cache.get(str(layer.digest)) if cache is not None else None
        if index is None:
            index = index_layer(layer, name)
            if cache is not None:
                cache.put(str(layer.digest), index)
        check_diff_id(index, layer, name)
        for wo in index.whiteouts:
            view.remove_tree(wo.path, keep_root=wo.opaque)
        for node in index.entries:
            _refuse_write_through_symlink(view, node.path, name)
            # Indexes say layer 0 (they are cached apart from any image); most of an image is
            # its bottom layer, whose nodes need no copy.
            view.add(replace(node, layer=position) if position else node)
        view.layer_paths.append(set(index.paths))
        if len(view.nodes) > MAX_ENTRIES:
            raise ImageError(
                f"the image holds more than {MAX_ENTRIES:,} paths (layers up to {name})",
                hint=TOO_MANY_HINT,
            )
        view.indexes.append(index)
    return view


def check_diff_id(index: LayerIndex, layer: Layer, name: str) -> None:
    """Refuse a layer whose uncompressed stream is not the one the config names (its diff_id).

    The config's ``rootfs.diff_ids`` is what an engine checks a layer against after extracting
    it; a layer that hashes otherwise is corrupt, or was built to be read differently.
    """
    if index.diff_id != str(layer.diff_id):
        raise DigestMismatch(
            f"layer {name}: its uncompressed tar hashes to {index.diff_id or 'nothing'}, "
            f"the image config's diff_id is {layer.diff_id}",
            hint="the image is corrupt or was altered; rebuild it, or pull it again",
        )
