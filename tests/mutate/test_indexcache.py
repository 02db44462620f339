"""The layer-index cache: only entries this user's sconify wrote are believed."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from sconify.image import BlobStore
from sconify.mutate.indexcache import DiskIndexCache, load_or_create_key
from sconify.mutate.layerindex import LayerIndex, index_layer
from tests.support.layers import Entry, make_layer


@pytest.fixture
def index_and_digest(tmp_path: Path) -> tuple[LayerIndex, str]:
    store = BlobStore(tmp_path / "store")
    layer = make_layer(store, tmp_path, [Entry("app", "dir"), Entry("app/x", data=b"secret")])
    return index_layer(layer, "0"), str(layer.digest)


def test_an_entry_is_read_back_under_its_key(
    tmp_path: Path, index_and_digest: tuple[LayerIndex, str]
) -> None:
    index, digest = index_and_digest
    cache = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "state" / "key")
    cache.put(digest, index)
    again = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "state" / "key")
    assert again.get(digest) == index
    key = tmp_path / "state" / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32


def test_entries_under_another_key_copied_or_edited_are_ignored(
    tmp_path: Path, index_and_digest: tuple[LayerIndex, str], caplog: pytest.LogCaptureFixture
) -> None:
    index, digest = index_and_digest
    mine = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "me" / "key")
    theirs = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "them" / "key")
    theirs.put(digest, index)  # planted by someone sharing the cache directory
    assert mine.get(digest) is None
    assert "not made by this user's sconify" in caplog.text
    mine.put(digest, index)
    entry = next((tmp_path / "cache").iterdir())
    other = "sha256:" + "e" * 64
    entry.rename(entry.with_name(other.replace(":", "-") + ".json.gz"))  # a genuine entry, moved
    assert mine.get(other) is None
    mine.put(digest, index)
    data = bytearray(entry.read_bytes())
    data[-9] ^= 1  # inside the gzip'd JSON
    entry.write_bytes(bytes(data))
    assert mine.get(digest) is None


def test_a_key_others_can_read_or_a_symlinked_key_turns_the_cache_off(
    tmp_path: Path, index_and_digest: tuple[LayerIndex, str]
) -> None:
    index, digest = index_and_digest
    loose = tmp_path / "loose"
    loose.write_bytes(os.urandom(32))
    loose.chmod(0o644)
    with pytest.raises(OSError, match="mode 0600"):
        load_or_create_key(loose)
    link = tmp_path / "link"
    link.symlink_to(loose)
    with pytest.raises(OSError):
        load_or_create_key(link)
    cache = DiskIndexCache(tmp_path / "cache", key_path=loose)
    cache.put(digest, index)
    assert cache.get(digest) is None and not (tmp_path / "cache").exists()


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "state" / "key"
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_or_create_key(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["key"]


def test_an_index_of_many_entries_is_written_in_pieces_and_read_back(tmp_path: Path) -> None:
    # more entries than one piece (4,096), names that are not UTF-8, and an ELF file
    entries = [Entry("d", "dir"), *(Entry(f"d/{i}", data=b"x") for i in range(9000))]
    entries += [Entry("caf\udce9", data=b"y"), Entry("d/ls", data=Path("/bin/ls").read_bytes())]
    store = BlobStore(tmp_path / "store")
    index = index_layer(make_layer(store, tmp_path, entries), "0")
    text = "".join(index.json_chunks())
    assert text == json.dumps(index.to_json(), separators=(",", ":"))
    assert "".join(index.json_chunks(batch=7)) == text
    cache = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "key")
    cache.put("sha256:" + "a" * 64, index)
    assert cache.get("sha256:" + "a" * 64) == index
    assert not list((tmp_path / "cache").glob(".tmp-*"))
