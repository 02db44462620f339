"""Layers: a blob (maybe compressed) plus the ``diff_id`` of the tar inside it."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

import zstandard
from isal import igzip, igzip_threaded, isal_zlib

from sconify.errors import ImageError
from sconify.image import mediatypes as mt
from sconify.image.blobstore import CHUNK, BlobStore
from sconify.image.descriptor import Descriptor
from sconify.image.digest import Digest

# The magic numbers the engines sniff (moby's DetectCompression, containerd's): gzip with the
# deflate method byte, a zstd frame or a zstd skippable frame (magic 0x184D2A5? little-endian),
# and the two moby also reads, bzip2 and xz.
GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_SKIPPABLE = (0x184D2A50, 0xFFFFFFF0)
#: Bytes enough to tell every format above apart.
HEAD_BYTES = 8

DEFAULT_GZIP_LEVEL = 2  # ISA-L's scale, 0 to 3
DEFAULT_ZSTD_LEVEL = 3


def sniff_format(head: bytes) -> str:
    """Name the compression of a blob from its first :data:`HEAD_BYTES` bytes as the container
    engines do: ``gzip``, ``zstd``, ``bzip2``, ``xz``, or ``none`` (a plain tar)."""
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    start, mask = _ZSTD_SKIPPABLE
    if len(head) >= 8 and int.from_bytes(head[:4], "little") & mask == start:
        return "zstd"
    return "none"


class Compression(enum.Enum):
    """How a layer blob wraps its tar."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"

    @classmethod
    def from_media_type(cls, media_type: str) -> Compression:
        """Return the compression a layer media type declares."""
        bare = media_type.split(";", 1)[0].strip()
        if bare in mt.LAYER_GZIP_TYPES:
            return cls.GZIP
        if bare in mt.LAYER_ZSTD_TYPES:
            return cls.ZSTD
        if bare in mt.LAYER_TAR_TYPES:
            return cls.NONE
        raise ImageError(
            f"unsupported layer media type {media_type!r}",
            hint="sconify reads tar, tar+gzip and tar+zstd layers (encrypted layers are not read)",
        )

    @classmethod
    def detect(cls, head: bytes) -> Compression:
        """The compression of a blob from its first bytes, as the engines sniff it; bzip2 and
        xz (which moby would read) raise :class:`ImageError`."""
        found = sniff_format(head)
        if found in ("bzip2", "xz"):
            raise ImageError(
                f"a layer is {found}-compressed",
                hint="sconify reads plain, gzip and zstd layers; recompress the layer with gzip",
            )
        return cls(found)

    @classmethod
    def sniff(cls, path: Path) -> Compression:
        """Detect the compression of the file at ``path`` from its magic bytes."""
        with Path(path).open("rb") as f:
            return cls.detect(f.read(HEAD_BYTES))

    def oci_media_type(self) -> str:
        """The OCI layer media type for this compression."""
        return {
            Compression.NONE: mt.OCI_LAYER,
            Compression.GZIP: mt.OCI_LAYER_GZIP,
            Compression.ZSTD: mt.OCI_LAYER_ZSTD,
        }[self]


def check_magic(head: bytes, declared: Compression, name: str) -> None:
    """Refuse a layer whose first bytes (``head``) are not what its media type declares.

    The engines pick the decompressor from the bytes and never look at the media type, so a
    blob declared a plain tar that is also valid gzip (or the reverse) is one tree to them and
    another to a reader that trusts the media type: such a layer is refused (``name`` names it).
    """
    found = sniff_format(head)
    if found != declared.value:
        raise ImageError(
            f"layer {name} is declared {_AS_WORDS[declared.value]} but its bytes are "
            f"{_AS_WORDS[found]}",
            hint="container engines go by the bytes and would read another tree; fix the "
            "layer's media type in the manifest, or rebuild the image",
        )


_AS_WORDS = {
    "none": "a plain tar",
    "gzip": "gzip-compressed",
    "zstd": "zstd-compressed",
    "bzip2": "bzip2-compressed",
    "xz": "xz-compressed",
}


