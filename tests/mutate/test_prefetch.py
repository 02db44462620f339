"""Indexes made while layers download: the same as a scan's, or none at all."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sconify.image import BlobStore, Compression, Layer
from sconify.mutate.indexcache import DiskIndexCache
from sconify.mutate.layerindex import index_layer
from sconify.mutate.prefetch import PrefetchingIndexes
from tests.support.layers import Entry, host_file, make_layer

CHUNK = 4096


@pytest.fixture(params=[Compression.GZIP, Compression.ZSTD, Compression.NONE])
def layer(request: pytest.FixtureRequest, tmp_path: Path) -> Layer:
    store = BlobStore(tmp_path / "store")
    entries = [
        Entry("usr/bin", "dir"),
        host_file("/bin/true", "usr/bin/true"),
        Entry("usr/bin/also-true", "hardlink", target="usr/bin/true"),
        Entry("app", "dir"),
        Entry("app/data.bin", data=bytes(range(256)) * 3000),
        Entry("app/link", "symlink", target="data.bin"),
        Entry("app/.wh.gone"),
    ]
    return make_layer(store, tmp_path, entries, request.param)


def _feed(indexes: PrefetchingIndexes, layer: Layer, *, complete: bool) -> None:
    tap = indexes.tap(layer.descriptor)
    assert tap is not None
    data = layer.path.read_bytes()
    for start in range(0, len(data), CHUNK):
        tap.write(data[start : start + CHUNK])
    tap.close(complete=complete)


def test_the_index_made_while_downloading_is_the_scans(layer: Layer) -> None:
    indexes = PrefetchingIndexes()
    _feed(indexes, layer, complete=True)
    assert indexes.get(str(layer.digest)) == index_layer(layer, "0")


def test_an_incomplete_download_leaves_no_index(layer: Layer) -> None:
    indexes = PrefetchingIndexes()
    _feed(indexes, layer, complete=False)
    assert indexes.get(str(layer.digest)) is None


def test_garbage_leaves_no_index_and_does_not_block(layer: Layer) -> None:
    indexes = PrefetchingIndexes()
    tap = indexes.tap(layer.descriptor)
    assert tap is not None
    for _ in range(64):  # far more than the queue or a pipe holds
        tap.write(b"\x1f\x8b not a layer " * 4096)
    tap.close(complete=True)
    assert indexes.get(str(layer.digest)) is None


def test_kept_indexes_are_used_and_new_ones_kept(layer: Layer, tmp_path: Path) -> None:
    disk = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "state" / "key")
    with PrefetchingIndexes(disk) as indexes:
        _feed(indexes, layer, complete=True)
        made = indexes.get(str(layer.digest))
    # kept on a thread, written by the time the context closes
    assert made is not None and disk.get(str(layer.digest)) == made
    again = PrefetchingIndexes(disk)
    assert again.tap(layer.descriptor) is None  # known: not indexed again
    assert again.get(str(layer.digest)) == made


def test_the_index_made_while_downloading_carries_the_diff_id(layer: Layer) -> None:
    indexes = PrefetchingIndexes()
    _feed(indexes, layer, complete=True)
    made = indexes.get(str(layer.digest))
    assert made is not None and made.diff_id == str(layer.diff_id)


def test_a_layer_whose_bytes_are_not_its_media_type_is_not_indexed(layer: Layer) -> None:
    other = Compression.NONE if layer.compression is not Compression.NONE else Compression.GZIP
    lying = Layer(
        replace(layer.descriptor, media_type=other.oci_media_type()), layer.diff_id, layer.path
    )
    indexes = PrefetchingIndexes()
    _feed(indexes, lying, complete=True)
    assert indexes.get(str(layer.digest)) is None  # the scan reads it and reports the mismatch
