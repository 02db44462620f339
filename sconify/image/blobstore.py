"""A content-addressed blob store on disk (``root/blobs/sha256/<hex>``), the one I/O in the model.

Blobs are streamed through a hash into a temporary file beside their final place and renamed
into it only once verified, so a blob present under its name always has that content (short of
tampering on disk, which :meth:`BlobStore.verify` detects).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, cast

from sconify.errors import DigestMismatch, ImageNotFound
from sconify.image.digest import Digest

CHUNK = 1 << 20


class BlobTap(Protocol):
    """Something that sees a blob's bytes while they arrive, before they are verified.

    A transfer feeds it every chunk in order, then closes it: ``complete=True`` once the blob
    landed in the store verified, ``False`` when the transfer failed or restarted from the
    beginning (what the tap saw is then not the blob). A tap must not raise.
    """

    def write(self, chunk: bytes) -> None:
        """The next bytes of the blob."""

    def close(self, *, complete: bool) -> None:
        """No more bytes: whether they were the whole, verified blob."""


class BlobWriter:
    """A file-like sink that hashes what is written and lands in the store on :meth:`commit`.

    Use as a context manager: leaving it without a commit removes the temporary file.
    """

    def __init__(self, directory: Path, source: str) -> None:
        self._dir = directory
        self._source = source
        fd, name = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data`` to the blob."""
        n = self._file.write(data)
        self._hash.update(data)
        self._size += n
        return n

    def flush(self) -> None:
        """Flush buffered bytes to the temporary file."""
        self._file.flush()

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def commit(
        self, expected: Digest | None = None, expected_size: int | None = None
    ) -> tuple[Digest, int]:
        """Verify the bytes against ``expected`` (and size), rename into place, return both."""
        self._file.close()
        digest = Digest.from_hex(self._hash.hexdigest())
        try:
            if expected_size is not None and self._size != expected_size:
                raise DigestMismatch(
                    f"{self._source}: got {self._size} bytes, expected {expected_size}"
                    f" (content {digest}, expected {expected})",
                    hint="the source is corrupt or truncated; fetch it again",
                )
            if expected is not None and digest != expected:
                raise DigestMismatch(
                    f"{self._source}: content hashes to {digest}, expected {expected}",
                    hint="the source is corrupt or was tampered with; fetch it again",
                )
            final = self._dir / digest.hex
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, final)
        finally:
            self._tmp.unlink(missing_ok=True)
            self._done = True
        return digest, self._size

    def abort(self) -> None:
        """Drop the temporary file."""
        if not self._done:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            self._done = True

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class BlobStore:
    """Blobs on disk under ``root/blobs/sha256/<hex>``, named by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dir = self.root / "blobs" / "sha256"
        self._dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: Digest) -> Path:
        """Return where the blob named ``digest`` lives (whether or not it exists)."""
        return self._dir / Digest.parse(digest).hex

    def has(self, digest: Digest) -> bool:
        """Whether the blob is in the store."""
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int:
        """Return the size in bytes of a stored blob."""
        return self._existing(digest).stat().st_size

    def open(self, digest: Digest) -> BinaryIO:
        """Open a stored blob for reading."""
        return self._existing(digest).open("rb")

    def writer(self, source: str = "blob") -> BlobWriter:
        """Return a :class:`BlobWriter`; ``source`` names the origin in error messages."""
        return BlobWriter(self._dir, source)

    def put_stream(
        self,
        stream: BinaryIO | Iterable[bytes],
        expected: Digest | None = None,
        expected_size: int | None = None,
        *,
        source: str = "stream",
    ) -> tuple[Digest, int]:
        """Copy a file object or iterable of chunks into the store, verified; return digest, size.

        A mismatch raises :class:`DigestMismatch` naming both digests and ``source``; the store is
        left without the blob.
        """
        with self.writer(source) as w:
            if hasattr(stream, "read"):
                reader = cast(BinaryIO, stream)
                while chunk := reader.read(CHUNK):
                    w.write(chunk)
                    self._check_growth(w, expected, expected_size, source)
            else:
                for chunk in stream:
                    w.write(chunk)
                    self._check_growth(w, expected, expected_size, source)
            return w.commit(expected, expected_size)

    def put_file(
        self, path: Path, expected: Digest | None = None, expected_size: int | None = None
    ) -> tuple[Digest, int]:
        """Copy the file at ``path`` into the store, verified; return digest and size."""
        with Path(path).open("rb") as f:
            return self.put_stream(f, expected, expected_size, source=str(path))

    def put_bytes(self, data: bytes, expected: Digest | None = None) -> tuple[Digest, int]:
        """Store a small blob held in memory (a manifest or a config)."""
        return self.put_stream([data], expected, source="in-memory blob")

    def verify(self, digest: Digest) -> None:
        """Re-hash a stored blob; raise :class:`DigestMismatch` when its content changed."""
        actual = Digest.of_file(self._existing(digest))
        if actual != digest:
            raise DigestMismatch(
                f"blob {self.path(digest)} hashes to {actual}, expected {digest}",
                hint="the blob store is corrupt; delete the file and fetch the image again",
            )

    def _existing(self, digest: Digest) -> Path:
        p = self.path(digest)
        if not p.is_file():
            raise ImageNotFound(
                f"blob {digest} is not in the store at {self.root}",
                hint="fetch the image again so that all its blobs are stored",
            )
        return p

    @staticmethod
    def _check_growth(
        w: BlobWriter, expected: Digest | None, expected_size: int | None, source: str
    ) -> None:
        # Stop early on a stream that sends more than announced instead of filling the disk.
        if expected_size is not None and w.size > expected_size:
            raise DigestMismatch(
                f"{source}: more than the expected {expected_size} bytes (expected {expected})",
                hint="the source sent more data than its descriptor says; it is corrupt",
            )
