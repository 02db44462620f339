"""Images in tar archives: ``docker-archive:`` (``docker save`` form) and ``oci-archive:``.

Reading streams the tar once: every blob goes straight into the blob store and only the small
JSON documents are kept in memory, so the entry order does not matter. Both ``docker save``
layouts are understood: the legacy one (``<id>/layer.tar``, Docker up to 24) and the OCI layout
inside the tar (Docker 25+). Writing streams the archive into a temporary file beside the
destination and renames it into place, so the archive is complete or absent.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sconify.errors import ImageError, ImageNotFound
from sconify.image import mediatypes as mt
from sconify.image.blobstore import BlobStore
from sconify.image.config import ImageConfig
from sconify.image.descriptor import Descriptor, Platform
from sconify.image.digest import Digest
from sconify.image.image import MAX_DOCUMENT_BYTES, Image
from sconify.image.index import Index
from sconify.image.jsondoc import load_document
from sconify.image.layer import Compression, Layer, diff_id_of, open_decompressed
from sconify.transports import layout
from sconify.transports._tarstream import Member, normalize, resolve_link, tar_chunks
from sconify.transports.refs import DockerArchiveRef, OciArchiveRef, RegistryRef

_DOCUMENTS = {"manifest.json", "index.json", "repositories", "oci-layout"}


class _Contents:
    """What one pass over an archive found: stored blobs, small documents and links."""

    def __init__(self, store: BlobStore, source: str) -> None:
        self.store = store
        self.source = source
        self.blobs: dict[str, Digest] = {}
        self.documents: dict[str, bytes] = {}
        self.links: dict[str, str] = {}

    def resolve(self, name: str) -> str:
        name = normalize(name)
        for _ in range(16):
            if name not in self.links:
                return name
            name = self.links[name]
        raise ImageError(f"{self.source}: link loop at {name}", hint="the archive is corrupt")

    def document(self, name: str) -> bytes:
        name = self.resolve(name)
        if name in self.documents:
            return self.documents[name]
        if name in self.blobs:
            with self.store.open(self.blobs[name]) as f:
                return f.read(MAX_DOCUMENT_BYTES)
        raise ImageNotFound(f"{self.source} lacks {name}", hint="the archive is incomplete")

    def blob(self, name: str) -> Digest:
        name = self.resolve(name)
        if name not in self.blobs:
            raise ImageNotFound(f"{self.source} lacks {name}", hint="the archive is incomplete")
        return self.blobs[name]


def _is_document(name: str) -> bool:
    base = posixpath.basename(name)
    return (
        name in _DOCUMENTS
        or base in ("json", "VERSION")
        or ("/" not in name and name.endswith(".json"))
    )


def _scan(stream: BinaryIO, store: BlobStore, source: str) -> _Contents:
    out = _Contents(store, source)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = normalize(member.name)
                if member.issym() or member.islnk():
                    out.links[name] = resolve_link(member)
                    continue
                if not member.isfile():
                    continue
                f = tar.extractfile(member)
                assert f is not None
                if _is_document(name) and member.size <= MAX_DOCUMENT_BYTES:
                    out.documents[name] = f.read()
                    continue
                expected = None
                if name.startswith("blobs/sha256/"):
                    expected = Digest.from_hex(name.rsplit("/", 1)[1])
                digest, _ = store.put_stream(f, expected, member.size, source=f"{source}: {name}")
                out.blobs[name] = digest
    except (tarfile.TarError, EOFError) as e:
        raise ImageError(
            f"{source} is not a readable tar archive: {e}", hint="the archive is truncated"
        ) from e
    return out


def read_docker_archive_stream(
    stream: BinaryIO, store: BlobStore, *, name: RegistryRef | None = None, source: str
) -> Image:
    """Read a ``docker save`` tar from ``stream`` into ``store``; ``name`` picks an image."""
    contents = _scan(stream, store, source)
    entries = _archive_manifest(contents.document("manifest.json"), source)
    entry = _pick_entry(entries, name, source)
    config_bytes = contents.document(entry["Config"])
    config = ImageConfig.from_bytes(config_bytes)
    diff_ids = config.diff_ids
    paths = entry.get("Layers") or []
    if len(paths) != len(diff_ids):
        raise ImageError(
            f"{source}: {len(paths)} layers for {len(diff_ids)} diff_ids in the config",
            hint="the archive is corrupt",
        )
    layers = []
    for position, (path, diff_id) in enumerate(zip(paths, diff_ids, strict=True)):
        try:
            digest = contents.blob(path)
        except ImageNotFound:
            raise ImageNotFound(
                f"{source} lacks {path}, layer {position} (diff_id {diff_id})",
                hint="the archive is incomplete; save the image again (docker save)",
            ) from None
        blob = store.path(digest)
        compression = Compression.sniff(blob)
        actual = digest if compression is Compression.NONE else diff_id_of(blob, compression)
        if actual != diff_id:
            raise ImageError(
                f"{source}: layer {path} has diff_id {actual}, the config says {diff_id}",
                hint="the archive is corrupt",
            )
        desc = Descriptor(compression.oci_media_type(), digest, store.size(digest))
        layers.append(Layer(desc, diff_id, blob))
    return Image(config, tuple(layers), mt.OCI_MANIFEST, raw_config=config_bytes)


def _archive_manifest(raw: bytes, source: str) -> list[dict[str, Any]]:
    """The entries of a ``docker save`` manifest.json, each with a Config and its Layers."""
    hint = "the archive is corrupt; save the image again (docker save)"
    entries = load_document(raw, f"{source}: manifest.json", hint=hint)
    if not isinstance(entries, list):
        raise ImageError(f"{source}: manifest.json is not a list of images", hint=hint)
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("Config"), str)
            or not isinstance(entry.get("Layers") or [], list)
            or not all(isinstance(p, str) for p in entry.get("Layers") or [])
            or not isinstance(entry.get("RepoTags") or [], list)
            or not all(isinstance(t, str) for t in entry.get("RepoTags") or [])
        ):
            raise ImageError(
                f"{source}: manifest.json has an entry without a Config and a list of Layers",
                hint=hint,
            )
    return entries


def _pick_entry(
    entries: list[dict[str, Any]], name: RegistryRef | None, source: str
) -> dict[str, Any]:
    if name is not None:
        wanted = {name.familiar(), f"{name.name}:{name.tag}"}
        for e in entries:
            if wanted & set(e.get("RepoTags") or ()):
                return e
        raise ImageNotFound(
            f"{source} has no image named {name.familiar()}",
            hint=f"names present: {', '.join(_names(entries)) or 'none'}",
        )
    if len(entries) != 1:
        raise ImageError(
            f"{source} holds {len(entries)} images",
            hint=f"name one (names present: {', '.join(_names(entries)) or 'none'})",
        )
    return entries[0]


def _names(entries: Iterable[dict[str, Any]]) -> list[str]:
    return [t for e in entries for t in e.get("RepoTags") or ()]


def docker_archive_chunks(
    image: Image, repo_tags: Iterable[str] = (), *, uncompressed: bool = False
) -> Iterator[bytes]:
    """Yield a ``docker save`` (legacy layout) tar of ``image``, chunk by chunk.

    gzip layers go in as they are (``docker load`` decompresses them) unless ``uncompressed``;
    zstd layers are always decompressed, in a counting pass and a writing pass.
    """
    members: list[Member] = []
    paths: list[str] = []
    seen: set[Digest] = set()
    for layer in image.layers:
        path = f"{layer.diff_id.hex}/layer.tar"
        paths.append(path)
        if layer.diff_id in seen:
            continue
        seen.add(layer.diff_id)
        if layer.compression is Compression.NONE or (
            layer.compression is Compression.GZIP and not uncompressed
        ):
            members.append(Member(path, layer.size, layer.open_blob))
        else:
            members.append(Member(path, _tar_size(layer), layer.open_tar))
    config = image.config_bytes()
    config_name = f"{Digest.of(config).hex}.json"
    manifest = [{"Config": config_name, "RepoTags": list(repo_tags) or None, "Layers": paths}]
    members.append(Member.of_bytes(config_name, config))
    members.append(Member.of_bytes("manifest.json", json.dumps(manifest).encode()))
    return tar_chunks(members)


def _tar_size(layer: Layer) -> int:
    size = 0
    with open_decompressed(layer.path, layer.compression) as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
    return size


def oci_archive_chunks(image: Image, tag: str | None) -> Iterator[bytes]:
    """Yield an ``oci-archive`` tar (an OCI layout) of ``image``, chunk by chunk."""
    entry = layout.index_entry(image, tag)
    members = [
        Member.of_bytes(layout.LAYOUT_FILE, layout.LAYOUT_CONTENT),
        Member.of_bytes("index.json", layout.index_bytes([entry])),
    ]
    seen: set[Digest] = set()
    for layer in image.layers:
        if layer.digest not in seen:
            seen.add(layer.digest)
            members.append(Member(f"blobs/sha256/{layer.digest.hex}", layer.size, layer.open_blob))
    for data in (image.config_bytes(), image.manifest_bytes()):
        members.append(Member.of_bytes(f"blobs/sha256/{Digest.of(data).hex}", data))
    return tar_chunks(members)


def _write_atomic(dest: Path, chunks: Iterator[bytes]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read(
    ref: DockerArchiveRef | OciArchiveRef, store: BlobStore, *, platform: Platform | None = None
) -> Image:
    """Read the image an archive reference names into ``store``."""
    if not Path(ref.path).is_file():
        raise ImageNotFound(f"{ref.path} does not exist", hint="check the archive path")
    with Path(ref.path).open("rb") as f:
        if isinstance(ref, DockerArchiveRef):
            return read_docker_archive_stream(f, store, name=ref.name, source=str(ref))
        contents = _scan(f, store, str(ref))

    def fetch(digest: Digest) -> bytes:
        return contents.document(f"blobs/sha256/{digest.hex}")

    def ensure(desc: Descriptor) -> Path:
        try:
            return store.path(contents.blob(f"blobs/sha256/{desc.digest.hex}"))
        except ImageNotFound:
            raise ImageNotFound(
                f"blob {desc.digest} is missing from {ref}",
                hint="the archive is incomplete; write the image into it again",
            ) from None

    index = Index.from_bytes(contents.document("index.json"))
    manifest = layout.select(index, ref.tag, platform, fetch, str(ref))
    return Image.assemble(manifest, fetch(layout.config_digest(manifest)), ensure)


def write(image: Image, ref: DockerArchiveRef | OciArchiveRef) -> Digest:
    """Write ``image`` as the archive ``ref`` names (replacing any file there); return its digest.

    A docker-archive's digest is the image id (config digest), an oci-archive's the manifest's.
    """
    image.validate()
    if isinstance(ref, DockerArchiveRef):
        tags = [ref.name.familiar()] if ref.name is not None else []
        _write_atomic(Path(ref.path), docker_archive_chunks(image, tags, uncompressed=True))
        return image.config_descriptor().digest
    _write_atomic(Path(ref.path), oci_archive_chunks(image, ref.tag))
    return image.digest()
