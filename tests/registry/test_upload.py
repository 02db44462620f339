"""Blob uploads against the real registry: monolithic, chunked, resumed, mounted, counted.

Faults come from the fault proxy; afterwards every blob is read back from the registry directly
(not through the proxy) and compared byte for byte.
"""

from __future__ import annotations

import io
import os

import pytest

from sconify.errors import RegistryError
from sconify.image import Digest
from sconify.registry import (
    Outcome,
    RegistryClient,
    RegistryOptions,
    RegistryResponseError,
    RetryPolicy,
    TransferStats,
)
from tests.support.faultproxy import (
    Corrupt,
    DropResponse,
    FaultProxy,
    ResetRequest,
    Respond,
    Rule,
)

FAST = RetryPolicy(attempts=4, base=0.01, max_delay=0.05)
CHUNK = 64 * 1024
CHUNKED = RegistryOptions(chunk_size=CHUNK, retry=FAST)
#: Four chunks of CHUNK bytes and a short fifth one.
SIZE = 4 * CHUNK + 1000


def _blob(size: int = SIZE) -> tuple[bytes, Digest]:
    data = os.urandom(size)
    return data, Digest.of(data)


def _upload(addr: str, repo: str, data: bytes, options: RegistryOptions = CHUNKED, **kw) -> Outcome:
    with RegistryClient(addr, credentials=None, options=options) as c:
        return c.upload_blob(repo, Digest.of(data), len(data), lambda: io.BytesIO(data), **kw)


def _in_registry(registry, repo: str, data: bytes) -> bool:
    with RegistryClient(registry.addr, credentials=None) as c:
        return c.read_blob(repo, Digest.of(data), limit=len(data)) == data


def _ranges(proxy: FaultProxy) -> list[str]:
    return [x.headers["Content-Range"] for x in proxy.exchanges("PATCH")]


def test_small_blobs_go_in_one_put(registry):
    data, _ = _blob(CHUNK)
    with FaultProxy(registry.addr) as proxy:
        assert _upload(proxy.addr, "u/mono", data) is Outcome.UPLOADED
    assert [x.method for x in proxy.exchanges()] == ["POST", "PUT"]
    assert proxy.exchanges("PUT")[0].headers["Content-Length"] == str(CHUNK)
    assert _in_registry(registry, "u/mono", data)


def test_large_blobs_go_in_chunks(registry):
    data, digest = _blob()
    stats = TransferStats()
    with FaultProxy(registry.addr) as proxy:
        _upload(proxy.addr, "u/chunks", data, stats=stats)
    assert [x.method for x in proxy.exchanges()] == ["POST"] + ["PATCH"] * 5 + ["PUT"]
    assert _ranges(proxy) == [f"{i * CHUNK}-{(i + 1) * CHUNK - 1}" for i in range(4)] + [
        f"{4 * CHUNK}-{SIZE - 1}"
    ]
    put = proxy.exchanges("PUT")[0]
    assert put.headers["Content-Length"] == "0" and f"digest={digest}".replace(":", "%3A") in (
        put.target
    )
    assert (stats.blobs_uploaded, stats.bytes_uploaded, stats.bytes_sent) == (1, SIZE, SIZE)
    assert _in_registry(registry, "u/chunks", data)


def test_the_default_chunk_size_is_32_mib():
    assert RegistryOptions().chunk_size == 32 << 20


@pytest.mark.parametrize(
    "fault",
    [Respond(503), Respond(429), ResetRequest(after=10_000, forward=False), Respond(416, None)],
    ids=["503", "429", "reset-before-the-registry", "416"],
)
def test_a_failed_chunk_resumes_from_the_registrys_offset(registry, fault):
    """The registry saw nothing of the failed chunk: ask it (GET), resume there, same session."""
    data, _ = _blob()
    stats = TransferStats()
    with FaultProxy(registry.addr, [Rule(fault, method="PATCH", skip=2)]) as proxy:
        _upload(proxy.addr, "u/resume", data, stats=stats)
    methods = [x.method for x in proxy.exchanges()]
    assert methods == ["POST", "PATCH", "PATCH", "PATCH", "GET", "PATCH", "PATCH", "PATCH", "PUT"]
    status = proxy.exchanges("GET")[0]
    assert status.status == 204
    third = f"{2 * CHUNK}-{3 * CHUNK - 1}"
    assert _ranges(proxy)[2:4] == [third, third]  # the failed chunk, sent again
    assert stats.bytes_uploaded == SIZE and stats.bytes_sent >= SIZE
    assert _in_registry(registry, "u/resume", data)


