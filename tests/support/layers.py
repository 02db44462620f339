"""Build small native layers and images in Python for conversion tests (no network, no engine)."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from sconify.image import BlobStore, Compression, Image, ImageConfig, Layer, layer_from_tar


@dataclass(frozen=True)
class Entry:
    """One tar entry: ``kind`` is file, dir, symlink, hardlink or whiteout-style names as files."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0


def make_layer(
    store: BlobStore, tmp: Path, entries: list[Entry], compression: Compression = Compression.GZIP
) -> Layer:
    """Write ``entries`` as a tar in order and store it as a layer."""
    path = tmp / f"layer-{len(list(tmp.glob('layer-*')))}.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, 1700000000
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
                tar.addfile(info)
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e.target
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return layer_from_tar(path, store, compression)


def host_file(path: str, name: str | None = None, mode: int = 0o755) -> Entry:
    """An entry holding a file of this machine (following symlinks), e.g. a real ELF binary."""
    return Entry(name or path.lstrip("/"), data=Path(path).resolve().read_bytes(), mode=mode)


def image_of(layers: list[Layer], **config: object) -> Image:
    """A single-platform image of ``layers`` with a minimal config."""
    base = ImageConfig.new(**config)  # type: ignore[arg-type]
    img = Image(base, ())
    return img.append_layers(
        layers, history=[{"created_by": f"ENV SECRET=x{i}"} for i in range(len(layers))]
    )
