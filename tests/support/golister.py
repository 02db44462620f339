"""Go's ``archive/tar`` as the reference reader of layers (``runtime_shim/cmd/tarlist``).

The container engines extract layers with Go's ``archive/tar`` after sniffing the compression
from the bytes; what this lister prints is what an engine would write to disk. Tests use it to
check that sconify's reader agrees with it, and that no output blob holds a protected file's
plaintext as an engine would read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "runtime_shim" / "cmd" / "tarlist"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class GoEntry:
    """One entry as ``tar.Reader.Next`` returns it (names as raw bytes; ``clean`` is the
    cleaned path as JSON carries it, bytes that are not UTF-8 replaced, ``clean_bytes`` the
    same path as raw bytes)."""

    name: bytes
    clean: str
    type: int
    linkname: bytes
    size: int
    mode: int
    uid: int
    gid: int
    sha256: str
    marker: bool
    pax: dict[str, str] = field(default_factory=dict)
    clean_bytes: bytes = b""

    @property
    def typeflag(self) -> bytes:
        """The one-byte type flag (``b"0"``, ``b"5"``...)."""
        return bytes([self.type])


@dataclass(frozen=True)
class GoListing:
    """All entries of a blob and how the reading ended (``error`` is ``None`` after a clean end)."""

    entries: tuple[GoEntry, ...]
    compression: str
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether Go read the whole archive (an engine would extract it)."""
        return self.error is None

    @property
    def marker_found(self) -> bool:
        """Whether any entry holds the marker (in data, name, link target or pax records)."""
        return any(e.marker for e in self.entries)


class GoLister:
    """Runs the lister binary (built once from ``runtime_shim/cmd/tarlist``)."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    @classmethod
    def build(cls, out_dir: Path | None = None) -> GoLister:
        """Build the lister with the shim's Go toolchain (cached by the source's hash)."""
        digest = hashlib.sha256()
        for path in sorted(SOURCE.glob("*.go")):
            digest.update(path.read_bytes())
        out_dir = out_dir or Path(tempfile.gettempdir()) / "sconify-tests"
        binary = out_dir / f"tarlist-{digest.hexdigest()[:16]}"
        if not binary.exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            partial = binary.with_suffix(f".{os.getpid()}.tmp")
            subprocess.run(
                ["go", "build", "-trimpath", "-o", str(partial), "./cmd/tarlist"],
                cwd=ROOT / "runtime_shim",
                env={**os.environ, "CGO_ENABLED": "0"},
                check=True,
            )
            partial.replace(binary)
        return cls(binary)

    def list(self, blob: bytes | Path, marker: bytes | str | None = None) -> GoListing:
        """What Go reads from ``blob`` (layer bytes or a file), with hits of an ASCII marker.

        A zstd blob is decompressed here first (Go's standard library has no zstd reader);
        the engines read zstd layers too, so its tar is what they would see.
        """
        data = blob.read_bytes() if isinstance(blob, Path) else blob
        compression = None
        if data.startswith(ZSTD_MAGIC):
            data = zstandard.ZstdDecompressor().stream_reader(data).read()
            compression = "zstd"
        argv = [str(self.binary)]
        if marker:
            text = marker.decode("ascii") if isinstance(marker, bytes) else marker
            argv += ["-marker", text]
        done = subprocess.run(argv, input=data, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"tarlist failed: {done.stderr.decode(errors='replace')}")
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        last = lines.pop()
        return GoListing(
            tuple(_entry(line) for line in lines),
            compression or last["compression"],
            last.get("error") if last["end"] == "error" else None,
        )

    def list_tars(self, tars: Sequence[bytes]) -> list[GoListing]:
        """What Go's ``tar.Reader`` reads from each of ``tars``, taken as tars whatever their
        first bytes (no compression sniffed), in one process (``tarlist -raw -batch``)."""
        framed = b"".join(len(tar).to_bytes(8, "big") + tar for tar in tars)
        argv = [str(self.binary), "-raw", "-batch"]
        done = subprocess.run(argv, input=framed, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"tarlist failed: {done.stderr.decode(errors='replace')}")
        listings: list[GoListing] = []
        entries: list[GoEntry] = []
        for line in done.stdout.splitlines():
            obj = json.loads(line)
            if "end" not in obj:
                entries.append(_entry(obj))
                continue
            error = obj.get("error") if obj["end"] == "error" else None
            listings.append(GoListing(tuple(entries), obj["compression"], error))
            entries = []
        if len(listings) != len(tars):
            raise RuntimeError(f"tarlist listed {len(listings)} of {len(tars)} tars")
        return listings


def _entry(obj: dict[str, Any]) -> GoEntry:
    return GoEntry(
        name=bytes.fromhex(obj["name_hex"]),
        clean=obj["clean"],
        type=obj["type"],
        linkname=bytes.fromhex(obj["linkname_hex"]),
        size=obj["size"],
        mode=obj["mode"],
        uid=obj["uid"],
        gid=obj["gid"],
        sha256=obj["sha256"],
        marker=obj["marker"],
        pax=obj.get("pax") or {},
        clean_bytes=bytes.fromhex(obj.get("clean_hex", "")),
    )
