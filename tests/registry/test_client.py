"""The registry client against a real registry, and through a real flaky proxy for retries."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from sconify.canonical import compact_json
from sconify.errors import DigestMismatch, ImageNotFound, RegistryError
from sconify.image import BlobStore, Digest
from sconify.image import mediatypes as mt
from sconify.registry import RegistryClient, RegistryResponseError, RetryPolicy

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


def test_blob_upload_and_fetch(client, tmp_path):
    client.ping()
    data = b"blob content " * 100_000
    digest = Digest.of(data)
    assert not client.blob_exists("c/blobs", digest)
    (tmp_path / "blob").write_bytes(data)
    client.upload_file("c/blobs", digest, len(data), tmp_path / "blob")
    assert client.blob_exists("c/blobs", digest)
    store = BlobStore(tmp_path / "s")
    path = client.fetch_blob("c/blobs", digest, store, len(data))
    assert path.read_bytes() == data
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
    with pytest.raises(RegistryResponseError) as err:
        client.upload_blob("c/errors", Digest.of(b"other"), 4, lambda: io.BytesIO(b"data"))
    assert err.value.code == "DIGEST_INVALID"
    with pytest.raises(ImageNotFound, match="MANIFEST_UNKNOWN") as missing:
        client.get_manifest("c/errors", "nope")
    assert "tag or digest" in (missing.value.hint or "")
    with pytest.raises(ImageNotFound, match="NAME_UNKNOWN"):
        client.tags("c/never-pushed")


class Flaky:
    """A real HTTP proxy in a thread that fails the first ``failures`` times per request line."""

    def __init__(
        self,
        upstream: str,
        failures: int = 0,
        status: int = 503,
        drop: bool = False,
        tamper: bool = False,
    ):
        self.upstream = upstream
        self.tamper = tamper
        self.failures = failures
        self.status = status
        self.drop = drop
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                # Each upload session has its own URL; count them as one request line.
                key = f"{self.command} {path.split('/uploads/')[0]}/uploads/"
                if "/uploads/" not in path:
                    key = f"{self.command} {path}"
                with outer.lock:
                    outer.counts[key] = outer.counts.get(key, 0) + 1
                    fail = outer.counts[key] <= outer.failures
                if fail and outer.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                if fail:
                    payload = json.dumps(
                        {"errors": [{"code": "UNAVAILABLE", "message": "try later"}]}
                    ).encode()
                    self.send_response(outer.status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                reply = httpx.request(
                    self.command,
                    f"http://{outer.upstream}{self.path}",
                    headers=headers,
                    content=body,
                )
                self.send_response(reply.status_code)
                for k, v in reply.headers.items():
                    if k.lower() in ("content-length", "transfer-encoding", "connection"):
                        continue
                    if k.lower() == "location":
                        v = v.replace(outer.upstream, outer.addr)
                    self.send_header(k, v)
                content = reply.content
                if outer.tamper and self.command == "GET" and "/v2/" in path and content:
                    content = content[:-1] + bytes([content[-1] ^ 1])
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Flaky:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("status", "drop"), [(503, False), (429, False), (0, True)])
def test_transient_failures_are_retried(registry, tmp_path, status, drop):
    data = f"retry {status} {drop}".encode()
    with (
        Flaky(registry.addr, failures=2, status=status, drop=drop) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        digest = c.upload_bytes("c/retry", data)
        assert c.read_blob("c/retry", digest) == data
    assert proxy.counts[f"GET /v2/c/retry/blobs/{digest}"] == 3


def test_retries_are_bounded(registry):
    with (
        Flaky(registry.addr, failures=100) as proxy,
        RegistryClient(proxy.addr, credentials=None, retry=FAST) as c,
    ):
        with pytest.raises(RegistryResponseError) as err:
            c.get_manifest("c/bounded", "x")
        assert err.value.status == 503 and err.value.code == "UNAVAILABLE"
        assert "retry" in (err.value.hint or "")
    assert proxy.counts["GET /v2/c/bounded/manifests/x"] == FAST.attempts


def test_content_that_does_not_match_its_digest_is_refused(registry, tmp_path):
    """A registry (here: a proxy flipping a bit) serving other bytes than asked is caught."""
    with RegistryClient(registry.addr, credentials=None) as c:
        config = b"{}"
        c.upload_bytes("c/verify", config)
        manifest = _manifest(config, [])
        digest = c.put_manifest("c/verify", "t", manifest, mt.OCI_MANIFEST)
    with (
        Flaky(registry.addr, tamper=True) as proxy,
        RegistryClient(proxy.addr, credentials=None) as c,
    ):
        with pytest.raises(DigestMismatch, match=f"manifest .*@{digest} hashes to"):
            c.get_manifest("c/verify", str(digest))
        with pytest.raises(DigestMismatch, match=f"{digest} hashes to|expected {digest}"):
            c.get_manifest("c/verify", "t")  # checked against Docker-Content-Digest
        blob = Digest.of(config)
        with pytest.raises(DigestMismatch, match=f"expected {blob}"):
            c.fetch_blob("c/verify", blob, BlobStore(tmp_path / "s"), len(config))
        assert not BlobStore(tmp_path / "s").has(blob)


def test_plain_http_only_for_loopback():
    assert RegistryClient("localhost:5000").base_url == "http://localhost:5000"
    assert RegistryClient("127.0.0.1:5000").base_url == "http://127.0.0.1:5000"
    assert RegistryClient("[::1]:5000").base_url == "http://[::1]:5000"
    assert RegistryClient("registry.example.com").base_url == "https://registry.example.com"
    assert RegistryClient("10.1.2.3:5000").base_url == "https://10.1.2.3:5000"
    assert RegistryClient("10.1.2.3:5000", insecure=True).base_url == "http://10.1.2.3:5000"


def test_https_to_a_plain_registry_fails_clearly(registry):
    with (
        RegistryClient(registry.addr, insecure=False, retry=FAST) as c,
        pytest.raises(RegistryError, match="cannot reach registry"),
    ):
        c.ping()
