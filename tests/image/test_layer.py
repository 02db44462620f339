import bz2
import gzip
import hashlib
import io
import lzma
import tarfile

import pytest
import zstandard

from sconify.errors import ImageError
from sconify.image import (
    BlobStore,
    Compression,
    Descriptor,
    Digest,
    LayerSink,
    layer_from_blob,
    layer_from_tar,
)
from sconify.image import mediatypes as mt
from sconify.image.layer import DiffIdReader, diff_id_of, sniff_format


def _tar(tmp_path, files=None):
    files = files or {"hello.txt": b"hi\n", "caf\u00e9/\u00fcber.txt": b"x" * 100_000}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    p = tmp_path / "layer.tar"
    p.write_bytes(buf.getvalue())
    return p, buf.getvalue()


@pytest.mark.parametrize("compression", list(Compression))
def test_layer_from_tar_round_trip(tmp_path, compression):
    store = BlobStore(tmp_path / "s")
    path, raw = _tar(tmp_path)
    layer = layer_from_tar(path, store, compression)
    assert layer.diff_id == Digest.of(raw)
    assert layer.digest == Digest.of(layer.path.read_bytes())
    assert layer.size == layer.path.stat().st_size
    assert layer.media_type == compression.oci_media_type()
    assert layer.compression is compression
    assert layer.path == store.path(layer.digest)
    with layer.open_tar() as f:
        assert f.read() == raw
    with layer.open_blob() as f:
        assert Compression.detect(f.read(4)) is compression
    if compression is Compression.NONE:
        assert layer.digest == layer.diff_id


@pytest.mark.parametrize("compression", list(Compression))
def test_a_tar_written_into_a_sink_is_the_layer_of_its_bytes(tmp_path, compression):
    """tarfile writes straight into the store (no tar file first): the same layer as from
    the file, and a sink left unfinished keeps nothing."""
    path, raw = _tar(tmp_path)
    store = BlobStore(tmp_path / "s")
    with LayerSink(store, compression) as sink:
        with (
            tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as t,
            tarfile.open(path) as src,
        ):
            for member in src:
                t.addfile(member, src.extractfile(member))
        streamed = sink.finish()
    from_file = layer_from_tar(path, BlobStore(tmp_path / "f"), compression)
    assert (streamed.digest, streamed.diff_id) == (from_file.digest, from_file.diff_id)
    assert streamed.diff_id == Digest.of(raw)
    with LayerSink(store, compression) as sink:
        sink.write(b"half a layer")
    assert sorted(p.name for p in store.path(streamed.digest).parent.iterdir()) == [
        streamed.digest.hex
    ]


def test_gzip_output_is_deterministic(tmp_path):
    path, _ = _tar(tmp_path)
    a = layer_from_tar(path, BlobStore(tmp_path / "a"), Compression.GZIP, level=3)
    b = layer_from_tar(path, BlobStore(tmp_path / "b"), Compression.GZIP, level=3)
    assert a.digest == b.digest
    header = a.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # mtime 0


def test_multi_frame_zstd_is_read_across_frames(tmp_path):
    _, raw = _tar(tmp_path)
    half = len(raw) // 2
    c = zstandard.ZstdCompressor()
    blob = c.compress(raw[:half]) + c.compress(raw[half:])
    store = BlobStore(tmp_path / "s")
    digest, size = store.put_bytes(blob)
    layer = layer_from_blob(Descriptor(mt.OCI_LAYER_ZSTD, digest, size), store)
    assert layer.diff_id == Digest.of(raw)
    with layer.open_tar() as f:
        assert f.read() == raw


def test_multi_member_gzip(tmp_path):
    _, raw = _tar(tmp_path)
    blob = gzip.compress(raw[:1000]) + gzip.compress(raw[1000:])
    p = tmp_path / "b"
    p.write_bytes(blob)
    assert diff_id_of(p, Compression.GZIP) == Digest.of(raw)