def test_a_reset_inside_a_chunk_the_registry_partly_stored_starts_a_new_session(registry):
    """distribution drops a session that got part of a chunk: a new session from byte 0."""
    data, _ = _blob()
    rule = Rule(ResetRequest(after=10_000, forward=True), method="PATCH", skip=2)
    with FaultProxy(registry.addr, [rule]) as proxy:
        _upload(proxy.addr, "u/restart", data)
    first_session = ["POST", "PATCH", "PATCH", "PATCH", "GET", "HEAD"]
    assert [x.method for x in proxy.exchanges()][:6] == first_session
    assert proxy.exchanges("GET")[0].status == 404  # BLOB_UPLOAD_INVALID: the session is gone
    assert len(proxy.exchanges("POST")) == 2
    assert _ranges(proxy)[3] == f"0-{CHUNK - 1}"
    assert _in_registry(registry, "u/restart", data)


def test_a_lost_answer_to_the_closing_put_finds_the_blob_stored(registry):
    data, _ = _blob()
    with FaultProxy(registry.addr, [Rule(DropResponse(), method="PUT")]) as proxy:
        assert _upload(proxy.addr, "u/lost-answer", data) is Outcome.UPLOADED
    assert [x.method for x in proxy.exchanges()][-3:] == ["PUT", "GET", "HEAD"]
    assert proxy.exchanges("HEAD")[0].status == 200
    assert len(proxy.exchanges("POST")) == 1
    assert _in_registry(registry, "u/lost-answer", data)


def test_bytes_damaged_on_the_way_up_are_sent_again(registry):
    data, _ = _blob()
    with FaultProxy(registry.addr, [Rule(Corrupt(request=True), method="PATCH", skip=1)]) as proxy:
        _upload(proxy.addr, "u/damaged", data)
    final_puts = [x.status for x in proxy.exchanges("PUT")]
    assert final_puts == [400, 201]  # DIGEST_INVALID, then a new session that succeeds
    assert _in_registry(registry, "u/damaged", data)


def test_uploads_that_keep_failing_stop_with_a_clear_error(registry):
    data, digest = _blob()
    rules = [Rule(ResetRequest(after=1000, forward=True), method="PATCH", times=None)]
    with FaultProxy(registry.addr, rules) as proxy, pytest.raises(RegistryError) as err:
        _upload(proxy.addr, "u/hopeless", data)
    assert str(digest) in err.value.message and "connection" in err.value.message
    assert err.value.hint
    assert len(proxy.faults()) == FAST.attempts
    with RegistryClient(registry.addr, credentials=None) as c:
        assert not c.blob_exists("u/hopeless", digest)

    always = FaultProxy(registry.addr, [Rule(Respond(503), times=None)])
    with always as proxy, pytest.raises(RegistryResponseError) as status_err:
        _upload(proxy.addr, "u/hopeless", data)
    assert status_err.value.status == 503 and str(digest) in status_err.value.message


def test_cross_repository_mount(registry):
    data, digest = _blob()
    _upload(registry.addr, "u/mount-source", data)
    stats = TransferStats()
    with FaultProxy(registry.addr) as proxy:
        outcome = _upload(
            proxy.addr, "u/mount-target", data, mount_from="u/mount-source", stats=stats
        )
    assert outcome is Outcome.MOUNTED
    (post,) = proxy.exchanges()
    assert post.method == "POST" and post.status == 201
    assert f"mount={digest}".replace(":", "%3A") in post.target and "from=u%2Fmount-source" in (
        post.target
    )
    assert (stats.blobs_mounted, stats.bytes_mounted, stats.bytes_sent) == (1, SIZE, 0)
    assert _in_registry(registry, "u/mount-target", data)


def test_a_refused_mount_continues_as_an_upload_in_the_same_session(registry):
    data, _ = _blob(1000)
    stats = TransferStats()
    with FaultProxy(registry.addr) as proxy:
        outcome = _upload(proxy.addr, "u/mount-miss", data, mount_from="u/empty", stats=stats)
    assert outcome is Outcome.UPLOADED
    assert [(x.method, x.status) for x in proxy.exchanges()] == [("POST", 202), ("PUT", 201)]
    assert (stats.blobs_uploaded, stats.blobs_mounted) == (1, 0)
    assert _in_registry(registry, "u/mount-miss", data)
