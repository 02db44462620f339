"""SCFS v1: round trips, tamper detection, and the vectors shared with the Go shim."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from sconify.crypto.keys import VolumeKey
from sconify.crypto.scfs import (
    HEADER_SIZE,
    PackSink,
    VolumeWriter,
    decrypt_stream,
    encrypt_stream,
    open_fspf,
    read_volume,
)
from sconify.errors import ConversionError, CryptoError

VECTORS = Path(__file__).parents[1] / "vectors" / "scfs"


def _roundtrip(data: bytes, chunk: int) -> bytes:
    key = VolumeKey.generate()
    out = io.BytesIO()
    encrypt_stream(key, io.BytesIO(data), len(data), out, file_id=b"\1" * 16, chunk_size=chunk)
    out.seek(0)
    return b"".join(decrypt_stream(key, out, file_id=b"\1" * 16, size=len(data)))


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 1000])
def test_file_roundtrip_at_chunk_boundaries(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    assert _roundtrip(data, 64) == data


def test_empty_file_is_one_final_chunk() -> None:
    key = VolumeKey.generate()
    out = io.BytesIO()
    encrypt_stream(key, io.BytesIO(b""), 0, out, file_id=b"\2" * 16)
    assert len(out.getvalue()) == HEADER_SIZE + 16


def test_wrong_file_id_fails() -> None:
    key = VolumeKey.generate()
    out = io.BytesIO()
    encrypt_stream(key, io.BytesIO(b"abc"), 3, out, file_id=b"\3" * 16)
    out.seek(0)
    with pytest.raises(CryptoError):
        list(decrypt_stream(key, out, file_id=b"\4" * 16, size=3))


def test_short_source_is_a_conversion_error() -> None:
    with pytest.raises(ConversionError, match="ended after 2 of 5 bytes"):
        encrypt_stream(VolumeKey.generate(), io.BytesIO(b"ab"), 5, io.BytesIO(), file_id=b"\0" * 16)


def test_key_repr_is_redacted() -> None:
    key = VolumeKey.generate()
    assert key.reveal_hex() not in repr(key)
    assert key.reveal_hex() not in f"{key}"


def test_writer_refuses_entry_without_parent(tmp_path: Path) -> None:
    writer = VolumeWriter(VolumeKey.generate(), tmp_path)
    writer.add_region("/app")
    writer.add_symlink("/app", "lib", "/usr/lib")
    writer.add_file("/app", "lib/x.so", io.BytesIO(b"x"), 1, mode=0o644)
    with pytest.raises(ConversionError, match="it is a symlink"):
        writer.finish()


def test_writer_refuses_nested_regions(tmp_path: Path) -> None:
    writer = VolumeWriter(VolumeKey.generate(), tmp_path)
    writer.add_region("/app")
    with pytest.raises(ConversionError, match="nested"):
        writer.add_region("/app/data")


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/abs", "a//b", "."])
def test_writer_refuses_unsafe_names(tmp_path: Path, rel: str) -> None:
    writer = VolumeWriter(VolumeKey.generate(), tmp_path)
    writer.add_region("/app")
    with pytest.raises(ConversionError):
        writer.add_dir("/app", rel, mode=0o755)


def _cases() -> list[Path]:
    cases = sorted(p for p in VECTORS.iterdir() if (p / "case.json").exists())
    assert len(cases) >= 10, "the SCFS vectors are missing: run tests/vectors/gen_vectors.py"
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_vectors(case: Path) -> None:
    spec = json.loads((case / "case.json").read_text())
    key = VolumeKey.from_hex(spec["fspf_key"])
    if spec["expect"] == "error":
        with pytest.raises((CryptoError, FileNotFoundError)):
            list(read_volume(case / "image", key, spec["fspf_tag"]))
        return
    got = {
        path: (entry, data)
        for path, entry, data in read_volume(case / "image", key, spec["fspf_tag"])
    }
    assert set(got) == {e["path"] for e in spec["tree"]}
    for expected in spec["tree"]:
        entry, data = got[expected["path"]]
        assert entry["type"] == expected["type"]
        if expected["type"] == "file":
            assert data == base64.b64decode(expected["content_b64"])
            assert entry["mode"] == expected["mode"]
        elif expected["type"] == "symlink":
            assert entry["target"] == expected["target"]
        else:
            assert entry["mode"] == expected["mode"]


def test_a_pack_holds_the_same_volume_as_a_directory(tmp_path: Path) -> None:
    """Ciphertexts appended to one file, each found again at its offset and decrypting."""
    key = VolumeKey.generate()
    pack = PackSink(tmp_path / "pack")
    writer = VolumeWriter(key, pack, chunk_size=64)
    writer.add_region("/app")
    files = {"a.txt": b"alpha" * 100, "empty": b"", "b/c.bin": bytes(range(256))}
    writer.add_dir("/app", "b", mode=0o755)
    for rel, data in files.items():
        writer.add_file("/app", rel, io.BytesIO(data), len(data), mode=0o644)
    pack.close()
    sealed = writer.finish()
    entries = {
        e["blob"]: e
        for e in open_fspf(sealed.fspf, key, sealed.tag_hex)["regions"][0]["entries"]
        if e["type"] == "file"
    }
    assert sorted(b.name for b in pack.blobs) == sorted(entries)
    raw = (tmp_path / "pack").read_bytes()
    assert sum(b.size for b in pack.blobs) == len(raw)
    for blob in pack.blobs:
        entry = entries[blob.name]
        chunk = io.BytesIO(raw[blob.offset : blob.offset + blob.size])
        plain = b"".join(
            decrypt_stream(key, chunk, file_id=bytes.fromhex(entry["file_id"]), size=entry["size"])
        )
        assert plain == files[entry["path"]]
