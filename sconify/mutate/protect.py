"""Protect directories: encrypt their merged contents as SCFS v1 and strip them from every layer.

A whiteout in an upper layer would only hide the plaintext; the bytes would stay in the lower
layer's blob. So every layer that holds an entry below a protected directory is rewritten without
it; layers that hold none pass through byte-identical (same digest, nothing re-uploaded).
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from sconify.crypto.keys import VolumeKey
from sconify.crypto.scfs import PackSink, SealedVolume, VolumeWriter
from sconify.errors import ConversionError, ImageError
from sconify.image import BlobStore, Compression, Layer, LayerSink
from sconify.mutate.fsview import FsView, Node
from sconify.mutate.reserved import DEFAULT_PLAINTEXT_ROOT, reserved_reason
from sconify.mutate.tarpaths import clean_hardlink_target, clean_name, is_below
from sconify.mutate.tarwriter import copy_member

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtectedVolume:
    """The outcome: the native layers without the plaintext, and the encrypted volume."""

    layers: tuple[Layer, ...]
    regions: tuple[str, ...]
    sealed: SealedVolume
    ciphertexts: PackSink
    rewritten: tuple[int, ...]


def resolve_regions(
    view: FsView, dirs: Sequence[str], *, plaintext_root: str = DEFAULT_PLAINTEXT_ROOT
) -> tuple[str, ...]:
    """Check each ``--dir`` exists as a directory; return their real paths (symlinks resolved).

    A directory is refused when its real path (every symlink followed, as the shim and the
    kernel would) is, lies in or holds a path sconify or the engine owns: ``/sconify``, the
    plaintext root, ``/proc``, ``/sys`` and ``/dev``.
    """
    out: list[str] = []
    for d in dirs:
        if not d.startswith("/") or d.rstrip("/") in ("", "/sconify"):
            raise ConversionError(
                f"--dir={d} cannot be protected",
                hint="pass an absolute directory of the application, such as --dir=/app",
            )
        resolved = view.resolve(d)
        reason = reserved_reason(resolved, plaintext_root) if resolved else None
        if reason is not None:
            shown = d if resolved == d.rstrip("/") else f"{d} (which resolves to {resolved})"
            raise ConversionError(
                f"--dir={shown} cannot be protected: {reason}",
                hint="pass a directory of the application, such as --dir=/app",
            )
        node = view.get(resolved) if resolved else None
        if node is None:
            matches = view.close_matches(d.rstrip("/"))
            raise ConversionError(
                f"--dir={d} does not exist in the image",
                hint=("did you mean " + " or ".join(matches) + "?")
                if matches
                else "list the image's directories with: sconify image inspect IMAGE",
            )
        if node.kind != "dir":
            raise ConversionError(
                f"--dir={d} is a {node.kind}, not a directory", hint="pass a directory"
            )
        if node.path not in out:
            out.append(node.path)
    for a in out:
        for b in out:
            if a != b and is_below(b, a):
                raise ConversionError(
                    f"--dir={b} lies inside --dir={a}", hint="pass only the outer directory"
                )
    return tuple(out)


def _region_of(path: str, regions: Sequence[str]) -> str | None:
    return next((r for r in regions if is_below(path, r)), None)


@dataclass(frozen=True)
class ProtectionPlan:
    """What protecting ``regions`` of a view takes, decided before any byte is written.

    ``entries`` are the volume's directories, symlinks and files in path order; ``sources``
    maps a layer's tar member to the protected files whose bytes it holds; ``touched`` are the
    layers that hold an entry below a region (they are rewritten, every other layer is final);
    ``hidden`` are, per layer, the paths outside every region that nobody sees in the final
    image but that hold a protected file's bytes or lie below a ``--dir`` as written (they are
    dropped from their layers, see :func:`hidden_links` and :func:`hidden_copies`).
    """

    regions: tuple[str, ...]
    entries: tuple[tuple[str, str, Node], ...]
    sources: dict[tuple[int, str], list[tuple[str, str, Node]]]
    touched: tuple[int, ...]
    hidden: dict[int, frozenset[str]] = field(default_factory=dict)

    def untouched(self, layers: Sequence[Layer]) -> list[Layer]:
        """The layers that pass through unchanged (no protected path in them)."""
        return [layer for i, layer in enumerate(layers) if i not in self.touched]


def plan_protection(
    view: FsView, regions: Sequence[str], dirs: Sequence[str] = ()
) -> ProtectionPlan:
    """Plan the encryption of ``regions`` of ``view``; refuses what cannot be protected.

    ``dirs`` are the ``--dir`` paths as written, before their symlinks were resolved into
    ``regions``: what lower layers hold below them is hidden, and dropped too.
    """
    entries: list[tuple[str, str, Node]] = []
    sources: dict[tuple[int, str], list[tuple[str, str, Node]]] = defaultdict(list)
    for region in regions:
        for node in view.children(region):
            rel = node.path[len(region) + 1 :]
            if node.kind not in ("dir", "symlink", "file"):
                raise ConversionError(
                    f"{node.path} is a device or fifo inside the protected directory {region}",
                    hint="protect only directories of regular files, links and directories",
                )
            entries.append((region, rel, node))
            if node.kind == "file":
                sources[(node.layer, node.member)].append((region, rel, node))
    inside = tuple(r + "/" for r in regions)
    below = {
        i
        for i, paths in enumerate(view.layer_paths)
        if not paths.isdisjoint(regions) or any(p.startswith(inside) for p in paths)
    }
    copies = hidden_copies(view, regions, entries, dirs)
    hidden = {i: hidden_links(view, regions, i) for i in below}
    for i, paths in copies.items():
        hidden[i] = hidden.get(i, frozenset()) | paths
    return ProtectionPlan(
        tuple(regions),
        tuple(entries),
        dict(sources),
        tuple(sorted(below | set(copies))),
        {i: paths for i, paths in hidden.items() if paths},
    )


def hidden_copies(
    view: FsView,
    regions: Sequence[str],
    entries: Sequence[tuple[str, str, Node]],
    dirs: Sequence[str] = (),
) -> dict[int, frozenset[str]]:
    """Per layer, the entries outside ``regions`` that nobody sees in the final image but that
    would keep protected plaintext in a layer: files with the bytes of a protected file (an
    application moved by ``mv /build /app``: the old path is whited out, its bytes stay in the
    lower layer) and anything below a ``--dir`` as written when a later layer made it a symlink
    (``dirs`` that resolve elsewhere). A copy that stays visible is the image's own choice to
    show those bytes at another path: it is kept, with a warning naming both paths.
    """
    protected = {node.sha256: node.path for _, _, node in entries if node.kind == "file"}
    protected.pop(_EMPTY_SHA256, None)
    shadows = tuple(
        clean for d in dirs if (clean := posixpath.normpath(d)) not in regions and clean != "/"
    )
    out: dict[int, set[str]] = defaultdict(set)
    for layer, index in enumerate(view.indexes):
        for node in index.entries:
            copy_of = protected.get(node.sha256) if node.kind == "file" else None
            shadowed = any(is_below(node.path, s) for s in shadows)
            if (copy_of is None and not shadowed) or _region_of(node.path, regions) is not None:
                continue
            shown = _shown(view, layer, node)
            if shown is not None:
                if shown.sha256 != node.sha256:
                    # the path twice in one layer: the rewrite drops entries by path
                    raise ConversionError(
                        f"layer {layer} holds {node.path} twice, and the copy a later entry "
                        "hides would keep protected plaintext in the layer",
                        hint="rebuild the image so that each path appears once per layer",
                    )
                if copy_of is not None:
                    log.warning(
                        "%s has the same bytes as the protected %s and stays readable in the "
                        "image; protect its directory too (another --dir) if that matters",
                        node.path,
                        copy_of,
                    )
                continue
            out[layer].add(node.path)
    return {layer: frozenset(paths) for layer, paths in out.items()}


_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


#: AUFS keeps its metadata (hard-link sources in ``.wh..wh.plnk``) under names starting so;
#: moby's layer applier never extracts them.
AUFS_META_PREFIX = "/.wh..wh."


def hidden_links(view: FsView, regions: Sequence[str], layer: int) -> frozenset[str]:
    """The paths of ``layer`` outside ``regions`` that share a protected file's bytes (one
    hard-link group, in whichever order and direction the links were written) and that nobody
    sees: replaced, deleted or whited out by a later layer, or AUFS metadata.

    Those are dropped from the rewritten layer with the protected file; a group member that stays
    visible outside the regions would keep the plaintext in the image, so it is refused, naming
    both paths.
    """
    groups: dict[str, list[Node]] = defaultdict(list)
    for node in view.indexes[layer].entries:
        if node.kind == "file":
            groups[node.member].append(node)
    hidden: set[str] = set()
    for nodes in groups.values():
        inside = next((n for n in nodes if _region_of(n.path, regions) is not None), None)
        if inside is None or len(nodes) == 1:
            continue
        for node in nodes:
            if _region_of(node.path, regions) is not None:
                continue
            if not node.path.startswith(AUFS_META_PREFIX) and _shown(view, layer, node):
                raise ConversionError(
                    f"{inside.path} and {node.path} are hard links to the same file, and "
                    f"{node.path} is outside the protected directories, so the plaintext of "
                    f"{inside.path} would stay in the image",
                    hint=f"protect {posixpath.dirname(node.path)} too (another --dir), or remove "
                    "the hard link from the native image",
                )
            hidden.add(node.path)
    return frozenset(hidden)


def _shown(view: FsView, layer: int, node: Node) -> Node | None:
    """What the final image shows at ``node``'s path, if it is ``node``'s entry of ``layer``
    (the same tar member; a path twice in one layer has one member name for both)."""
    shown = view.get(node.path)
    if shown is not None and shown.layer == layer and shown.member == node.member:
        return shown
    return None


def protect_regions(
    layers: Sequence[Layer],
    view: FsView,
    plan: ProtectionPlan,
    key: VolumeKey,
    store: BlobStore,
    workdir: Path,
    *,
    compression: Compression = Compression.GZIP,
) -> ProtectedVolume:
    """Encrypt the planned regions of ``view`` with ``key``; return plaintext-free layers."""
    ciphertexts = PackSink(workdir / "ciphertexts.pack")
    writer = VolumeWriter(key, ciphertexts)
    for region in plan.regions:
        root = view.nodes[region]
        writer.add_region(region, mode=root.mode, uid=root.uid, gid=root.gid)
    for region, rel, node in plan.entries:
        if node.kind == "dir":
            writer.add_dir(region, rel, mode=node.mode, uid=node.uid, gid=node.gid)
        elif node.kind == "symlink":
            writer.add_symlink(region, rel, node.target, uid=node.uid, gid=node.gid)
    out = list(layers)
    for index in plan.touched:
        out[index] = _rewrite_layer(
            index,
            layers[index],
            plan.regions,
            plan.sources,
            plan.hidden.get(index, frozenset()),
            writer,
            store,
            workdir,
            compression,
        )
    expected = sum(len(group) for group in plan.sources.values())
    ciphertexts.close()
    sealed = writer.finish()
    if sealed.file_count != expected:
        raise ImageError(
            "some protected files were not found again in their layers",
            hint="a layer changed while converting; run the conversion again",
        )
    return ProtectedVolume(tuple(out), plan.regions, sealed, ciphertexts, plan.touched)


def _rewrite_layer(
    index: int,
    layer: Layer,
    regions: Sequence[str],
    sources: dict[tuple[int, str], list[tuple[str, str, Node]]],
    hidden: frozenset[str],
    writer: VolumeWriter,
    store: BlobStore,
    workdir: Path,
    compression: Compression,
) -> Layer:
    name = f"{index} ({layer.digest})"
    dropped = 0
    with (
        layer.open_tar() as raw,
        tarfile.open(fileobj=raw, mode="r|") as src,
        LayerSink(store, compression, source=f"layer {name} without its protected entries") as out,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src:
            path = clean_name(member.name, layer=name)
            # an entry is left out if it is protected, or a hidden hard link to a protected file
            drop = _region_of(path, regions) is not None or path in hidden
            if not drop and member.islnk():
                target = clean_hardlink_target(member, layer=name)
                if _region_of(target, regions) is not None or target in hidden:
                    raise ConversionError(
                        f"{path} is a hard link to {target}, whose plaintext is protected, "
                        "so it would stay in the image",
                        hint="protect the directory of the link too (another --dir), or "
                        "remove the link from the native image",
                    )
            wanted = sources.get((index, member.name)) if member.isreg() else None
            data = cast(BinaryIO, src.extractfile(member)) if member.isreg() else None
            if wanted and data is not None and drop and len(wanted) == 1:
                # The usual case: encrypted straight from the layer, read once.
                _add(writer, wanted[0], data)
            elif wanted and data is not None:
                if not drop:
                    raise ConversionError(
                        f"{path} holds the bytes of a protected file and stays in the image",
                        hint="protect the directory of both paths, or remove the hard link",
                    )
                # Read more than once: hard links share it.
                with tempfile.SpooledTemporaryFile(8 << 20, dir=str(workdir)) as spool:
                    shutil.copyfileobj(data, spool)
                    for target_entry in wanted:
                        spool.seek(0)
                        _add(writer, target_entry, cast(BinaryIO, spool))
            elif not drop:
                copy_member(dst, member, data)
            if drop:
                dropped += 1
        dst.close()
        layer_out = out.finish()
    log.info("layer %s: removed %d protected entries", name, dropped)
    return layer_out


def _add(writer: VolumeWriter, target: tuple[str, str, Node], data: BinaryIO) -> None:
    region, rel, node = target
    writer.add_file(region, rel, data, node.size, mode=node.mode, uid=node.uid, gid=node.gid)
