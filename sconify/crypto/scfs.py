"""SCFS v1, the protected file system (DESIGN.md section 5): write and read encrypted volumes.

A volume is a set of regions (protected directories). Each file is encrypted on its own under a
key derived from the volume key and a random file id, in authenticated chunks that cannot be
truncated, reordered or swapped. The directory tree (the fspf) is canonical JSON sealed under
another key derived from the volume key; its GCM tag goes into the session, so an older fspf is
refused even when made with the same key.

The Go shim reads what :class:`VolumeWriter` writes; ``tests/vectors/scfs`` keeps them equal.
"""

from __future__ import annotations

import json
import posixpath
import struct
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sconify.canonical import canonical_json
from sconify.crypto._primitives import (
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    gcm_open,
    gcm_seal,
    hkdf_sha256,
    random_bytes,
)
from sconify.crypto.keys import VolumeKey
from sconify.errors import ConversionError, CryptoError

MAGIC = b"SCFS1\0"
VERSION = 1
DEFAULT_CHUNK_SIZE = 65536
_HEADER = struct.Struct(">6sBB16sIQ")
HEADER_SIZE = _HEADER.size  # 36
FSPF_AAD = b"SCFS1 fspf"
FILE_ID_SIZE = 16


def _file_key(key: VolumeKey, file_id: bytes) -> bytes:
    return hkdf_sha256(key.reveal(), b"scfs v1 file" + file_id)


def _fspf_key(key: VolumeKey) -> bytes:
    return hkdf_sha256(key.reveal(), b"scfs v1 fspf")


def _chunk_nonce(index: int) -> bytes:
    return b"\0\0\0\0" + index.to_bytes(8, "big")