def open_checked(raw: BinaryIO, declared: Compression, name: str) -> BinaryIO:
    """The decompressed stream of the blob ``raw`` after :func:`check_magic` (``raw`` is closed
    when the result is, or when the check fails)."""
    return decompressing(checked(raw, declared, name), declared)


def checked(raw: BinaryIO, declared: Compression, name: str) -> BinaryIO:
    """The blob ``raw`` itself, from its start, after :func:`check_magic`; ``raw`` is closed
    when the check fails."""
    try:
        head = _read_head(raw)
        check_magic(head, declared, name)
    except BaseException:
        raw.close()
        raise
    if raw.seekable():
        raw.seek(0)
        return raw
    return cast(BinaryIO, io.BufferedReader(_Prefixed(head, raw), CHUNK))


def _read_head(raw: BinaryIO) -> bytes:
    head = b""
    while len(head) < HEAD_BYTES:
        piece = raw.read(HEAD_BYTES - len(head))
        if not piece:
            break
        head += piece
    return head


class _Prefixed(io.RawIOBase):
    """``head`` (already read from ``raw``), then the rest of ``raw``; closing closes ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = memoryview(head)
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return int(self._raw.readinto(buffer))  # type: ignore[attr-defined]

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class DiffIdReader:
    """The uncompressed stream of a compressed layer blob, inflated and hashed (the diff_id) on
    a thread of its own, beside the tar reader that consumes it.

    Inflating and hashing both release the GIL: the inflating thread only inflates, and the
    reader's thread hashes each chunk as it takes it (beside parsing the tar), so neither
    thread carries both costs.
    :meth:`finish` reads whatever the tar reader left (the end-of-archive blocks and anything
    after them, which the engines hash too) and returns the digest of the whole stream. Corrupt
    data raises ``OSError`` from :meth:`read` or :meth:`finish`. Use as a context manager, or
    call :meth:`close`, which also closes ``raw``.
    """

    def __init__(self, raw: BinaryIO, compression: Compression) -> None:
        if compression is Compression.NONE:
            raise ValueError("a plain tar's diff_id is its blob's digest")
        self._raw = raw
        self._source: Any = (
            igzip.IGzipFile(fileobj=raw, mode="rb")
            if compression is Compression.GZIP
            else zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        )
        self._hash = hashlib.sha256()
        self._chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUE_CHUNKS)
        self._pending = memoryview(b"")
        self._ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inflate+diff_id", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._source.read(CHUNK)
                if not chunk:
                    break
                self._chunks.put(chunk)
            self._chunks.put(None)
        except (OSError, EOFError, _ISAL_ERROR, zstandard.ZstdError) as err:
            self._chunks.put(OSError(f"corrupt compressed data: {err}"))

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the stream (all of the rest with a negative size)."""
        if size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        while not self._pending:
            if self._ended:
                return b""
            item = self._chunks.get()
            if item is None:
                self._ended = True
                return b""
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            # hashed here, on the reader's thread: inflating alone keeps the other thread busy
            self._hash.update(item)
            if len(item) <= size:
                return item  # the usual case: one whole chunk, no copy
            self._pending = memoryview(item)
        data = bytes(self._pending[:size])
        self._pending = self._pending[size:]
        return data

    def finish(self) -> Digest:
        """Read the rest of the stream; the sha256 of all of it."""
        while self.read(CHUNK):
            pass
        self._thread.join()
        return Digest.from_hex(self._hash.hexdigest())

    def close(self) -> None:
        """Stop inflating and close the blob."""
        self._stop.set()
        while self._thread.is_alive():  # let a waiting put() through
            with contextlib.suppress(queue.Empty):
                self._chunks.get(timeout=0.05)
        self._source.close()
        self._raw.close()

    def __enter__(self) -> DiffIdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_QUEUE_CHUNKS = 8


