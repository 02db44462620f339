"""The registry transport against a real docker-registry (and skopeo as an independent reader).

Pushes and pulls also go through the fault proxy (``tests/support/faultproxy.py``); whatever
happens there, the registry is then checked directly: a tag exists only for an image whose
blobs are all present and intact.
"""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from sconify.canonical import compact_json
from sconify.dev.registry import free_port
from sconify.errors import DigestMismatch, ImageNotFound, RegistryError
from sconify.image import BlobStore, Descriptor, Image, Platform
from sconify.image import mediatypes as mt
from sconify.registry import (
    Credentials,
    RegistryClient,
    RegistryOptions,
    RetryPolicy,
    TransferStats,
)
from sconify.transports import remote
from sconify.transports.refs import RegistryRef, parse
from tests.support.faultproxy import (
    Corrupt,
    DropResponse,
    FaultProxy,
    ResetRequest,
    ResetResponse,
    Respond,
    Rule,
    Truncate,
)
from tests.support.registry import PASSWORD, USER, check_image, docker_config
from tests.transports.conftest import build_sample

FAST = RetryPolicy(attempts=4, base=0.01, max_delay=0.05)


class Recording(httpx.HTTPTransport):
    """A real HTTP transport that also notes each request's method and path."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        return super().handle_request(request)


def _ref(registry, name: str) -> RegistryRef:
    ref = parse(f"docker://{registry.addr}/{name}")
    assert isinstance(ref, RegistryRef)
    return ref


def _skopeo(*args: str) -> dict:
    out = subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)


def test_push_then_pull_keeps_digests(registry, sample, tmp_path):
    ref = _ref(registry, "roundtrip/app:v1")
    digest = remote.write(sample, ref)
    assert digest == sample.digest()
    pulled = remote.read(ref, BlobStore(tmp_path / "other"))
    assert pulled.digest() == digest
    assert pulled.manifest_bytes() == sample.manifest_bytes()
    assert pulled.config_bytes() == sample.config_bytes()
    pulled.validate(deep=True)
    for mine, theirs in zip(sample.layers, pulled.layers, strict=True):
        assert theirs.path.read_bytes() == mine.path.read_bytes()
        assert theirs.diff_id == mine.diff_id


def test_copy_to_another_repository_keeps_the_digest(registry, sample, tmp_path):
    src = _ref(registry, "copy/src:1")
    remote.write(sample, src)
    pulled = remote.read(src, BlobStore(tmp_path / "s"))
    dst = _ref(registry, "copy/dst:1")
    assert remote.write(pulled, dst) == sample.digest()


def test_skopeo_reads_what_we_pushed(registry, sample, tmp_path):
    ref = _ref(registry, "skopeo/app:v1")
    digest = remote.write(sample, ref)
    info = _skopeo("inspect", "--tls-verify=false", f"docker://{registry.addr}/skopeo/app:v1")
    assert info["Digest"] == digest
    assert info["Layers"] == [str(layer.digest) for layer in sample.layers]
    assert info["Env"] == ["PATH=/bin", "LANG=C.UTF-8"]
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref.name}@{digest}"],
        check=True,
        capture_output=True,
    ).stdout
    assert raw == sample.manifest_bytes()
    # A full copy makes skopeo fetch and verify every blob.
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            f"docker://{ref.name}@{digest}",
            f"oci:{tmp_path / 'layout'}:x",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_skip_existing_blobs_on_push(registry, sample):
    ref = _ref(registry, "skip/app:1")
    remote.write(sample, ref)
    recording = Recording()
    stats = TransferStats()
    with RegistryClient(registry.addr, credentials=None, transport=recording) as client:
        assert remote.push(sample, ref, client=client, stats=stats) == sample.digest()
    uploads = [s for s in recording.seen if s[0] in ("POST", "PATCH") or "uploads" in s[1]]
    assert uploads == []
    blobs = [*(layer.digest for layer in sample.layers), sample.config_descriptor().digest]
    heads = sorted(path for method, path in recording.seen if method == "HEAD")
    assert heads == sorted(f"/v2/skip/app/blobs/{d}" for d in blobs)
    assert recording.seen[-1] == ("PUT", f"/v2/skip/app/manifests/{sample.digest()}")
    assert (stats.blobs_skipped, stats.blobs_uploaded, stats.bytes_sent) == (4, 0, 0)
    assert stats.bytes_skipped == sum(layer.size for layer in sample.layers) + len(
        sample.config_bytes()
    )


def test_partial_push_uploads_only_missing_blobs(registry, sample, store, tmp_path):
    ref = _ref(registry, "partial/app:1")
    remote.write(sample, ref)
    extra = build_sample(store, tmp_path / "extra", marker="other content")
    grown = sample.with_layers([*sample.layers, extra.layers[0]])
    grown = grown.with_config(
        grown.config.replace(history=[*grown.config.history, {"created_by": "more"}])
    )
    recording = Recording()
    stats = TransferStats()
    with RegistryClient(registry.addr, credentials=None, transport=recording) as client:
        remote.push(grown, ref, client=client, stats=stats)
    puts = [p for m, p in recording.seen if m == "PUT" and "/blobs/uploads/" in p]
    posts = [p for m, p in recording.seen if m == "POST"]
    assert len(posts) == 2 and len(puts) == 2  # the new layer and the new config
    new_bytes = extra.layers[0].size + len(grown.config_bytes())
    assert (stats.blobs_uploaded, stats.bytes_uploaded, stats.blobs_skipped) == (2, new_bytes, 3)


def test_tag_only_after_push(registry, sample):
    ref = _ref(registry, "twostep/app:release")
    digest = remote.push(sample, ref)
    assert not remote.exists(ref)
    assert remote.exists(ref.with_digest(digest))
    with RegistryClient(registry.addr) as client:
        with pytest.raises(ImageNotFound):
            client.tags("twostep/app")
        remote.tag(ref, digest, client=client)
        assert client.tags("twostep/app") == ["release"]
        assert client.manifest_digest("twostep/app", "release") == digest


def test_index_picks_the_platform(registry, store, tmp_path):
    amd = build_sample(store, tmp_path / "amd", marker="amd64")
    arm = build_sample(store, tmp_path / "arm", marker="arm64")
    arm = arm.with_config(arm.config.replace(architecture="arm64", variant="v8"))
    ref = _ref(registry, "multi/app:1")
    entries = []
    for img in (arm, amd):
        digest = remote.push(img, ref)
        entries.append(
            Descriptor(
                img.manifest_media_type,
                digest,
                len(img.manifest_bytes()),
                platform=img.platform,
            ).to_json()
        )
    index = compact_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    with RegistryClient(registry.addr) as client:
        client.put_manifest("multi/app", "1", index, mt.OCI_INDEX)
    assert remote.read(ref, BlobStore(tmp_path / "a")).digest() == amd.digest()
    picked = remote.read(ref, BlobStore(tmp_path / "b"), platform=Platform.parse("linux/arm64"))
    assert picked.digest() == arm.digest()
    assert picked.platform == Platform("linux", "arm64", "v8")
    with pytest.raises(ImageNotFound, match=r"linux/s390x.*offered: linux/arm64/v8, linux/amd64"):
        remote.read(ref, BlobStore(tmp_path / "c"), platform=Platform.parse("linux/s390x"))


def test_docker_schema2_manifest_round_trip(registry, store, tmp_path):
    base = build_sample(store, tmp_path / "d", marker="docker")
    layers = [
        layer.with_descriptor(Descriptor(mt.DOCKER_LAYER_GZIP, layer.digest, layer.size))
        for layer in base.layers[:1]
    ]
    img = Image(base.config.replace(history=base.config.history[:1]), (), mt.DOCKER_MANIFEST)
    img = img.with_layers(layers)
    ref = _ref(registry, "schema2/app:1")
    digest = remote.write(img, ref)
    pulled = remote.read(ref, BlobStore(tmp_path / "p"))
    assert pulled.digest() == digest
    assert pulled.manifest_media_type == mt.DOCKER_MANIFEST
    assert pulled.config_descriptor().media_type == mt.DOCKER_CONFIG


def test_corrupt_blob_in_the_registry_is_refused(registry, sample, tmp_path):
    ref = _ref(registry, "corrupt/app:1")
    remote.write(sample, ref)
    victim = sample.layers[2]
    data_path = registry.blob_data_path(victim.digest)
    original = data_path.read_bytes()
    data_path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        with pytest.raises(DigestMismatch) as err:
            remote.read(ref, BlobStore(tmp_path / "fresh"), options=RegistryOptions(retry=FAST))
        assert str(victim.digest) in err.value.message
        assert f"{registry.addr}/corrupt/app" in err.value.message
        assert not BlobStore(tmp_path / "fresh").has(victim.digest)
    finally:
        data_path.write_bytes(original)


def test_corrupt_blob_in_the_store_is_refused(registry, sample, tmp_path):
    ref = _ref(registry, "corruptstore/app:1")
    remote.write(sample, ref)
    store = BlobStore(tmp_path / "local")
    remote.read(ref, store)
    victim = store.path(sample.layers[0].digest)
    victim.write_bytes(b"tampered")
    with pytest.raises(DigestMismatch) as err:
        remote.read(ref, store)
    assert str(victim) in err.value.message and str(sample.layers[0].digest) in err.value.message


def test_missing_tag_and_repository(registry, sample, tmp_path):
    remote.write(sample, _ref(registry, "present/app:1"))
    with pytest.raises(ImageNotFound, match="MANIFEST_UNKNOWN") as err:
        remote.read(_ref(registry, "present/app:nope"), BlobStore(tmp_path / "s"))
    assert err.value.hint
    assert not remote.exists(_ref(registry, "absent/app:1"))


def test_unreachable_registry(tmp_path):
    ref = parse(f"docker://127.0.0.1:{free_port()}/x/y:1")
    assert isinstance(ref, RegistryRef)
    with (
        RegistryClient(ref.registry, retry=RetryPolicy(attempts=2, base=0.01)) as client,
        pytest.raises(RegistryError, match="cannot reach registry") as err,
    ):
        remote.read(ref, BlobStore(tmp_path / "s"), client=client)
    assert "running" in (err.value.hint or "")


def test_basic_auth_with_docker_config(basic_registry, sample, tmp_path, monkeypatch):
    ref = _ref(basic_registry, "private/app:1")
    with pytest.raises(RegistryError, match="requires a login") as err:
        remote.write(sample, ref, client=RegistryClient(basic_registry.addr, credentials=None))
    assert "docker login" in (err.value.hint or "")
    with pytest.raises(RegistryError, match="401"):
        remote.write(
            sample,
            ref,
            client=RegistryClient(basic_registry.addr, credentials=Credentials(USER, "wrong")),
        )
    monkeypatch.setenv(
        "DOCKER_CONFIG", str(docker_config(tmp_path / "dc", basic_registry.addr, USER, PASSWORD))
    )
    assert remote.write(sample, ref) == sample.digest()
    assert remote.read(ref, BlobStore(tmp_path / "p")).digest() == sample.digest()


def test_bearer_token_auth(token_registry, sample, tmp_path):
    ref = _ref(token_registry, "tokens/app:1")
    with RegistryClient(token_registry.addr, credentials=Credentials(USER, PASSWORD)) as client:
        assert remote.write(sample, ref, client=client) == sample.digest()
    scopes = [r["scopes"] for r in token_registry.token_requests() if r["user"] == USER]
    assert ["repository:tokens/app:pull,push"] in scopes
    with RegistryClient(token_registry.addr, credentials=None) as anonymous:
        assert remote.read(ref, BlobStore(tmp_path / "p"), client=anonymous).digest() == (
            sample.digest()
        )
        with pytest.raises(RegistryError, match="401") as err:
            remote.push(sample, _ref(token_registry, "tokens/other:1"), client=anonymous)
        assert err.value.hint


# -- through faults ----------------------------------------------------------------------------


def test_push_and_pull_succeed_through_transient_faults(registry, sample, tmp_path):
    """503s, 429s, resets inside blob uploads and downloads, truncated and damaged bodies."""
    rules = [
        Rule(Respond(503), method="HEAD", path="/blobs/", times=2),
        Rule(Respond(429), method="POST", times=1),
        Rule(ResetRequest(after=500, forward=True), method="PATCH", skip=1, times=2),
        Rule(ResetRequest(after=100, forward=False), method="PUT", path="/blobs/uploads/"),
        Rule(DropResponse(), method="PUT", path="/blobs/uploads/", skip=2),
        Rule(Respond(500), method="PUT", path="/manifests/", times=2),
        Rule(Truncate(after=100), method="GET", path="/blobs/sha256:", times=2),
        Rule(Corrupt(), method="GET", path="/blobs/sha256:", times=1),
        Rule(ResetResponse(after=10), method="GET", path="/manifests/", times=1),
    ]
    options = RegistryOptions(chunk_size=1024, retry=FAST)  # the larger layers go in chunks
    with FaultProxy(registry.addr, rules) as proxy:
        ref = _ref(proxy, "faults/app:1")
        stats = TransferStats()
        assert remote.write(sample, ref, options=options, stats=stats) == sample.digest()
        pulled = remote.read(ref, BlobStore(tmp_path / "pulled"), options=options)
    assert pulled.digest() == sample.digest()
    pulled.validate(deep=True)
    used = {x.fault for x in proxy.faults()}
    assert used == {
        "Respond",
        "ResetRequest",
        "DropResponse",
        "Truncate",
        "Corrupt",
        "ResetResponse",
    }
    assert stats.blobs_uploaded == 4 and stats.bytes_sent > stats.bytes_uploaded
    checked = check_image(registry.addr, "faults/app", "1", tmp_path)
    assert checked.digest() == sample.digest()


def test_a_push_that_keeps_failing_leaves_no_tag(registry, sample, tmp_path):
    rules = [Rule(ResetRequest(after=100, forward=True), method="PUT", times=None)]
    with FaultProxy(registry.addr, rules) as proxy:
        ref = _ref(proxy, "faults/broken:1")
        with pytest.raises(RegistryError) as err:
            remote.write(sample, ref, options=RegistryOptions(retry=FAST))
    assert "upload blob sha256:" in err.value.message and err.value.hint
    direct = _ref(registry, "faults/broken:1")
    assert not remote.exists(direct)
    assert not remote.exists(direct.with_digest(sample.digest()))


def test_a_tag_appears_only_over_a_complete_image(registry, sample, tmp_path):
    """The tag PUT fails for good: the image is there by digest, complete, and untagged."""
    rules = [Rule(Respond(503), method="PUT", path="/manifests/release", times=None)]
    with FaultProxy(registry.addr, rules) as proxy, pytest.raises(RegistryError, match="503"):
        remote.write(
            sample, _ref(proxy, "faults/tagless:release"), options=RegistryOptions(retry=FAST)
        )
    assert not remote.exists(_ref(registry, "faults/tagless:release"))
    checked = check_image(registry.addr, "faults/tagless", str(sample.digest()), tmp_path)
    assert checked.digest() == sample.digest()


def test_a_wrong_digest_from_the_registry_is_named(registry, sample, tmp_path):
    remote.write(sample, _ref(registry, "faults/wrong:1"))
    victim = sample.layers[0]
    rules = [Rule(Corrupt(), method="GET", path=f"/blobs/{victim.digest}", times=None)]
    store = BlobStore(tmp_path / "s")
    with FaultProxy(registry.addr, rules) as proxy, pytest.raises(DigestMismatch) as err:
        remote.read(_ref(proxy, "faults/wrong:1"), store, options=RegistryOptions(retry=FAST))
    assert f"expected {victim.digest}" in err.value.message
    assert not store.has(victim.digest)


# -- auth registries: pull, push, chunked uploads and mounts -------------------------------------


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_auth_registries_pull_push_chunked_and_mount(kind, request, sample, store, tmp_path):
    reg = request.getfixturevalue(f"{kind}_registry")
    options = RegistryOptions(creds=Credentials(USER, PASSWORD), chunk_size=256, retry=FAST)
    base = _ref(reg, f"{kind}/base:1")
    assert remote.write(sample, base, options=options) == sample.digest()

    # The converted image shares the first two layers: they are mounted, not uploaded.
    extra = build_sample(store, tmp_path / "extra", marker=f"{kind} derived")
    derived = sample.with_layers([*sample.layers[:2], extra.layers[0]])
    derived = derived.with_config(derived.config.replace(labels={"derived": kind}))
    target = _ref(reg, f"{kind}/derived:1")
    stats = TransferStats()
    with FaultProxy(reg.addr) as proxy:
        through = _ref(proxy, f"{kind}/derived:1")
        remote.write(
            derived, through, options=options, mount_from=_ref(proxy, f"{kind}/base:1"), stats=stats
        )
    assert (stats.blobs_mounted, stats.blobs_uploaded) == (2, 2)
    assert stats.bytes_mounted == sample.layers[0].size + sample.layers[1].size
    mounts = [x for x in proxy.exchanges("POST") if "mount=" in x.target and x.status != 401]
    assert sorted(x.status for x in mounts) == [201, 201, 202, 202]
    assert extra.layers[0].size > 256 and proxy.exchanges("PATCH"), "the new layer went in chunks"

    pulled = remote.read(target, BlobStore(tmp_path / "pulled"), options=options)
    assert pulled.digest() == derived.digest()
    pulled.validate(deep=True)
    if kind == "token":
        asked = [r["scopes"] for r in reg.token_requests() if r["user"] == USER]
        mount = ["repository:token/derived:pull,push", "repository:token/base:pull"]
        assert asked.count(mount) == 1  # one token request for both repositories


def test_mount_from_another_registry_is_not_attempted(registry, sample):
    other = RegistryRef("registry.example.com", "lib/base", "1")
    stats = TransferStats()
    remote.write(sample, _ref(registry, "mount/elsewhere:1"), mount_from=other, stats=stats)
    assert (stats.blobs_mounted, stats.blobs_uploaded) == (0, 4)


class RecordingTap:
    """A BlobTap that keeps what it saw."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed: bool | None = None

    def write(self, chunk: bytes) -> None:
        assert self.closed is None, "bytes after close"
        self.data += chunk

    def close(self, *, complete: bool) -> None:
        assert self.closed is None, "closed twice"
        self.closed = complete


