import io
import os

import pytest

from sconify.errors import DigestMismatch, ImageNotFound
from sconify.image import BlobStore, Digest


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "store")


def _leftovers(store):
    return [p for p in (store.root / "blobs" / "sha256").iterdir() if p.name.startswith(".")]


def test_put_stream_stores_by_digest(store):
    data = os.urandom(3 << 20)
    digest, size = store.put_stream(io.BytesIO(data))
    assert digest == Digest.of(data) and size == len(data)
    assert store.path(digest) == store.root / "blobs" / "sha256" / digest.hex
    assert store.has(digest)
    assert store.size(digest) == len(data)
    with store.open(digest) as f:
        assert f.read() == data
    store.verify(digest)


def test_put_stream_takes_an_iterable_of_chunks(store):
    digest, size = store.put_stream([b"ab", b"", b"cd"], Digest.of(b"abcd"), 4)
    assert (digest, size) == (Digest.of(b"abcd"), 4)


def test_wrong_digest_names_both_digests_and_the_source(store):
    wrong = Digest.of(b"something else")
    with pytest.raises(DigestMismatch) as err:
        store.put_stream(io.BytesIO(b"content"), wrong, source="blob from somewhere")
    message = err.value.message
    assert str(wrong) in message and str(Digest.of(b"content")) in message
    assert "blob from somewhere" in message
    assert not store.has(wrong) and not store.has(Digest.of(b"content"))
    assert _leftovers(store) == []


def test_wrong_size_is_refused(store):
    with pytest.raises(DigestMismatch, match="got 3 bytes, expected 5"):
        store.put_stream(io.BytesIO(b"abc"), expected_size=5)
    with pytest.raises(DigestMismatch, match="more than the expected 2 bytes"):
        store.put_stream(iter([b"abc", b"def"]), expected_size=2)
    assert _leftovers(store) == []


def test_put_file_and_bytes(store, tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"file content")
    assert store.put_file(p) == (Digest.of(b"file content"), 12)
    assert store.put_bytes(b"{}")[0] == Digest.of(b"{}")


def test_verify_detects_a_corrupted_blob(store):
    digest, _ = store.put_bytes(b"original")
    store.path(digest).write_bytes(b"tampered")
    with pytest.raises(DigestMismatch) as err:
        store.verify(digest)
    assert str(store.path(digest)) in err.value.message
    assert str(Digest.of(b"tampered")) in err.value.message


def test_missing_blob_is_image_not_found(store):
    missing = Digest.of(b"nope")
    assert not store.has(missing)
    with pytest.raises(ImageNotFound, match="not in the store"):
        store.open(missing)


def test_writer_without_commit_leaves_nothing(store):
    with store.writer("test") as w:
        w.write(b"partial")
    assert _leftovers(store) == []
    assert not store.has(Digest.of(b"partial"))
