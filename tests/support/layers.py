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


HOST_LIBS = "usr/lib/x86_64-linux-gnu"


def minimal_root(binary: str, *libraries: str) -> list[Entry]:
    """A merged-/usr root holding this machine's ``binary`` (as ``/usr/bin/NAME``), its loader,
    libc and ``libraries`` (names in the machine's ``/lib/x86_64-linux-gnu``): enough to run it."""
    return [
        Entry("usr", "dir", mode=0o755),
        Entry("usr/bin", "dir", mode=0o755),
        Entry("usr/lib", "dir", mode=0o755),
        Entry(HOST_LIBS, "dir", mode=0o755),
        host_file(binary, f"usr/bin/{Path(binary).name}"),
        Entry("bin", "symlink", target="usr/bin"),
        Entry("lib", "symlink", target="usr/lib"),
        Entry("lib64", "dir", mode=0o755),
        host_file("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
        *(
            host_file(f"/lib/x86_64-linux-gnu/{name}", f"{HOST_LIBS}/{name}")
            for name in ("libc.so.6", *libraries)
        ),
    ]


def image_of(layers: list[Layer], **config: object) -> Image:
    """A single-platform image of ``layers`` with a minimal config."""
    base = ImageConfig.new(**config)  # type: ignore[arg-type]
    img = Image(base, ())
    return img.append_layers(
        layers, history=[{"created_by": f"ENV SECRET=x{i}"} for i in range(len(layers))]
    )