def _chunk_aad(header: bytes, index: int, last: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def blob_name(file_id: bytes) -> str:
    """Where a file's ciphertext lives below ``/sconify/volumes`` (contracts.md section 2)."""
    hexid = file_id.hex()
    return f"{hexid[:2]}/{hexid}"


def encrypt_stream(
    key: VolumeKey,
    src: BinaryIO,
    size: int,
    dst: BinaryIO,
    *,
    file_id: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Encrypt exactly ``size`` bytes of ``src`` into ``dst`` as one SCFS v1 file."""
    header = _HEADER.pack(MAGIC, VERSION, 0, file_id, chunk_size, size)
    fkey = _file_key(key, file_id)
    dst.write(header)
    chunks = max(1, -(-size // chunk_size))
    remaining = size
    for index in range(chunks):
        want = min(chunk_size, remaining)
        plain = src.read(want)
        if len(plain) != want:
            raise ConversionError(
                f"a protected file ended after {size - remaining + len(plain)} of {size} bytes",
                hint="the layer tar is truncated; pull the source image again",
            )
        remaining -= want
        last = index == chunks - 1
        dst.write(gcm_seal(fkey, _chunk_nonce(index), plain, _chunk_aad(header, index, last)))


def decrypt_stream(key: VolumeKey, src: BinaryIO, *, file_id: bytes, size: int) -> Iterator[bytes]:
    """Yield the plaintext chunks of one SCFS v1 file, verifying everything on the way.

    Raises :class:`CryptoError` (without detail) on any tampering.
    """
    header = src.read(HEADER_SIZE)
    if len(header) != HEADER_SIZE:
        raise CryptoError("authentication failed")
    magic, version, flags, hdr_id, chunk_size, hdr_size = _HEADER.unpack(header)
    if (
        magic != MAGIC
        or version != VERSION
        or flags != 0
        or hdr_id != file_id
        or hdr_size != size
        or chunk_size == 0
    ):
        raise CryptoError("authentication failed")
    fkey = _file_key(key, file_id)
    chunks = max(1, -(-size // chunk_size))
    remaining = size
    for index in range(chunks):
        want = min(chunk_size, remaining)
        sealed = src.read(want + GCM_TAG_SIZE)
        if len(sealed) != want + GCM_TAG_SIZE:
            raise CryptoError("authentication failed")
        last = index == chunks - 1
        yield gcm_open(fkey, _chunk_nonce(index), sealed, _chunk_aad(header, index, last))
        remaining -= want
    if src.read(1):
        raise CryptoError("authentication failed")


@dataclass
class _Region:
    path: str
    mode: int
    uid: int
    gid: int
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class SealedVolume:
    """The result of writing a volume: the fspf bytes and the tag that the session pins."""

    fspf: bytes
    tag_hex: str
    file_count: int
    plaintext_bytes: int


def shown_name(name: str) -> str:
    """A name as its bytes read, undecodable bytes as ``\\xNN`` (for messages)."""
    raw = name.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace")


def check_utf8(name: str, what: str) -> str:
    """Refuse a name that is not UTF-8 text (raw bytes from a tar, held as surrogate escapes).

    The fspf is JSON, read by Go's ``encoding/json``, which turns such bytes into U+FFFD: the
    shim would create another name than the image had. So these names are refused.
    """
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConversionError(
            f"{what} {shown_name(name)} is not valid UTF-8, so the protected volume cannot "
            "hold it (its metadata is JSON)",
            hint="rename it to a UTF-8 name in the native image, or do not protect its directory",
        ) from None
    return name


def _check_region_path(path: str) -> str:
    check_utf8(path, "the protected directory")
    norm = posixpath.normpath(path)
    if not path.startswith("/") or norm == "/" or norm != path.rstrip("/"):
        raise ConversionError(
            f"protected directory {path!r} is not a normalised absolute path",
            hint="pass --dir as an absolute path such as /app",
        )
    return norm


def _check_rel(rel: str) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConversionError(f"unsafe path {rel!r} inside a protected directory")
    return rel


class CiphertextSink(Protocol):
    """Where a :class:`VolumeWriter` puts each file's ciphertext, named by :func:`blob_name`."""

    def create(self, blob: str) -> AbstractContextManager[BinaryIO]:
        """A stream for the ciphertext of ``blob`` (written once, then closed)."""


class DirectorySink:
    """Ciphertexts as files below ``root``, laid out as in an image's ``/sconify/volumes``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, blob: str) -> AbstractContextManager[BinaryIO]:
        """Create the file ``root/blob`` (and its directory)."""
        out = self.root / blob
        out.parent.mkdir(parents=True, exist_ok=True)
        return out.open("xb")


@dataclass(frozen=True)
class PackedBlob:
    """Where one ciphertext lies in a :class:`PackSink`'s file."""

    name: str
    offset: int
    size: int


class PackSink:
    """Every ciphertext appended to one file, with an index of where each lies.

    A conversion copies the ciphertexts straight into a layer tar; one file instead of a file
    and a directory per protected file saves two file creations each (slow on overlay file
    systems). Close it before reading.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("xb")
        self.blobs: list[PackedBlob] = []

    @contextmanager
    def _append(self, blob: str) -> Iterator[BinaryIO]:
        start = self._file.tell()
        yield self._file
        self.blobs.append(PackedBlob(blob, start, self._file.tell() - start))

    def create(self, blob: str) -> AbstractContextManager[BinaryIO]:
        """Append the ciphertext of ``blob`` to the pack."""
        return self._append(blob)

    def close(self) -> None:
        """Finish writing."""
        self._file.close()


class VolumeWriter:
    """Writes an SCFS v1 volume: ciphertexts into ``out``, then the sealed fspf.

    ``out`` is a directory (as an image's ``/sconify/volumes``) or any :class:`CiphertextSink`.

    Entries may be added in any order; :meth:`finish` checks that every entry's parent is a
    directory of the same region and that nothing lives below a symlink.
    """

    def __init__(
        self,
        key: VolumeKey,
        out: Path | CiphertextSink,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._key = key
        self._sink = DirectorySink(out) if isinstance(out, Path) else out
        self._chunk_size = chunk_size
        self._regions: dict[str, _Region] = {}
        self._files = 0
        self._bytes = 0

    def add_region(self, path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        """Declare a protected directory and the owner and mode of the directory itself."""
        norm = _check_region_path(path)
        for other in self._regions:
            if norm.startswith(other + "/") or other.startswith(norm + "/"):
                raise ConversionError(
                    f"protected directories {other} and {norm} are nested",
                    hint="pass only the outer directory with --dir",
                )
        self._regions[norm] = _Region(norm, mode & 0o7777, uid, gid)

    def _region(self, region: str, rel: str) -> _Region:
        try:
            reg = self._regions[region]
        except KeyError:
            raise ConversionError(f"{region} is not a protected directory") from None
        if rel in reg.entries:
            raise ConversionError(f"{region}/{rel} was added twice")
        _check_rel(rel)
        check_utf8(f"{region}/{rel}", "the protected path")
        return reg

    def add_dir(self, region: str, rel: str, *, mode: int, uid: int = 0, gid: int = 0) -> None:
        """Add a directory below ``region``."""
        reg = self._region(region, rel)
        reg.entries[rel] = {
            "path": rel,
            "type": "dir",
            "mode": mode & 0o7777,
            "uid": uid,
            "gid": gid,
        }

    def add_symlink(
        self, region: str, rel: str, target: str, *, uid: int = 0, gid: int = 0
    ) -> None:
        """Add a symbolic link below ``region`` (its target is kept as written)."""
        reg = self._region(region, rel)
        check_utf8(target, f"the target of the protected symlink {region}/{rel}:")
        reg.entries[rel] = {
            "path": rel,
            "type": "symlink",
            "target": target,
            "uid": uid,
            "gid": gid,
        }

    def add_file(
        self,
        region: str,
        rel: str,
        src: BinaryIO,
        size: int,
        *,
        mode: int,
        uid: int = 0,
        gid: int = 0,
    ) -> None:
        """Encrypt ``size`` bytes of ``src`` as a file below ``region``."""
        reg = self._region(region, rel)
        file_id = random_bytes(FILE_ID_SIZE)
        blob = blob_name(file_id)
        with self._sink.create(blob) as dst:
            encrypt_stream(self._key, src, size, dst, file_id=file_id, chunk_size=self._chunk_size)
        reg.entries[rel] = {
            "path": rel,
            "type": "file",
            "mode": mode & 0o7777,
            "uid": uid,
            "gid": gid,
            "size": size,
            "file_id": file_id.hex(),
            "blob": blob,
        }
        self._files += 1
        self._bytes += size

    def _check_tree(self, reg: _Region) -> None:
        for rel in reg.entries:
            parent = posixpath.dirname(rel)
            while parent:
                kind = reg.entries.get(parent, {}).get("type")
                if kind != "dir":
                    raise ConversionError(
                        f"{reg.path}/{rel} has no directory {reg.path}/{parent} above it"
                        + (" (it is a symlink)" if kind == "symlink" else ""),
                        hint="the image's layers disagree about this path; rebuild the image",
                    )
                parent = posixpath.dirname(parent)

    def fspf_document(self) -> dict[str, Any]:
        """The plaintext fspf (volume metadata) as a JSON-ready dict."""
        regions = []
        for path in sorted(self._regions):
            reg = self._regions[path]
            self._check_tree(reg)
            regions.append(
                {
                    "path": reg.path,
                    "mode": reg.mode,
                    "uid": reg.uid,
                    "gid": reg.gid,
                    "entries": [
                        reg.entries[k] for k in sorted(reg.entries, key=lambda s: s.encode())
                    ],
                }
            )
        return {"version": VERSION, "regions": regions}

    def finish(self) -> SealedVolume:
        """Seal the fspf under the volume key; returns its bytes and the tag for the session."""
        plain = canonical_json(self.fspf_document())
        nonce = random_bytes(GCM_NONCE_SIZE)
        sealed = nonce + gcm_seal(_fspf_key(self._key), nonce, plain, FSPF_AAD)
        return SealedVolume(sealed, sealed[-GCM_TAG_SIZE:].hex(), self._files, self._bytes)


def open_fspf(fspf: bytes, key: VolumeKey, tag_hex: str) -> dict[str, Any]:
    """Verify an fspf against the session's tag and return its plaintext document."""
    if len(fspf) < GCM_NONCE_SIZE + GCM_TAG_SIZE or fspf[-GCM_TAG_SIZE:].hex() != tag_hex.lower():
        raise CryptoError("authentication failed")
    plain = gcm_open(_fspf_key(key), fspf[:GCM_NONCE_SIZE], fspf[GCM_NONCE_SIZE:], FSPF_AAD)
    doc: dict[str, Any] = json.loads(plain)
    return doc


def read_volume(
    image_root: Path,
    key: VolumeKey,
    tag_hex: str,
    *,
    fspf_path: str = "/sconify/fspf/fs.fspf",
    volumes_path: str = "/sconify/volumes",
) -> Iterator[tuple[str, dict[str, Any], bytes | None]]:
    """Yield ``(absolute path, entry, content)`` of every entry of a volume in an unpacked image.

    The Python twin of what the shim does at start; used by tests and ``image inspect``.
    """
    doc = open_fspf((image_root / fspf_path.lstrip("/")).read_bytes(), key, tag_hex)
    volumes = image_root / volumes_path.lstrip("/")
    for region in doc["regions"]:
        yield region["path"], {"type": "dir", **region}, None
        for entry in region["entries"]:
            path = f"{region['path']}/{entry['path']}"
            if entry["type"] != "file":
                yield path, entry, None
                continue
            with (volumes / entry["blob"]).open("rb") as src:
                data = b"".join(
                    decrypt_stream(
                        key, src, file_id=bytes.fromhex(entry["file_id"]), size=entry["size"]
                    )
                )
            yield path, entry, data