def test_compression_from_media_type():
    assert Compression.from_media_type(mt.DOCKER_LAYER_GZIP) is Compression.GZIP
    assert Compression.from_media_type(mt.OCI_LAYER) is Compression.NONE
    assert Compression.from_media_type(mt.OCI_LAYER_ZSTD) is Compression.ZSTD
    with pytest.raises(ImageError, match="unsupported layer media type"):
        Compression.from_media_type(mt.OCI_LAYER_GZIP + "+encrypted")


def test_corrupt_blob_cannot_be_decompressed(tmp_path):
    p = tmp_path / "b"
    p.write_bytes(b"\x1f\x8b\x08" + b"garbage" * 10)
    with pytest.raises(ImageError, match="cannot decompress"):
        diff_id_of(p, Compression.GZIP)


def test_large_layer_streams(tmp_path):
    # 64 MiB of varied data goes through without being held whole (checked by result only).
    p = tmp_path / "big.tar"
    h = hashlib.sha256()
    with p.open("wb") as f:
        for i in range(64):
            chunk = hashlib.sha256(str(i).encode()).digest() * (1 << 15)
            f.write(chunk)
            h.update(chunk)
    layer = layer_from_tar(p, BlobStore(tmp_path / "s"), Compression.ZSTD)
    assert layer.diff_id == Digest.from_hex(h.hexdigest())


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip"),
        (b"\x1f\x8b\x09\x00\x00\x00\x00\x00", "none"),  # not deflate: engines read a tar
        (b"\x28\xb5\x2f\xfd\x00\x00\x00\x00", "zstd"),
        (b"\x5a\x2a\x4d\x18\x04\x00\x00\x00", "zstd"),  # a skippable frame first
        (b"BZh91AY&", "bzip2"),
        (b"\xfd7zXZ\x00\x00\x04", "xz"),
        (b"app/\x00\x00\x00\x00", "none"),
    ],
)
def test_compression_is_sniffed_as_the_engines_do(head, found):
    assert sniff_format(head) == found


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("actual", ["none", "gzip", "zstd", "bzip2", "xz"])
def test_a_blob_whose_bytes_disagree_with_its_media_type_is_refused(tmp_path, compression, actual):
    _, raw = _tar(tmp_path)
    blob = {
        "none": lambda: raw,
        "gzip": lambda: gzip.compress(raw),
        "zstd": lambda: zstandard.ZstdCompressor().compress(raw),
        "bzip2": lambda: bz2.compress(raw),
        "xz": lambda: lzma.compress(raw),
    }[actual]()
    store = BlobStore(tmp_path / "s")
    digest, size = store.put_bytes(blob)
    layer = layer_from_blob(
        Descriptor(compression.oci_media_type(), digest, size), store, Digest.of(raw)
    )
    if actual == compression.value:
        with layer.open_tar() as f:
            assert f.read() == raw
        return
    words = "a plain tar" if actual == "none" else actual
    with pytest.raises(ImageError, match=f"declared .* but its bytes are {words}") as caught:
        layer.open_tar()
    assert "media type" in (caught.value.hint or "")
    with pytest.raises(ImageError, match="its bytes are"):
        diff_id_of(layer.path, compression)


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_the_diff_id_reader_hashes_all_of_the_stream(tmp_path, compression):
    """What follows the end-of-archive blocks counts, as it does for the engines."""
    _, raw = _tar(tmp_path)
    stream = raw + b"trailing bytes no tar reader looks at" * 1000
    blob = (
        gzip.compress(stream)
        if compression is Compression.GZIP
        else (zstandard.ZstdCompressor().compress(stream))
    )
    with DiffIdReader(io.BytesIO(blob), compression) as reader:
        assert reader.read(1000) == stream[:1000]
        assert reader.finish() == Digest.of(stream)
    if compression is Compression.GZIP:  # python-zstandard ends a cut frame silently
        cut = io.BytesIO(blob[: len(blob) // 2])
        with DiffIdReader(cut, compression) as reader, pytest.raises(OSError, match="corrupt"):
            reader.finish()
    with DiffIdReader(io.BytesIO(blob), compression) as reader:
        reader.read(10)  # closed early: the inflating thread stops
