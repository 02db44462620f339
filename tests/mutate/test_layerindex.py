"""One layer's index: the entries it records, and how it refuses what is not a layer tar."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from sconify.errors import DigestMismatch, ImageError
from sconify.image import BlobStore
from sconify.mutate import layerindex
from sconify.mutate.fsview import scan_layers
from sconify.mutate.indexcache import DiskIndexCache
from sconify.mutate.layerindex import index_layer, index_tar
from tests.support.layers import Entry, make_layer


def test_index_records_entries_in_tar_order(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    make_layer(store, tmp_path, [Entry("app", "dir"), Entry("app/x", data=b"hello")])
    index = index_tar(io.BytesIO((tmp_path / "layer-0.tar").read_bytes()), "0")
    assert [(n.path, n.kind) for n in index.entries] == [("/app", "dir"), ("/app/x", "file")]
    assert index.entries[1].sha256 == hashlib.sha256(b"hello").hexdigest()
    assert index.paths == {"/app", "/app/x"}


def test_indexes_are_kept_under_the_blob_digest(tmp_path: Path) -> None:
    """A cached index is found again only for the same blob bytes (the digest the store
    verified), never for another layer that claims the same diff_id (which is refused: its
    tar does not hash to that diff_id)."""
    store = BlobStore(tmp_path / "store")
    real = make_layer(store, tmp_path, [Entry("app/secret", data=b"s")])
    other = make_layer(store, tmp_path, [Entry("srv/public", data=b"p")])
    liar = replace(other, diff_id=real.diff_id)
    cache = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "state" / "key")
    scan_layers([real], cache)
    assert cache.get(str(real.digest)) is not None and cache.get(str(real.diff_id)) is None
    assert cache.get(str(real.digest)).diff_id == str(real.diff_id)  # type: ignore[union-attr]
    with pytest.raises(DigestMismatch, match="diff_id"):
        scan_layers([liar], cache)
    view = scan_layers([other], cache)
    assert view.get("/srv/public") is not None and view.get("/app/secret") is None


def test_a_blob_that_is_not_a_whole_tar_is_refused_with_a_hint(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = make_layer(store, tmp_path, [Entry("app/x", data=bytes(range(256)) * 4000)])
    cut = tmp_path / "cut.gz"
    cut.write_bytes(layer.path.read_bytes()[: layer.size // 2])  # the gzip stream ends early
    with pytest.raises(ImageError) as caught:
        index_layer(replace(layer, path=cut), "0 (cut)")
    assert str(caught.value).startswith("layer 0 (cut) is not a readable tar: ")
    assert "pull the image again" in (caught.value.hint or "")
    tar = (tmp_path / "layer-0.tar").read_bytes()
    with pytest.raises(ImageError) as caught:
        index_tar(io.BytesIO(tar[:1000]), "1")  # the tar itself ends inside a file
    assert "unexpected end of data" in str(caught.value)
    assert "pull the image again" in (caught.value.hint or "")


def test_an_unsupported_tar_feature_is_named_with_what_to_do(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app/x")
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        tar.addfile(info)
    with pytest.raises(ImageError) as caught:
        index_tar(io.BytesIO(buf.getvalue()), "2")
    assert str(caught.value).startswith("layer 2 is not a readable tar: a GNU sparse file")
    assert "rebuild the image" in (caught.value.hint or "")


def test_a_layer_of_too_many_entries_is_refused_before_memory_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layerindex, "MAX_ENTRIES", 50)
    store = BlobStore(tmp_path / "store")
    layer = make_layer(store, tmp_path, [Entry(f"f{i}", data=b"x") for i in range(51)])
    with pytest.raises(ImageError, match="holds more than 50 entries") as caught:
        index_layer(layer, "0")
    assert caught.value.hint and "at most" in caught.value.hint
