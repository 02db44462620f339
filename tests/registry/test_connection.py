"""Redirects: followed, verified, and never carrying ``Authorization`` to another host.

The registry is a real ``docker-registry`` with Basic auth whose storage middleware answers blob
reads with a 307 to a file server on another loopback port (see ``redirect_registry``).
"""

from __future__ import annotations

import os

import pytest

from sconify.errors import DigestMismatch
from sconify.image import BlobStore, Digest
from sconify.registry import Credentials, RegistryClient, RetryPolicy
from tests.support.faultproxy import FaultProxy
from tests.support.registry import PASSWORD, USER

FAST = RetryPolicy(attempts=2, base=0.01, max_delay=0.02)


def test_redirected_blob_reads_drop_authorization(redirect_registry, tmp_path):
    reg = redirect_registry
    data = os.urandom(100_000)
    creds = Credentials(USER, PASSWORD)
    with RegistryClient(reg.addr, credentials=creds) as c:
        digest = c.upload_bytes("redirect/app", data)
    reg.seen.clear()
    with (
        FaultProxy(reg.addr) as proxy,
        RegistryClient(proxy.addr, credentials=creds) as c,
    ):
        assert c.blob_exists("redirect/app", digest)
        path = c.fetch_blob("redirect/app", digest, BlobStore(tmp_path / "s"), len(data))
        assert path.read_bytes() == data
        assert c.read_blob("redirect/app", digest, limit=len(data)) == data

    # The registry got the credentials and answered with redirects ...
    redirects = [x for x in proxy.exchanges(path="/blobs/sha256:") if x.status == 307]
    assert len(redirects) == 3
    assert all(x.headers["Authorization"].startswith("Basic ") for x in redirects)
    # ... which were followed to the other port without them.
    assert [m for m, _, _ in reg.seen] == ["HEAD", "GET", "GET"]
    assert all(auth is None for _, _, auth in reg.seen)
    assert all(path.endswith(f"/{digest.hex}/data") for _, path, _ in reg.seen)


def test_a_redirect_target_serving_wrong_bytes_is_caught(redirect_registry, tmp_path):
    reg = redirect_registry
    data = os.urandom(10_000)
    creds = Credentials(USER, PASSWORD)
    with RegistryClient(reg.addr, credentials=creds, retry=FAST) as c:
        digest = c.upload_bytes("redirect/tampered", data)
        stored = reg.blob_data_path(digest)
        original = stored.read_bytes()
        stored.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])
        try:
            with pytest.raises(DigestMismatch, match=f"expected {Digest.of(data)}"):
                c.fetch_blob("redirect/tampered", digest, BlobStore(tmp_path / "s"), len(data))
        finally:
            stored.write_bytes(original)
