"""Writing layer tars: deterministic ones for what sconify adds, filtered copies of native ones."""

from __future__ import annotations

import io
import posixpath
import tarfile
from pathlib import Path
from typing import BinaryIO

from sconify.image import BlobStore, Compression, Layer, LayerSink


class DeterministicTar:
    """A layer whose tar bytes depend only on what is added: mtime 0, root-owned, no user names.

    The tar streams into ``store`` as it is written (compressed, see :class:`LayerSink`);
    :meth:`to_layer` ends it. Parent directories are added on demand (mode 0755), so callers
    name only what matters.
    """

    def __init__(self, store: BlobStore, compression: Compression = Compression.GZIP) -> None:
        self._sink = LayerSink(store, compression, source="a layer sconify writes")
        self._tar = tarfile.open(fileobj=self._sink, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._dirs: set[str] = set()

    def _info(self, path: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.size = size
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def _parents(self, path: str) -> None:
        parent = posixpath.dirname(path.rstrip("/"))
        if parent in ("", "/") or parent in self._dirs:
            return
        self._parents(parent)
        self.add_dir(parent)

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        """Add a directory (once)."""
        if path in self._dirs:
            return
        self._parents(path)
        self._dirs.add(path)
        self._tar.addfile(self._info(path, tarfile.DIRTYPE, mode))

    def add_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Add a regular file holding ``data``."""
        self._parents(path)
        self._tar.addfile(self._info(path, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))

    def add_file(self, path: str, source: Path, mode: int = 0o644) -> None:
        """Add a regular file copied (streamed) from ``source`` on disk."""
        self._parents(path)
        with source.open("rb") as handle:
            size = source.stat().st_size
            self._tar.addfile(self._info(path, tarfile.REGTYPE, mode, size), handle)

    def add_stream(self, path: str, source: BinaryIO, size: int, mode: int = 0o644) -> None:
        """Add a regular file of the next ``size`` bytes read from ``source``."""
        self._parents(path)
        self._tar.addfile(self._info(path, tarfile.REGTYPE, mode, size), source)

    def add_symlink(self, path: str, target: str) -> None:
        """Add a symbolic link."""
        self._parents(path)
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._tar.addfile(info)

    def to_layer(self) -> Layer:
        """End the tar; the layer in the store."""
        self._tar.close()
        return self._sink.finish()

    def abort(self) -> None:
        """Keep nothing of it."""
        self._sink.abort()

    def __enter__(self) -> DeterministicTar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # after to_layer, nothing is left to drop


def copy_member(out: tarfile.TarFile, member: tarfile.TarInfo, data: BinaryIO | None) -> None:
    """Copy one entry of a native layer unchanged (PAX headers, xattrs and all)."""
    out.addfile(member, data if member.isreg() else None)
