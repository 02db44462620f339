"""Reading and writing tar streams of image files without holding members in memory."""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from sconify.image.blobstore import CHUNK

BLOCK = 512


@dataclass(frozen=True)
class Member:
    """A regular file to write: ``name``, ``size`` and a way to open its bytes."""

    name: str
    size: int
    open: Callable[[], BinaryIO]

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> Member:
        """A member whose content is in memory."""
        return cls(name, len(data), lambda: io.BytesIO(data))


def tar_chunks(members: Iterable[Member]) -> Iterator[bytes]:
    """Yield a tar archive of ``members`` chunk by chunk (fixed mtime 0, root ownership)."""
    for m in members:
        info = tarfile.TarInfo(m.name)
        info.size = m.size
        info.mode = 0o644
        info.mtime = 0
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        written = 0
        with m.open() as f:
            while chunk := f.read(CHUNK):
                written += len(chunk)
                if written > m.size:
                    raise OSError(f"{m.name} grew while being archived")
                yield chunk
        if written != m.size:
            raise OSError(f"{m.name} has {written} bytes, expected {m.size}")
        if m.size % BLOCK:
            yield b"\0" * (BLOCK - m.size % BLOCK)
    yield b"\0" * (2 * BLOCK)


class IterReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks (e.g. an HTTP body)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        """Always true."""
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``b`` from the next chunks; 0 at the end."""
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def resolve_link(member: tarfile.TarInfo) -> str:
    """The archive path a symlink or hard link member points to."""
    if member.issym():
        return posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
    return posixpath.normpath(member.linkname)


def normalize(name: str) -> str:
    """An archive path without ``./`` prefixes, as manifest files refer to it."""
    return posixpath.normpath(name).lstrip("/")


def reader_of(chunks: Iterable[bytes]) -> BinaryIO:
    """A buffered binary file object reading ``chunks`` in order."""
    return cast(BinaryIO, io.BufferedReader(IterReader(chunks), CHUNK))
