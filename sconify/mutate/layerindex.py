"""What one layer holds, read in one streaming pass over its tar: the unit the layer-index
cache keeps (by ``diff_id``) and :mod:`sconify.mutate.fsview` merges.

For each entry: its metadata and where its bytes are (tar member); for regular files the sha256
and, for ELF files, what the loader needs. Nothing is extracted to disk and no file is held whole
in memory except ELF files, which are parsed (libraries are small; huge ones are hashed but not
parsed). The tar stream itself is hashed on the way, so an index is only ever recorded under the
``diff_id`` its bytes really have.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from sconify.elf import ELF_MAGIC, ElfInfo, NotElf, parse_elf
from sconify.errors import ImageError, UnsafeLayer
from sconify.image import Digest, Layer
from sconify.mutate.tarpaths import Whiteout, clean_hardlink_target, clean_name, whiteout_of

_ELF_PARSE_LIMIT = 512 * 1024 * 1024
_READ = 1 << 20


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


class _HashingReader:
    """Reads through to ``inner`` and hashes every byte handed out (the layer's diff_id)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> Digest:
        """Hash what the tar reader left unread (padding after the end marker); the digest."""
        while self.read(_READ):
            pass
        return Digest.from_hex(self.hash.hexdigest())


def index_tar(tar: BinaryIO, name: str) -> tuple[LayerIndex, Digest]:
    """Index the uncompressed layer tar read from ``tar``; also return its sha256 (diff_id).

    ``name`` names the layer in errors.
    """
    additions: list[Node] = []
    whiteouts = []
    seen: set[str] = set()
    by_member: dict[str, Node] = {}
    reader = _HashingReader(tar)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as stream:  # type: ignore[call-overload]
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
        diff_id = reader.drain()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ImageError(
            f"layer {name} is not a readable tar: {err}",
            hint="the blob is corrupt or not a layer; pull the image again",
        ) from err
    return LayerIndex(tuple(additions), tuple(whiteouts), frozenset(seen)), diff_id


def index_layer(layer: Layer, name: str) -> LayerIndex:
    """Index ``layer``'s tar, checking that it is the tar the image config names (diff_id)."""
    with layer.open_tar() as raw:
        index, diff_id = index_tar(raw, name)
    check_diff_id(diff_id, layer.diff_id, name)
    return index


def check_diff_id(found: Digest, expected: Digest, name: str) -> None:
    """Refuse a layer whose uncompressed tar is not the one the image config lists."""
    if found != expected:
        raise ImageError(
            f"layer {name}: its uncompressed tar hashes to {found}, but the image config "
            f"lists {expected}",
            hint="the image is corrupt or was tampered with; rebuild or pull it again",
        )


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
