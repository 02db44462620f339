"""What one layer holds, read in one streaming pass over its tar: the unit the layer-index
cache keeps (by the blob's digest) and :mod:`sconify.mutate.fsview` merges.

For each entry: its metadata and where its bytes are (tar member); for regular files the sha256
and, for ELF files, what the loader needs. Nothing is extracted and no file is held whole in
memory: an ELF file up to 8 MiB is parsed in memory, a larger one (up to 2 GiB) through
:class:`sconify.elf.ElfCapture`, which spools it to a temporary file when it must.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, cast

from sconify.elf import CAPTURE_MEMORY, ELF_MAGIC, ElfCapture, ElfInfo, NotElf, parse_elf
from sconify.errors import ImageError, UnsafeLayer
from sconify.image import Compression, Layer
from sconify.image.layer import DiffIdReader, checked, open_checked
from sconify.mutate.tarpaths import Whiteout, clean_name, whiteout_of
from sconify.mutate.tarscan import (
    DIRTYPE,
    LNKTYPE,
    REGULAR_TYPES,
    SYMTYPE,
    TarEntry,
    TarFormatError,
    TarScanner,
    UnsupportedTar,
)

#: ELF files up to this size are parsed; larger ones are hashed only. Their bytes are kept only
#: while parsing, in memory up to ``_ELF_IN_MEMORY`` and beyond it in a temporary file, so the
#: memory an index takes does not grow with the files of the layer.
_ELF_PARSE_LIMIT = 2 << 30
_ELF_IN_MEMORY = CAPTURE_MEMORY


@dataclass(frozen=True, slots=True)
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


def _row(n: Node) -> list[Any]:
    """A node as one row of the cache form (the layer position is not kept)."""
    elf = n.elf
    return [
        n.path,
        n.kind,
        n.mode,
        n.uid,
        n.gid,
        n.member,
        n.size,
        n.target,
        n.sha256,
        None if elf is None else [elf.machine, elf.interpreter, elf.needed, elf.rpath, elf.runpath],
    ]


@dataclass(frozen=True)
class LayerIndex:
    """What one layer holds, independent of the layers around it (so it can be cached by its
    blob's digest): entries in tar order (``layer`` still 0), whiteouts, every path named, and
    ``diff_id``, the digest of the whole uncompressed stream it was read from (checked against
    the image config's ``rootfs.diff_ids`` at every use, cached or not)."""

    entries: tuple[Node, ...]
    whiteouts: tuple[Whiteout, ...]
    paths: frozenset[str]
    diff_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """A compact JSON form for the cache."""
        return {
            "entries": [_row(n) for n in self.entries],
            "whiteouts": [[w.path, w.opaque] for w in self.whiteouts],
            "paths": sorted(self.paths),
            "diff_id": self.diff_id,
        }

    def json_chunks(self, batch: int = 4096) -> Iterator[str]:
        """The text of ``json.dumps(self.to_json(), separators=(",", ":"))`` in pieces of
        ``batch`` entries, so that a layer of many entries is written without its whole JSON
        form in memory at once."""
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        yield '{"entries":['
        for start in range(0, len(self.entries), batch):
            rows = [_row(n) for n in self.entries[start : start + batch]]
            yield ("," if start else "") + dumps(rows)[1:-1]
        yield '],"whiteouts":' + dumps([[w.path, w.opaque] for w in self.whiteouts])
        yield ',"paths":['
        paths = sorted(self.paths)
        for start in range(0, len(paths), batch):
            yield ("," if start else "") + dumps(paths[start : start + batch])[1:-1]
        yield '],"diff_id":' + dumps(self.diff_id) + "}"

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
            str(obj["diff_id"]),
        )


#: Entries one layer, or the merged image, may hold. sconify keeps an index of every path in
#: memory (about 0.75 KiB each), so this bounds a conversion's memory whatever the layer (a gzip
#: bomb of tar headers could hold hundreds of millions). Real images hold up to a few 100,000.
MAX_ENTRIES = 1_000_000
TOO_MANY_HINT = (
    f"sconify converts images of at most {MAX_ENTRIES:,} files and directories; remove files "
    "the application does not need, or split the image"
)

_UNREADABLE_HINT = "the blob is corrupt or not a layer; pull the image again"
_UNSUPPORTED_HINT = (
    "the layer was written with a tar feature sconify does not read (see the message); "
    "rebuild the image with docker, buildah or another standard layer writer"
)


def index_tar(tar: BinaryIO, name: str) -> LayerIndex:
    """Index the uncompressed layer tar read from ``tar``.

    ``name`` names the layer in errors.
    """
    additions: list[Node] = []
    whiteouts = []
    seen: set[str] = set()
    by_path: dict[str, Node] = {}
    scan = TarScanner(tar)
    count = 0
    try:
        while (entry := scan.next()) is not None:
            count += 1
            if count > MAX_ENTRIES:
                raise ImageError(
                    f"layer {name} holds more than {MAX_ENTRIES:,} entries", hint=TOO_MANY_HINT
                )
            path = clean_name(entry.name, layer=name)
            if path == "/":
                continue
            seen.add(path)
            wo = whiteout_of(path)
            if wo is not None:
                whiteouts.append(wo)
                continue
            node = _node_of(scan, entry, path, name, by_path)
            by_path[path] = node
            additions.append(node)
    except UnsupportedTar as err:
        raise ImageError(
            f"layer {name} is not a readable tar: {err}", hint=_UNSUPPORTED_HINT
        ) from err
    except (TarFormatError, EOFError, OSError) as err:
        raise ImageError(
            f"layer {name} is not a readable tar: {err}", hint=_UNREADABLE_HINT
        ) from err
    return LayerIndex(tuple(additions), tuple(whiteouts), frozenset(seen))


def index_blob(blob: BinaryIO, compression: Compression, name: str, digest: str) -> LayerIndex:
    """Index the layer blob read from ``blob`` (named ``digest``, closed at the end), in one pass
    that also checks its magic bytes against ``compression`` and records its diff_id.

    The diff_id of a plain tar is its blob's digest (verified by whoever stored or fetched the
    blob); a compressed one is hashed as it is inflated, to the end of the stream.
    """
    if compression is Compression.NONE:
        with open_checked(blob, compression, name) as stream:
            return replace(index_tar(stream, name), diff_id=digest)
    with DiffIdReader(checked(blob, compression, name), compression) as stream:
        index = index_tar(cast(BinaryIO, stream), name)
        try:
            diff_id = stream.finish()
        except OSError as err:
            raise ImageError(
                f"layer {name} is not a readable tar: {err}", hint=_UNREADABLE_HINT
            ) from err
    return replace(index, diff_id=str(diff_id))


def index_layer(layer: Layer, name: str) -> LayerIndex:
    """Index ``layer``'s tar (``name`` names it in errors), with its diff_id."""
    return index_blob(layer.open_blob(), layer.compression, name, str(layer.digest))


def _node_of(
    scan: TarScanner,
    entry: TarEntry,
    path: str,
    layer_name: str,
    earlier: dict[str, Node],
) -> Node:
    kind = entry.type
    mode = entry.mode & 0o7777
    if kind in REGULAR_TYPES:
        sha, elf = _digest_file(scan, entry.size)
        return Node(
            path, "file", mode, entry.uid, entry.gid, 0, entry.name, entry.size, "", sha, elf
        )
    if kind == DIRTYPE:
        return Node(path, "dir", mode, entry.uid, entry.gid, 0, entry.name)
    if kind == SYMTYPE:
        return Node(path, "symlink", mode, entry.uid, entry.gid, 0, entry.name, 0, entry.linkname)
    if kind == LNKTYPE:
        target = clean_name(entry.linkname, layer=layer_name)
        source = earlier.get(target)
        if source is None or source.kind != "file":
            raise UnsafeLayer(
                f"layer {layer_name}: hard link {path} points to {target}, which is not a file "
                "earlier in the same layer",
                hint="rebuild the image; hard links must point to a file in their own layer",
            )
        return Node(
            path,
            "file",
            mode,
            entry.uid,
            entry.gid,
            0,
            source.member,
            source.size,
            "",
            source.sha256,
            source.elf,
        )
    return Node(path, "other", mode, entry.uid, entry.gid, 0, entry.name)


def _digest_file(scan: TarScanner, size: int) -> tuple[str, ElfInfo | None]:
    """The sha256 of the current file, and what the loader needs of it if it is an ELF file.

    A small file is hashed in place and, when it starts like an ELF file, parsed from memory;
    a large one streams through the hash and an :class:`ElfCapture` (bounded memory).
    """
    if size <= _ELF_IN_MEMORY:
        sha, data = scan.digest_data(ELF_MAGIC, _ELF_IN_MEMORY)
        elf = None
        if data is not None:
            with contextlib.suppress(NotElf):
                elf = parse_elf(data)
        return sha, elf
    digest = hashlib.sha256()
    if size > _ELF_PARSE_LIMIT:
        for piece in scan.data_chunks():
            digest.update(piece)
        return digest.hexdigest(), None
    capture = ElfCapture(size)
    try:
        for piece in scan.data_chunks():
            digest.update(piece)
            capture.feed(piece)
        return digest.hexdigest(), capture.finish()
    finally:
        capture.close()