def open_decompressed(path: Path, compression: Compression) -> BinaryIO:
    """Open ``path`` and return a stream of its decompressed bytes, refusing a blob whose
    bytes are not ``compression`` (:func:`check_magic`)."""
    return open_checked(Path(path).open("rb"), compression, str(path))


def decompressing(raw: BinaryIO, compression: Compression) -> BinaryIO:
    """A stream of the decompressed bytes of ``raw``; closing it closes ``raw``. Corrupt data
    raises ``OSError`` whatever the decompressor (as zlib's gzip module does).

    gzip is inflated by ISA-L in a thread of its own, about twice as fast as zlib and beside
    the caller's work (tar parsing, hashing) on another core.
    """
    if compression is Compression.GZIP:
        inflating = igzip_threaded.open(raw, "rb", threads=1)
        return cast(BinaryIO, io.BufferedReader(_Reraising(inflating, raw, _ISAL_ERROR), CHUNK))
    if compression is Compression.NONE:
        return raw
    # Layers made by pzstd, zstd --threads or zstd:chunked have several frames.
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
    return cast(BinaryIO, io.BufferedReader(_Reraising(reader, raw, zstandard.ZstdError), CHUNK))


_ISAL_ERROR = cast(type[Exception], isal_zlib.error)


class _Reraising(io.RawIOBase):
    """Reads ``inner``, turning its decompressor's own exception into ``OSError``; closing it
    closes ``inner`` and the compressed stream ``raw``."""

    def __init__(self, inner: Any, raw: BinaryIO, error: type[Exception]) -> None:
        self._inner = inner
        self._raw = raw
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._inner.readinto(buffer))
        except self._error as err:
            raise OSError(f"corrupt compressed data: {err}") from None

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._raw.close()
            super().close()


@dataclass(frozen=True)
class Layer:
    """A layer: its descriptor, the digest of its uncompressed tar, and the blob file.

    ``path`` holds the blob bytes exactly as ``descriptor`` describes them (compressed if the
    media type says so); ``diff_id`` is the sha256 of the uncompressed tar.
    """

    descriptor: Descriptor
    diff_id: Digest
    path: Path

    @property
    def digest(self) -> Digest:
        """The digest of the blob (as in the manifest)."""
        return self.descriptor.digest

    @property
    def size(self) -> int:
        """The size of the blob in bytes."""
        return self.descriptor.size

    @property
    def media_type(self) -> str:
        """The layer's media type."""
        return self.descriptor.media_type

    @property
    def compression(self) -> Compression:
        """How the blob wraps the tar, from the media type."""
        return Compression.from_media_type(self.descriptor.media_type)

    def open_blob(self) -> BinaryIO:
        """Open the blob bytes (as pushed to a registry)."""
        return Path(self.path).open("rb")

    def open_tar(self) -> BinaryIO:
        """Open a stream of the uncompressed tar (for ``tarfile.open(mode="r|")``); a blob whose
        bytes are not what the media type declares is refused (:func:`check_magic`)."""
        return open_checked(self.open_blob(), self.compression, str(self.digest))

    def with_descriptor(self, descriptor: Descriptor) -> Layer:
        """Return the same blob described differently (e.g. a Docker type renamed to OCI)."""
        return Layer(descriptor, self.diff_id, self.path)


