"""Fixtures: real registries (anonymous, Basic, Bearer, TLS, mutual TLS, redirecting), images."""

from __future__ import annotations

from pathlib import Path

import pytest

from sconify.image import BlobStore, Compression, Image
from tests.support.docker_engine import docker_client, docker_engine
from tests.support.layers import Entry, image_of, make_layer
from tests.support.registry import (
    basic_registry,
    mtls_registry,
    pki,
    redirect_registry,
    registry,
    tls_registry,
    token_registry,
)

__all__ = [
    "basic_registry",
    "docker_client",
    "docker_engine",
    "mtls_registry",
    "pki",
    "redirect_registry",
    "registry",
    "tls_registry",
    "token_registry",
]


@pytest.fixture
def sample(tmp_path: Path, request: pytest.FixtureRequest) -> Image:
    """A two-layer image unique to the test (gzip and uncompressed layers)."""
    store = BlobStore(tmp_path / "store")
    marker = request.node.nodeid.encode()
    base = make_layer(
        store,
        tmp_path,
        [Entry("etc", "dir", mode=0o755), Entry("etc/marker", data=marker)],
        Compression.GZIP,
    )
    top = make_layer(store, tmp_path, [Entry("app.txt", data=b"app\n" * 5000)], Compression.NONE)
    return image_of([base, top], cmd=["/bin/true"])
