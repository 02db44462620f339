"""The merged view: whiteouts, opaque dirs, replacements and implicit parents, as overlayfs does."""

from __future__ import annotations

from pathlib import Path

import pytest

from sconify.errors import ImageError
from sconify.image import BlobStore
from sconify.mutate import fsview
from sconify.mutate.fsview import scan_layers
from tests.support.layers import Entry, make_layer


def test_layers_merge_like_overlayfs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layers = [
        make_layer(
            store,
            tmp_path,
            [
                Entry("a/b/c", data=b"implicit parents"),  # no entries for a or a/b
                Entry("d", "dir"),
                Entry("d/keep", data=b"k"),
                Entry("d/gone", data=b"g"),
                Entry("e", "dir"),
                Entry("e/old", data=b"o"),
                Entry("f", data=b"file"),
            ],
        ),
        make_layer(
            store,
            tmp_path,
            [
                Entry("a/b", data=b"a file replaces the tree"),
                Entry("d/.wh.gone"),
                Entry("e/new", data=b"n"),
                Entry("e/.wh..wh..opq"),  # opaque: lower e/ hidden
                Entry("f", "dir"),
                Entry("f/inside", data=b"dir replaces file"),
            ],
        ),
    ]
    view = scan_layers(layers)
    assert view.get("/a/b") is not None and view.get("/a/b").kind == "file"  # type: ignore[union-attr]
    assert view.get("/a/b/c") is None
    assert view.get("/d/keep") is not None and view.get("/d/gone") is None
    assert view.get("/e/old") is None and view.get("/e/new") is not None
    assert view.get("/f").kind == "dir" and view.get("/f/inside") is not None  # type: ignore[union-attr]
    assert [n.path for n in view.children("/e")] == ["/e/new"]
    assert [n.path for n in view.children("/d")] == ["/d/keep"]


def test_whiteout_of_a_whole_tree(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layers = [
        make_layer(store, tmp_path, [Entry("t", "dir"), Entry("t/x/y/z", data=b"deep")]),
        make_layer(store, tmp_path, [Entry(".wh.t")]),
    ]
    view = scan_layers(layers)
    assert not [p for p in view.nodes if p.startswith("/t")]
    assert list(view.children("/t")) == []


def test_an_image_of_too_many_paths_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fsview, "MAX_ENTRIES", 50)
    store = BlobStore(tmp_path / "store")
    layers = [
        make_layer(store, tmp_path, [Entry(f"l{n}-{i}", data=b"x") for i in range(30)])
        for n in range(2)
    ]
    with pytest.raises(ImageError, match="more than 50 paths"):
        scan_layers(layers)