class LayerSink(io.RawIOBase):
    """Write a layer's uncompressed tar here; it lands in ``store`` compressed, as a layer.

    One streaming pass: the diff_id is the hash of the bytes written, the digest the hash of
    the compressed bytes stored. gzip is written by ISA-L (levels 0-3; 15 times faster than
    zlib's default level for about 10% more bytes) and is deterministic (no name, mtime 0) for
    a given level and ISA-L. Call :meth:`finish` for the layer; leaving it unfinished (or
    :meth:`abort`) keeps nothing.
    """

    def __init__(
        self,
        store: BlobStore,
        compression: Compression = Compression.GZIP,
        level: int | None = None,
        *,
        annotations: dict[str, str] | None = None,
        source: str = "layer",
    ) -> None:
        self._compression = compression
        self._annotations = annotations
        self._blob = store.writer(source)
        self._store = store
        self._diff = hashlib.sha256()
        self._written = 0
        self._pending = bytearray()
        self._out: Any
        if compression is Compression.GZIP:
            gz_level = DEFAULT_GZIP_LEVEL if level is None else level
            self._out = igzip.IGzipFile(
                filename="", mode="wb", compresslevel=gz_level, fileobj=self._blob, mtime=0
            )
        elif compression is Compression.ZSTD:
            zstd_level = DEFAULT_ZSTD_LEVEL if level is None else level
            compressor = zstandard.ZstdCompressor(level=zstd_level)
            self._out = compressor.stream_writer(cast(BinaryIO, self._blob), closefd=False)
        else:
            self._out = self._blob

    def writable(self) -> bool:
        """A sink: always."""
        return True

    def write(self, data: Any) -> int:
        """Append uncompressed tar bytes."""
        view = memoryview(data).cast("B")
        size = len(view)
        self._diff.update(view)
        self._written += size
        # The compressor sees CHUNK-sized pieces whatever the caller writes (tarfile writes
        # 512-byte blocks): gzip's bytes then depend only on the tar, not on how it came.
        if self._pending:
            take = min(size, CHUNK - len(self._pending))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < CHUNK:
                return size
            self._out.write(bytes(self._pending))
            self._pending.clear()
        whole = len(view) - len(view) % CHUNK
        for start in range(0, whole, CHUNK):
            self._out.write(view[start : start + CHUNK])
        self._pending += view[whole:]
        return size

    def tell(self) -> int:
        """Uncompressed bytes written so far (``tarfile`` asks)."""
        return self._written

    def finish(self) -> Layer:
        """Flush the compressor, verify and store the blob; the layer."""
        if self._pending:
            self._out.write(bytes(self._pending))
            self._pending.clear()
        if self._out is not self._blob:
            self._out.close()
        digest, size = self._blob.commit()
        descriptor = Descriptor(
            self._compression.oci_media_type(),
            digest,
            size,
            annotations=self._annotations or None,
        )
        return Layer(descriptor, Digest.from_hex(self._diff.hexdigest()), self._store.path(digest))

    def abort(self) -> None:
        """Keep nothing."""
        self._blob.abort()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()
        super().__exit__(exc_type, exc, tb)


def layer_from_tar(
    tar_path: Path,
    store: BlobStore,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    *,
    annotations: dict[str, str] | None = None,
) -> Layer:
    """Compress a plain tar file into ``store`` as a layer, in one streaming pass."""
    with (
        Path(tar_path).open("rb") as src,
        LayerSink(store, compression, level, annotations=annotations, source=str(tar_path)) as sink,
    ):
        while chunk := src.read(CHUNK):
            sink.write(chunk)
        return sink.finish()


def layer_from_blob(
    descriptor: Descriptor, store: BlobStore, diff_id: Digest | None = None
) -> Layer:
    """Return the layer for a blob already in ``store``; compute ``diff_id`` when not given."""
    path = store.path(descriptor.digest)
    if not path.is_file():
        store.open(descriptor.digest).close()  # raises ImageNotFound with a hint
    if diff_id is None:
        diff_id = diff_id_of(path, Compression.from_media_type(descriptor.media_type))
    return Layer(descriptor, diff_id, path)


def diff_id_of(path: Path, compression: Compression) -> Digest:
    """Return the sha256 of the tar inside the blob at ``path`` (decompressing as it streams)."""
    h = hashlib.sha256()
    try:
        with open_decompressed(path, compression) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except (OSError, EOFError, zstandard.ZstdError) as e:
        raise ImageError(
            f"cannot decompress layer blob {path} as {compression.value}: {e}",
            hint="the blob is corrupt or its media type does not match its content",
        ) from e
    return Digest.from_hex(h.hexdigest())
