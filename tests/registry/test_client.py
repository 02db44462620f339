"""The registry client against a real registry, directly and through the fault proxy."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import httpx
import pytest

from sconify.canonical import compact_json
from sconify.errors import DigestMismatch, ImageNotFound, RegistryError
from sconify.image import BlobStore, Digest
from sconify.image import mediatypes as mt
from sconify.registry import RegistryClient, RegistryResponseError, RetryPolicy, TransferStats
from sconify.registry.retry import retry_after
from tests.support.faultproxy import (
    Corrupt,
    FaultProxy,
    ResetRequest,
    ResetResponse,
    Respond,
    Rule,
    Truncate,
)

FAST = RetryPolicy(attempts=5, base=0.01, max_delay=0.05)


@pytest.fixture
def client(registry) -> Iterator[RegistryClient]:
    with RegistryClient(registry.addr, credentials=None) as c:
        yield c


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    return compact_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {
                "mediaType": mt.OCI_CONFIG,
                "digest": Digest.of(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": mt.OCI_LAYER, "digest": Digest.of(x), "size": len(x)} for x in layers
            ],
        }
    )


def _stored(client: RegistryClient, repo: str, data: bytes) -> Digest:
    """Put ``data`` in ``repo`` (directly) and return its digest."""
    return client.upload_bytes(repo, data)


def test_blob_upload_and_fetch(client, tmp_path):
    client.ping()
    data = b"blob content " * 100_000
    digest = Digest.of(data)
    assert not client.blob_exists("c/blobs", digest)
    (tmp_path / "blob").write_bytes(data)
    client.upload_file("c/blobs", digest, len(data), tmp_path / "blob")
    assert client.blob_exists("c/blobs", digest)
    store = BlobStore(tmp_path / "s")
    stats = TransferStats()
    path = client.fetch_blob("c/blobs", digest, store, len(data), stats=stats)
    assert path.read_bytes() == data
    assert (stats.blobs_downloaded, stats.bytes_downloaded) == (1, len(data))
    assert client.read_blob("c/blobs", client.upload_bytes("c/blobs", b"{}")) == b"{}"


def test_manifest_by_digest_and_tag(client):
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    client.upload_bytes("c/manifests", config)
    manifest = _manifest(config, [])
    digest = client.put_manifest("c/manifests", str(Digest.of(manifest)), manifest, mt.OCI_MANIFEST)
    fetched = client.get_manifest("c/manifests", str(digest))
    assert (fetched.data, fetched.media_type, fetched.digest) == (manifest, mt.OCI_MANIFEST, digest)
    assert client.manifest_digest("c/manifests", "t1") is None
    client.put_manifest("c/manifests", "t1", manifest, mt.OCI_MANIFEST)
    assert client.manifest_digest("c/manifests", "t1") == digest
    assert client.tags("c/manifests") == ["t1"]


def test_registry_error_codes_come_with_hints(client):
    manifest = _manifest(b"{}", [b"missing layer"])
    with pytest.raises(RegistryResponseError) as err:
        client.put_manifest("c/errors", "t", manifest, mt.OCI_MANIFEST)
    assert err.value.status == 400 and err.value.code == "MANIFEST_BLOB_UNKNOWN"
    assert "push the blobs first" in (err.value.hint or "")
    with pytest.raises(ImageNotFound, match="MANIFEST_UNKNOWN") as missing:
        client.get_manifest("c/errors", "nope")
    assert "tag or digest" in (missing.value.hint or "")
    with pytest.raises(ImageNotFound, match="NAME_UNKNOWN"):
        client.tags("c/never-pushed")


def test_upload_of_bytes_that_do_not_match_their_digest_fails_naming_it(registry):
    # Every attempt is refused with DIGEST_INVALID: the error names the digest and the code.
    wrong = Digest.of(b"other")
    c = RegistryClient(registry.addr, credentials=None, retry=FAST)
    with c, pytest.raises(RegistryResponseError) as err:
        c.upload_blob("c/errors", wrong, 4, lambda: io.BytesIO(b"data"))
    assert err.value.code == "DIGEST_INVALID"
    assert str(wrong) in err.value.message and "corrupt" in (err.value.hint or "")


# -- transient failures, through the fault proxy -------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Respond(503), Respond(429), Respond(500), ResetResponse(after=0), Truncate(after=10)],
    ids=["503", "429", "500", "reset", "truncated"],
)
def test_reads_are_retried_through_transient_failures(registry, client, tmp_path, fault):
    data = os.urandom(50_000)
    digest = _stored(client, "c/retry", data)
    manifest = _manifest(data, [])
    client.put_manifest("c/retry", "t", manifest, mt.OCI_MANIFEST)
    rules = [
        Rule(fault, method="GET", path="/blobs/", times=2),
        Rule(fault, method="GET", path="/manifests/", times=2),
    ]
    with (
        FaultProxy(registry.addr, rules) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        assert c.read_blob("c/retry", digest) == data
        assert c.fetch_blob("c/retry", digest, BlobStore(tmp_path / "s")).read_bytes() == data
        assert c.get_manifest("c/retry", "t").data == manifest
    assert len(proxy.faults()) == 4
    assert len(proxy.exchanges("GET", "/blobs/")) == 4  # two faults, then two good reads
    assert len(proxy.exchanges("GET", "/manifests/")) == 3


def test_status_faults_on_head_are_retried(registry, client):
    digest = _stored(client, "c/retry-head", b"head")
    with (
        FaultProxy(registry.addr, [Rule(Respond(502), method="HEAD", times=2)]) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        assert c.blob_exists("c/retry-head", digest)
    assert [x.status for x in proxy.exchanges("HEAD")] == [502, 502, 200]


def test_429_retry_after_is_honoured_in_the_delay():
    policy = RetryPolicy(base=0.01, max_delay=0.05, max_retry_after=30)

    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert policy.delay(0, answer("3")) == 3
    assert policy.delay(0, answer("120")) == 30  # capped by max_retry_after
    assert policy.delay(0, answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.01  # in the past
    assert retry_after(answer("not a date")) is None
    assert policy.delay(3) == 0.05


def test_retries_are_bounded(registry):
    with (
        FaultProxy(registry.addr, [Rule(Respond(503), times=None)]) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        with pytest.raises(RegistryResponseError) as err:
            c.get_manifest("c/bounded", "x")
        assert err.value.status == 503 and err.value.code == "UNAVAILABLE"
        assert "retry" in (err.value.hint or "")
    assert len(proxy.exchanges("GET", "/manifests/x")) == FAST.attempts


def test_a_download_that_breaks_off_resumes_with_range(registry, client, tmp_path):
    data = os.urandom(3 << 20)
    digest = _stored(client, "c/resume", data)
    # A clean close (not a reset, whose arrival may discard bytes not yet read) after 1 MiB.
    rules = [Rule(Truncate(after=1 << 20), method="GET", path="/blobs/sha256:")]
    stats = TransferStats()
    with (
        FaultProxy(registry.addr, rules) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        store = BlobStore(tmp_path / "s")
        assert c.fetch_blob("c/resume", digest, store, len(data), stats=stats).read_bytes() == data
    first, second = proxy.exchanges("GET", "/blobs/sha256:")
    assert first.fault == "Truncate" and "Range" not in first.headers
    assert second.status == 206 and second.headers["Range"] == f"bytes={1 << 20}-"
    assert stats.bytes_downloaded == len(data)


def test_wrong_bytes_are_fetched_again_then_refused_naming_the_digest(registry, client, tmp_path):
    data = os.urandom(20_000)
    digest = _stored(client, "c/verify", data)
    manifest = _manifest(data, [])
    manifest_digest = client.put_manifest("c/verify", "t", manifest, mt.OCI_MANIFEST)

    # Once: the retry gets good bytes.
    with (
        FaultProxy(registry.addr, [Rule(Corrupt(), method="GET")]) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        assert c.fetch_blob("c/verify", digest, BlobStore(tmp_path / "a")).read_bytes() == data

    # Always: a DigestMismatch naming the digest and where it came from; nothing stored.
    with (
        FaultProxy(registry.addr, [Rule(Corrupt(), method="GET", times=None)]) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        store = BlobStore(tmp_path / "b")
        with pytest.raises(DigestMismatch) as err:
            c.fetch_blob("c/verify", digest, store, len(data))
        assert f"expected {digest}" in err.value.message
        assert f"{proxy.addr}/c/verify" in err.value.message
        assert not store.has(digest) and not list(store.root.rglob(".incoming-*"))
        with pytest.raises(DigestMismatch, match=f"expected {digest}"):
            c.read_blob("c/verify", digest)
        with pytest.raises(DigestMismatch, match=f"@{manifest_digest} hashes to"):
            c.get_manifest("c/verify", str(manifest_digest))
        with pytest.raises(DigestMismatch, match=f"@{manifest_digest} hashes to"):
            c.get_manifest("c/verify", "t")  # checked against Docker-Content-Digest
    assert len(proxy.exchanges("GET", "/manifests/t")) == FAST.attempts


def test_a_reset_inside_a_monolithic_upload_starts_a_new_session(registry, tmp_path):
    data = os.urandom(200_000)
    digest = Digest.of(data)
    rules = [Rule(ResetRequest(after=50_000, forward=True), method="PUT", path="/blobs/uploads/")]
    with (
        FaultProxy(registry.addr, rules) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        c.upload_blob("c/mono", digest, len(data), lambda: io.BytesIO(data))
    assert [x.method for x in proxy.exchanges()] == ["POST", "PUT", "HEAD", "POST", "PUT"]
    assert [x.fault for x in proxy.exchanges("PUT")] == ["ResetRequest", None]
    with RegistryClient(registry.addr, credentials=None) as direct:
        assert direct.read_blob("c/mono", digest) == data


def test_an_unreachable_registry_is_named(tmp_path):
    from sconify.dev.registry import free_port

    with (
        RegistryClient(f"127.0.0.1:{free_port()}", retry=RetryPolicy(attempts=2, base=0.01)) as c,
        pytest.raises(RegistryError, match="cannot reach registry") as err,
    ):
        c.ping()
    assert "running" in (err.value.hint or "")
