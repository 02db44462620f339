"""Images in an OCI image layout directory (``oci:DIR[:tag]``).

Reading copies the blobs into the blob store, verified. Writing is atomic: a new layout is
built beside its destination and renamed into place; an existing layout gets its blobs first and
its ``index.json`` replaced last, so a reader sees the old or the new index, never a half one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from sconify.canonical import compact_json
from sconify.errors import ImageError, ImageNotFound
from sconify.image import mediatypes as mt
from sconify.image.blobstore import BlobStore
from sconify.image.descriptor import Descriptor, Platform
from sconify.image.digest import Digest
from sconify.image.image import MAX_DOCUMENT_BYTES, Image, config_of, parse_manifest
from sconify.image.index import Index
from sconify.transports.refs import LayoutRef

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = "oci-layout"
LAYOUT_CONTENT = b'{"imageLayoutVersion":"1.0.0"}'


def select(
    index: Index,
    tag: str | None,
    platform: Platform | None,
    fetch: Callable[[Digest], bytes],
    where: str,
) -> bytes:
    """Return the bytes of the image manifest that ``tag`` (or the single entry) names.

    A nested index picks ``platform``. ``fetch`` returns verified small blobs by digest.
    """
    entries = index.manifests
    if tag is not None:
        entries = tuple(d for d in entries if (d.annotations or {}).get(REF_NAME) == tag)
        if not entries:
            raise ImageNotFound(
                f"{where} has no image tagged {tag!r}",
                hint=f"tags present: {_tags(index.manifests)}",
            )
    if len(entries) != 1:
        if tag is None and entries:
            raise ImageError(
                f"{where} holds {len(entries)} images",
                hint=f"name one with :tag (tags present: {_tags(entries)})",
            )
        if not entries:
            raise ImageNotFound(f"{where} holds no image", hint="write an image into it first")
        # Several entries with the same tag: an index of platforms written flat.
        entries = (Index(entries).pick(platform),)
    entry = entries[0]
    data = fetch(entry.digest)
    if mt.is_index(entry.media_type):
        child = Index.from_bytes(data).pick(platform)
        data = fetch(child.digest)
    return data


def _read_blob(root: Path, digest: Digest, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    path = root / "blobs" / "sha256" / digest.hex
    try:
        if path.stat().st_size > limit:
            raise ImageError(f"{path} is larger than {limit} bytes", hint="the layout is corrupt")
        data = path.read_bytes()
    except OSError as e:
        raise _missing(root, digest, e) from e
    if Digest.of(data) != digest:
        raise ImageError(
            f"blob {path} hashes to {Digest.of(data)}, not {digest}",
            hint="the layout is corrupt; write the image again",
        )
    return data


def _missing(root: Path, digest: Digest, err: OSError) -> ImageError:
    if isinstance(err, FileNotFoundError):
        return ImageNotFound(
            f"blob {digest} is missing from the layout {root}",
            hint="the layout is incomplete (copied without its blobs?); write the image "
            "into it again, e.g. with skopeo copy or sconify image copy",
        )
    return ImageError(
        f"blob {digest} of the layout {root} cannot be read: {err.strerror}",
        hint="check the layout's files and their permissions",
    )


def read(ref: LayoutRef, store: BlobStore, *, platform: Platform | None = None) -> Image:
    """Read the image ``ref`` names from an OCI layout into ``store``."""
    root = Path(ref.path)
    try:
        index_bytes = (root / "index.json").read_bytes()
    except FileNotFoundError as e:
        raise ImageNotFound(
            f"{root} is not an OCI layout (no index.json)",
            hint="give the directory an image was written to with oci:DIR",
        ) from e
    except OSError as e:
        raise ImageError(
            f"{root}/index.json cannot be read: {e.strerror}",
            hint="give the directory an image was written to with oci:DIR",
        ) from e

    def fetch(digest: Digest) -> bytes:
        return _read_blob(root, digest)

    def ensure(desc: Descriptor) -> Path:
        if not store.has(desc.digest):
            try:
                store.put_file(root / "blobs" / "sha256" / desc.digest.hex, desc.digest, desc.size)
            except OSError as e:
                raise _missing(root, desc.digest, e) from e
        return store.path(desc.digest)

    manifest = select(Index.from_bytes(index_bytes), ref.tag, platform, fetch, str(ref))
    return Image.assemble(manifest, fetch(config_digest(manifest)), ensure)


def _tags(entries: Iterable[Descriptor]) -> str:
    tags = sorted({(d.annotations or {}).get(REF_NAME, "") for d in entries} - {""})
    return ", ".join(tags) or "none"


def config_digest(manifest_bytes: bytes) -> Digest:
    """The digest of the config an image manifest names."""
    return config_of(parse_manifest(manifest_bytes)).digest


def index_entry(image: Image, tag: str | None) -> Descriptor:
    """The ``index.json`` descriptor of ``image`` (with its tag as ``ref.name``)."""
    data = image.manifest_bytes()
    return Descriptor(
        image.manifest_media_type,
        Digest.of(data),
        len(data),
        annotations={REF_NAME: tag} if tag else None,
    )


def index_bytes(entries: list[Descriptor]) -> bytes:
    """Serialize an OCI index of ``entries``."""
    return compact_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [e.to_json() for e in entries],
        }
    )


def _put(dest: Path, content: Path | bytes, *, replace: bool = False) -> None:
    """Write ``dest`` from a file or bytes atomically (temp file, rename).

    Content-addressed files that exist already are left alone unless ``replace``.
    """
    if dest.exists() and not replace:
        return
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    os.close(fd)
    try:
        if isinstance(content, bytes):
            Path(tmp).write_bytes(content)
        else:
            shutil.copyfile(content, tmp)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_blobs(image: Image, root: Path) -> None:
    """Write the image's layers, config and manifest into ``root/blobs/sha256``."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for layer in image.layers:
        _put(blobs / layer.digest.hex, layer.path)
    config = image.config_bytes()
    _put(blobs / Digest.of(config).hex, config)
    manifest = image.manifest_bytes()
    _put(blobs / Digest.of(manifest).hex, manifest)