def test_taps_see_each_fetched_layer_whole(registry, sample, tmp_path):
    ref = _ref(registry, "taps/app:1")
    remote.write(sample, ref)
    taps: dict[str, RecordingTap] = {}

    def tap_for(desc: Descriptor) -> RecordingTap:
        taps[str(desc.digest)] = RecordingTap()
        return taps[str(desc.digest)]

    pulled = remote.read(ref, BlobStore(tmp_path / "pulled"), taps=tap_for)
    assert sorted(taps) == sorted(str(layer.digest) for layer in pulled.layers)
    for layer in pulled.layers:
        seen = taps[str(layer.digest)]
        assert seen.closed is True and bytes(seen.data) == layer.path.read_bytes()


def test_a_tap_is_dropped_when_a_download_starts_over(registry, sample, tmp_path):
    """A resumed download keeps its tap; one fetched again from the start (corrupt content)
    closes it incomplete, so that nothing is built from two copies of the first bytes."""
    ref = _ref(registry, "taps/faults:1")
    remote.write(sample, ref)
    big = max(sample.layers, key=lambda layer: layer.size)
    faults = {
        "resumed": Rule(Truncate(after=100), method="GET", path=f"/blobs/{big.digest}", times=1),
        "restarted": Rule(Corrupt(), method="GET", path=f"/blobs/{big.digest}", times=1),
    }
    for attempt, rule in faults.items():
        taps: list[RecordingTap] = []

        def tap_for(desc: Descriptor, taps: list[RecordingTap] = taps) -> RecordingTap | None:
            if desc.digest != big.digest:
                return None
            taps.append(RecordingTap())
            return taps[-1]

        with FaultProxy(registry.addr, [rule]) as proxy:
            pulled = remote.read(
                _ref(proxy, "taps/faults:1"),
                BlobStore(tmp_path / attempt),
                options=RegistryOptions(retry=FAST),
                taps=tap_for,
            )
            assert [f.fault for f in proxy.faults()] == [type(rule.fault).__name__]
        assert pulled.digest() == sample.digest()
        (seen,) = taps
        if attempt == "resumed":
            assert seen.closed is True and bytes(seen.data) == big.path.read_bytes()
        else:
            assert seen.closed is False


