"""Layer indexes made while the layers download, so that a conversion reads each layer once.

Pulling a layer and indexing it are both a pass over the same bytes; done one after the other,
a conversion waits for the network and then for the inflate. :class:`PrefetchingIndexes` hands
a pull one tap per layer (:meth:`~PrefetchingIndexes.tap`); each tap indexes its layer on a
thread of its own while the bytes arrive, and the same object then answers the scan as an
:class:`~sconify.mutate.fsview.IndexCache`.

An index made this way is used only when the blob arrived whole and verified against its digest;
anything else (a failed or restarted download, a corrupt or hostile layer) leaves no index, and
the scan reads the layer from the store as it would without prefetching, reporting whatever is
wrong with it.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from typing import Any, BinaryIO, cast

from sconify.errors import ImageError
from sconify.image import BlobTap, Compression, Descriptor
from sconify.mutate.fsview import IndexCache
from sconify.mutate.layerindex import LayerIndex, index_blob

log = logging.getLogger(__name__)

#: Chunks (of about 1 MiB) a tap holds before the download waits for the indexer.
QUEUE_CHUNKS = 8


class _Arriving(io.RawIOBase):
    """The bytes put into ``chunks`` as a readable stream; ``None`` ends it."""

    def __init__(self, chunks: queue.Queue[bytes | None]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._ended:
                return 0
            chunk = self._chunks.get()
            if chunk is None:
                self._ended = True
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def drain(self) -> None:
        """Discard what is left up to the end (so that the writer never waits forever)."""
        while not self._ended:
            if self._chunks.get() is None:
                self._ended = True


class _IndexingTap:
    """Indexes one layer from the blob bytes fed to it (a :class:`~sconify.image.BlobTap`)."""

    def __init__(self, compression: Compression, name: str) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(QUEUE_CHUNKS)
        self._compression = compression
        self._name = name
        self._index: LayerIndex | None = None
        self._complete = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"index {name}", daemon=True)
        self._thread.start()

    def write(self, chunk: bytes) -> None:
        """Queue the next blob bytes (waits while the indexer is :data:`QUEUE_CHUNKS` behind)."""
        if not self._closed:
            self._chunks.put(chunk)

    def close(self, *, complete: bool) -> None:
        """End of the blob; ``complete`` says whether it arrived whole and verified."""
        if not self._closed:
            self._closed = True
            self._complete = complete
            self._chunks.put(None)

    def result(self) -> LayerIndex | None:
        """Wait for the indexer; its index if the blob arrived whole and verified."""
        self._thread.join()
        return self._index if self._complete else None

    def _run(self) -> None:
        arriving = _Arriving(self._chunks)
        try:
            # the same checks as reading it from the store: magic bytes, and the diff_id
            # recorded in the index for the scan to compare with the config's
            blob = cast(BinaryIO, arriving)
            self._index = index_blob(blob, self._compression, self._name, self._name)
        except Exception as err:  # the scan reads the layer again and reports what is wrong
            log.debug("layer %s: not indexed while downloading: %s", self._name, err)
        finally:
            arriving.drain()


class PrefetchingIndexes:
    """An :class:`IndexCache` that also indexes layers while they download.

    ``backing`` (the on-disk cache, or None) answers for layers seen before, which are then
    not indexed again, and keeps the indexes made here: written on a thread (serialising a
    base layer's index takes ~30 ms the conversion need not wait for) until :meth:`close`.
    Use as a context manager.
    """

    def __init__(self, backing: IndexCache | None = None) -> None:
        self._backing = backing
        self._taps: dict[str, _IndexingTap] = {}
        self._kept: dict[str, LayerIndex] = {}  # read from ``backing`` while deciding on a tap
        self._lock = threading.Lock()
        self._writing: list[threading.Thread] = []

    def __enter__(self) -> PrefetchingIndexes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait until every index is kept by the backing cache."""
        for thread in self._writing:
            thread.join()
        self._writing.clear()

    def _keep(self, digest: str, index: LayerIndex) -> None:
        if self._backing is not None:
            thread = threading.Thread(
                target=self._backing.put, args=(digest, index), name=f"keep {digest}"
            )
            thread.start()
            self._writing.append(thread)

    def tap(self, descriptor: Descriptor) -> BlobTap | None:
        """A tap indexing the layer ``descriptor`` while it arrives, or None when not needed
        (the layer is indexed already, or its media type is not one sconify reads)."""
        key = str(descriptor.digest)
        try:
            compression = Compression.from_media_type(descriptor.media_type)
        except ImageError:  # reading the image reports the media type
            return None
        with self._lock:
            if key in self._taps or key in self._kept:
                return None
            kept = self._backing.get(key) if self._backing is not None else None
            if kept is not None:
                self._kept[key] = kept
                return None
            tap = _IndexingTap(compression, key)
            self._taps[key] = tap
            return tap

    def get(self, digest: str) -> LayerIndex | None:
        """The index made while downloading (waiting for it), else the backing cache's."""
        with self._lock:
            tap = self._taps.pop(digest, None)
            kept = self._kept.pop(digest, None)
        if kept is not None:
            return kept
        if tap is not None:
            index = tap.result()
            if index is not None:
                self._keep(digest, index)
                return index
        return self._backing.get(digest) if self._backing is not None else None

    def put(self, digest: str, index: LayerIndex) -> None:
        """Keep an index the scan made itself (in the backing cache)."""
        self._keep(digest, index)
