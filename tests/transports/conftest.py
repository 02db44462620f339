"""Fixtures: a real registry (anonymous, Basic, Bearer), the Docker engine and sample images."""

from __future__ import annotations

from pathlib import Path

import pytest

from sconify.image import BlobStore, Compression, Image
from tests.support.docker_engine import docker_client, docker_engine
from tests.support.layers import Entry, image_of, make_layer
from tests.support.registry import basic_registry, registry, token_registry

__all__ = [
    "basic_registry",
    "docker_client",
    "docker_engine",
    "registry",
    "token_registry",
]

NON_ASCII = "caf\u00e9/na\u00efve \u2603.txt"


def build_sample(store: BlobStore, tmp: Path, *, marker: str = "") -> Image:
    """Three layers (gzip, zstd, plain) with links, non-ASCII names, whiteouts and owners."""
    tmp.mkdir(parents=True, exist_ok=True)
    base = make_layer(
        store,
        tmp,
        [
            Entry("etc", "dir", mode=0o755),
            Entry("etc/motd", data=b"hello\n"),
            Entry("etc/old.conf", data=b"old\n"),
            Entry("bin", "dir", mode=0o755),
            Entry("bin/tool", data=b"#!/bin/sh\necho tool\n", mode=0o755),
            Entry("bin/tool-link", "symlink", target="tool"),
            Entry("bin/tool-hard", "hardlink", target="bin/tool"),
            Entry("caf\u00e9", "dir", mode=0o755),
            Entry(NON_ASCII, data="gr\u00fc\u00dfe\n".encode()),
            Entry("home", "dir", mode=0o755),
            Entry("home/user", "dir", mode=0o700, uid=1000, gid=1000),
            Entry("home/user/empty", uid=1000, gid=1000),
            Entry("removed.txt", data=b"to be removed\n"),
            Entry("marker", data=marker.encode()),
        ],
        Compression.GZIP,
    )
    upper = make_layer(
        store,
        tmp,
        [
            Entry(".wh.removed.txt"),
            Entry("etc", "dir", mode=0o755),
            Entry("etc/.wh..wh..opq"),
            Entry("etc/new.conf", data=b"new\n"),
        ],
        Compression.ZSTD,
    )
    top = make_layer(store, tmp, [Entry("top.txt", data=b"top\n" * 1000)], Compression.NONE)
    return image_of([base, upper, top], cmd=["/bin/tool"], env=["PATH=/bin", "LANG=C.UTF-8"])


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    """A fresh blob store."""
    return BlobStore(tmp_path / "store")


@pytest.fixture
def sample(store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest) -> Image:
    """A sample image unique to the test (so registries and engines do not share it)."""
    return build_sample(store, tmp_path / "layers", marker=request.node.nodeid)
