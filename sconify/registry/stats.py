"""Counts of what a push or pull moved, for the CLI's report and the benchmarks."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class TransferStats:
    """What went over the wire; safe to update from the parallel blob transfers.

    ``bytes_uploaded`` is the size of the blobs the registry stored from us (each counted once);
    ``bytes_sent`` is what was put on the wire for them, resends after failures included.
    Skipped blobs were in the repository already (``HEAD``); mounted ones were linked from
    another repository of the same registry without sending their bytes.
    """

    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    bytes_sent: int = 0
    blobs_skipped: int = 0
    bytes_skipped: int = 0
    blobs_mounted: int = 0
    bytes_mounted: int = 0
    blobs_downloaded: int = 0
    bytes_downloaded: int = 0
    blobs_cached: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def uploaded(self, size: int) -> None:
        """Count a blob stored by an upload."""
        with self._lock:
            self.blobs_uploaded += 1
            self.bytes_uploaded += size

    def sent(self, n: int) -> None:
        """Count ``n`` blob bytes written to the wire."""
        with self._lock:
            self.bytes_sent += n

    def skipped(self, size: int) -> None:
        """Count a blob the repository had already."""
        with self._lock:
            self.blobs_skipped += 1
            self.bytes_skipped += size

    def mounted(self, size: int) -> None:
        """Count a blob mounted from another repository."""
        with self._lock:
            self.blobs_mounted += 1
            self.bytes_mounted += size

    def downloaded(self, n: int, *, blob_done: bool = False) -> None:
        """Count ``n`` bytes received for a blob (and the blob, once it is complete)."""
        with self._lock:
            self.bytes_downloaded += n
            if blob_done:
                self.blobs_downloaded += 1

    def cached(self) -> None:
        """Count a blob a pull found in the local store already."""
        with self._lock:
            self.blobs_cached += 1

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for ``--json`` output)."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}
