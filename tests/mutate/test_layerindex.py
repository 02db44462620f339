"""One layer's index: the entries it records, and the diff_id it checks on the way."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from sconify.errors import ImageError
from sconify.image import BlobStore, Digest
from sconify.mutate.fsview import scan_layers
from sconify.mutate.layerindex import index_layer, index_tar
from tests.support.layers import Entry, make_layer


def test_index_records_entries_and_hashes_the_whole_tar(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = make_layer(store, tmp_path, [Entry("app", "dir"), Entry("app/x", data=b"hello")])
    # tarfile pads the archive to a full record: bytes after the end marker count for the
    # diff_id too, though no entry is read from them
    tar = (tmp_path / "layer-0.tar").read_bytes()
    assert len(tar) % 10240 == 0
    index, diff_id = index_tar(io.BytesIO(tar), "0")
    assert diff_id == Digest.from_hex(hashlib.sha256(tar).hexdigest()) == layer.diff_id
    assert [(n.path, n.kind) for n in index.entries] == [("/app", "dir"), ("/app/x", "file")]
    assert index.entries[1].sha256 == hashlib.sha256(b"hello").hexdigest()


def test_a_layer_that_is_not_its_diff_id_is_refused(tmp_path: Path) -> None:
    """An index is kept under the config's diff_id: a layer whose content is another tar must
    not be indexed under it (a cache entry for a popular base layer could be poisoned)."""
    store = BlobStore(tmp_path / "store")
    real = make_layer(store, tmp_path, [Entry("app/secret", data=b"s")])
    liar = replace(real, diff_id=Digest.from_hex("ab" * 32))
    with pytest.raises(ImageError) as caught:
        index_layer(liar, "0 (liar)")
    assert str(real.diff_id) in str(caught.value) and "ab" * 32 in str(caught.value)
    assert "tampered" in (caught.value.hint or "")
    with pytest.raises(ImageError):
        scan_layers([liar])


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
