"""Hostile inputs to the conversion: names that are not UTF-8, ``--dir`` aimed at what sconify
or the engine owns. Each is one ConversionError naming the path, never a traceback."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from sconify.convert import convert
from sconify.errors import ConversionError
from sconify.image import BlobStore, Compression, Image, Layer, layer_from_tar
from tests.mutate.test_convert import _base_entries, _request
from tests.support.layers import Entry, image_of, make_layer

RAW_NAME = "app/caf\udce9.txt"  # the bytes b"app/caf\xe9.txt", as tar readers hand them over


def _raw_layer(store: BlobStore, tmp: Path, fmt: int, *entries: tarfile.TarInfo) -> Layer:
    """A layer whose names may hold raw (non-UTF-8) bytes, written in tar format ``fmt``."""
    path = tmp / f"raw-{len(list(tmp.glob('raw-*')))}.tar"
    with tarfile.open(path, "w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for info in entries:
            data = b"SECRET-IN-A-RAW-NAME" if info.isreg() else None
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return layer_from_tar(path, store, Compression.GZIP)


def _info(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _convert(tmp: Path, *layers: Layer, dirs: tuple[str, ...] = ("/app",)) -> None:
    store = BlobStore(tmp / "store")
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    image = image_of(list(layers), cmd=["ls"])
    convert(image, _request(dirs=dirs), store, work)


def _base(tmp: Path) -> Layer:
    return make_layer(BlobStore(tmp / "store"), tmp, _base_entries())


@pytest.mark.parametrize(
    "fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax-hdrcharset-binary", "gnu-raw"]
)
def test_non_utf8_name_in_a_protected_dir_is_refused_naming_it(tmp_path: Path, fmt: int) -> None:
    store = BlobStore(tmp_path / "store")
    app = _raw_layer(store, tmp_path, fmt, _info("app", tarfile.DIRTYPE), _info(RAW_NAME))
    with pytest.raises(ConversionError) as caught:
        _convert(tmp_path, _base(tmp_path), app)
    assert "/app/caf\\xe9.txt" in caught.value.message and "UTF-8" in caught.value.message
    assert caught.value.hint


def test_non_utf8_symlink_target_in_a_protected_dir_is_refused(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    link = _info("app/link", tarfile.SYMTYPE, target="caf\udce9.txt")
    app = _raw_layer(store, tmp_path, tarfile.GNU_FORMAT, _info("app", tarfile.DIRTYPE), link)
    with pytest.raises(ConversionError) as caught:
        _convert(tmp_path, _base(tmp_path), app)
    assert "caf\\xe9.txt" in caught.value.message and "/app/link" in caught.value.message


def test_non_utf8_name_outside_protected_dirs_converts(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = _raw_layer(
        store,
        tmp_path,
        tarfile.GNU_FORMAT,
        _info("app", tarfile.DIRTYPE),
        _info("app/ok.txt"),
        _info("srv", tarfile.DIRTYPE),
        _info("srv/caf\udce9.txt"),
    )
    _convert(tmp_path, _base(tmp_path), layer)


RESERVED = {
    "symlink-to-sconify": ([Entry("sconify", "dir"), Entry("app", "symlink", target="/sconify")],),
    "symlink-below-sconify": (
        [
            Entry("sconify", "dir"),
            Entry("sconify/x", "dir"),
            Entry("app", "symlink", target="sconify/x"),
        ],
    ),
    "symlink-into-plaintext-root": (
        [
            Entry("dev", "dir"),
            Entry("dev/shm", "dir"),
            Entry("dev/shm/sconify", "dir"),
            Entry("dev/shm/sconify/app", "dir"),
            Entry("app", "symlink", target="/dev/shm/sconify/app"),
        ],
    ),
    "symlink-to-an-ancestor-of-the-plaintext-root": (
        [
            Entry("dev", "dir"),
            Entry("dev/shm", "dir"),
            Entry("app", "symlink", target="../dev/shm"),
        ],
    ),
    "symlink-to-proc": ([Entry("proc", "dir"), Entry("app", "symlink", target="/proc")],),
    "symlink-to-root": ([Entry("app", "symlink", target="/")],),
}


@pytest.mark.parametrize("case", sorted(RESERVED))
def test_dir_resolving_into_what_sconify_owns_is_refused(tmp_path: Path, case: str) -> None:
    (entries,) = RESERVED[case]
    layer = make_layer(BlobStore(tmp_path / "store"), tmp_path, entries)
    with pytest.raises(ConversionError) as caught:
        _convert(tmp_path, _base(tmp_path), layer)
    assert "--dir=/app (which resolves to" in caught.value.message
    assert "cannot be protected" in caught.value.message and caught.value.hint


def test_the_plaintext_root_is_the_one_the_request_names(tmp_path: Path) -> None:
    layer = make_layer(
        BlobStore(tmp_path / "store"),
        tmp_path,
        [
            Entry("run", "dir"),
            Entry("run/plain", "dir"),
            Entry("app", "symlink", target="/run/plain"),
        ],
    )
    store = BlobStore(tmp_path / "store")
    work = tmp_path / "work"
    work.mkdir()
    image: Image = image_of([_base(tmp_path), layer], cmd=["ls"])
    with pytest.raises(ConversionError, match="decrypted into /run/plain"):
        convert(image, _request(plaintext_root="/run/plain"), store, work)