def write(image: Image, ref: LayoutRef) -> Digest:
    """Write ``image`` into the layout at ``ref.path`` (created if absent); return its digest."""
    image.validate()
    root = Path(ref.path)
    entry = index_entry(image, ref.tag)
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
        try:
            write_blobs(image, tmp)
            (tmp / LAYOUT_FILE).write_bytes(LAYOUT_CONTENT)
            (tmp / "index.json").write_bytes(index_bytes([entry]))
            os.rename(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return entry.digest
    if not (root / LAYOUT_FILE).is_file():
        if any(root.iterdir()):
            raise ImageError(
                f"{root} exists and is not an OCI layout",
                hint="give an empty or new directory, or an existing layout",
            )
        (root / LAYOUT_FILE).write_bytes(LAYOUT_CONTENT)
    write_blobs(image, root)
    entries: list[Descriptor] = []
    index_path = root / "index.json"
    if index_path.exists():
        entries = list(Index.from_bytes(index_path.read_bytes()).manifests)
    if ref.tag:
        entries = [e for e in entries if (e.annotations or {}).get(REF_NAME) != ref.tag]
    entries = [e for e in entries if e.digest != entry.digest or e.annotations] + [entry]
    _put(index_path, index_bytes(entries), replace=True)
    return entry.digest


def describe(root: Path) -> list[dict[str, str]]:
    """List a layout's entries as ``{"digest", "mediaType", "tag"}`` (for inspect commands)."""
    index = Index.from_bytes((Path(root) / "index.json").read_bytes())
    return [
        {
            "digest": str(d.digest),
            "mediaType": d.media_type,
            "tag": (d.annotations or {}).get(REF_NAME, ""),
        }
        for d in index.manifests
    ]