def test_early_uploads_are_waited_for_not_sent_again(registry, sample, tmp_path):
    ref = _ref(registry, "early/app:1")
    stats = TransferStats()
    with remote.EarlyUploads(ref, stats=stats) as early:
        early.offer(sample.layers[:2])
        early.offer(sample.layers[:1])  # offered twice, sent once
        digest = remote.push(sample, ref, stats=stats, early=early)
    assert digest == sample.digest()
    assert (stats.blobs_uploaded, stats.blobs_skipped) == (4, 0)  # 3 layers and the config
    remote.tag(ref, digest)
    assert check_image(registry.addr, "early/app", "1", tmp_path).digest() == sample.digest()


def test_a_failed_early_upload_fails_the_push(sample):
    ref = parse(f"docker://127.0.0.1:{free_port()}/early/down:1")
    assert isinstance(ref, RegistryRef)
    options = RegistryOptions(retry=FAST)
    with remote.EarlyUploads(ref, options=options) as early:
        early.offer(sample.layers)
        with pytest.raises(RegistryError):
            remote.push(sample, ref, options=options, early=early)


def test_a_failure_breaks_off_early_uploads_instead_of_waiting(sample):
    """A registry that accepts connections and never answers: leaving the context after a
    failure closes the connection at once rather than waiting for the upload to time out."""
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    ref = parse(f"docker://127.0.0.1:{server.getsockname()[1]}/early/stuck:1")
    assert isinstance(ref, RegistryRef)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), remote.EarlyUploads(ref) as early:
        early.offer(sample.layers[:1])
        while not held:
            time.sleep(0.01)
        raise KeyboardInterrupt
    assert time.monotonic() - started < 10  # the client's timeout is 30 s or more
    server.close()
