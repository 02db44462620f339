"""A client for one registry host speaking the OCI distribution protocol over httpx.

Loopback registries (``localhost``, ``127.0.0.0/8``, ``::1``) are spoken to over plain HTTP, all
others over HTTPS. Every request goes through the same path: a cached ``Authorization`` header,
one re-authentication on 401, and bounded retries on 429/5xx and connection failures. Blob bodies
stream in both directions; nothing larger than a manifest is held in memory.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TypeVar

import httpx

from sconify.errors import DigestMismatch, ImageError, RegistryError
from sconify.image import mediatypes as mt
from sconify.image.blobstore import CHUNK, BlobStore
from sconify.image.digest import Digest
from sconify.image.image import MAX_DOCUMENT_BYTES
from sconify.registry.auth import Authenticator, Credentials, load_credentials
from sconify.registry.errors import raise_for_response, unreachable
from sconify.registry.retry import RETRY_STATUSES, RetryableStatus, RetryPolicy
from sconify.transports.refs import is_loopback

log = logging.getLogger(__name__)

T = TypeVar("T")


_AUTO = object()


@dataclass(frozen=True)
class FetchedManifest:
    """Manifest or index bytes exactly as served, their media type and digest."""

    data: bytes
    media_type: str
    digest: Digest


class RegistryClient:
    """The distribution API of one registry host (``host[:port]``).

    ``credentials`` default to the Docker client config's entry for the host. ``insecure``
    forces plain HTTP (default: only for loopback hosts). ``transport`` is the httpx seam.
    """

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | object | None = _AUTO,
        insecure: bool | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.host = host
        plain = is_loopback(host) if insecure is None else insecure
        self.base_url = f"{'http' if plain else 'https'}://{host}"
        creds = load_credentials(host) if credentials is _AUTO else credentials
        if creds is not None and not isinstance(creds, Credentials):
            raise TypeError("credentials must be Credentials or None")
        self._auth = Authenticator(host, creds)
        self._retry = retry or RetryPolicy()
        self._http = httpx.Client(
            follow_redirects=True,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
            headers={"User-Agent": "sconify"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the one request path ------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        scope: str,
        what: str,
        consume: Callable[[httpx.Response], T],
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Callable[[], Iterator[bytes]] | bytes | None = None,
        ok_statuses: frozenset[int] = frozenset(),
        retry: bool = True,
    ) -> T:
        """Send a request with auth and retries; ``consume`` reads the successful response.

        ``body`` is bytes or a factory of chunks (so a streamed upload restarts on each attempt).
        Statuses in ``ok_statuses`` reach ``consume`` instead of raising (e.g. 404 for HEAD).
        With ``retry=False`` this is one attempt whose transient failures propagate, for a caller
        that retries a larger unit itself (see :meth:`upload_blob`).
        """
        target = url if isinstance(url, httpx.URL) else httpx.URL(self.base_url + url)
        if params:
            target = target.copy_merge_params(params)

        def send(authorization: str | None) -> httpx.Response:
            h = dict(headers or {})
            if authorization:
                h["Authorization"] = authorization
            content = body() if callable(body) else body
            request = self._http.build_request(method, target, headers=h, content=content)
            return self._http.send(request, stream=True)

        def attempt() -> T:
            response = send(self._auth.header(scope))
            try:
                if response.status_code == 401:
                    response.read()
                    authorization = self._auth.answer(self._http, response, scope)
                    response.close()
                    response = send(authorization)
                status = response.status_code
                if status in ok_statuses or response.is_success:
                    return consume(response)
                response.read()
                if status in RETRY_STATUSES:
                    raise RetryableStatus(response)
                raise_for_response(response, what)
                raise AssertionError("raise_for_response returned on an error")
            finally:
                response.close()

        return self._with_retries(what, attempt) if retry else attempt()

    def _with_retries(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` under the retry policy and turn what is left into sconify errors."""
        try:
            return self._retry.run(what, attempt)
        except RetryableStatus as e:
            raise_for_response(e.response, what)
            raise
        except httpx.TransportError as e:
            raise unreachable(self.host, e) from e

    # -- API -------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the host speaks the distribution API (``GET /v2/``), logging in if asked."""
        self._request(
            "GET", "/v2/", scope="registry:catalog:*", what=f"ping {self.host}", consume=_ignore
        )

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: tuple[str, ...] = mt.MANIFEST_ACCEPT,
    ) -> FetchedManifest:
        """Fetch a manifest or index by tag or digest; verify it against any digest known.

        A pull by digest checks the bytes against it; ``Docker-Content-Digest`` is checked too.
        """
        what = f"fetch manifest {self.host}/{repository}:{reference}"

        def consume(response: httpx.Response) -> FetchedManifest:
            data = _read_limited(response, MAX_DOCUMENT_BYTES, what)
            digest = Digest.of(data)
            expected = reference if reference.startswith("sha256:") else None
            header = response.headers.get("Docker-Content-Digest")
            if header and header.startswith("sha256:") and header != digest:
                expected = expected or header
            if expected is not None and digest != expected:
                raise DigestMismatch(
                    f"manifest {self.host}/{repository}@{expected} hashes to {digest}",
                    hint="the registry served other bytes than the digest names; do not trust it",
                )
            media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
            return FetchedManifest(data, media_type or _media_type_in(data), digest)

        return self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=_pull(repository),
            what=what,
            consume=consume,
            headers={"Accept": ", ".join(accept)},
        )

    def manifest_digest(self, repository: str, reference: str) -> Digest | None:
        """``HEAD`` a manifest: its digest, or None when absent."""

        def consume(response: httpx.Response) -> Digest | None:
            if response.status_code == 404:
                return None
            header = response.headers.get("Docker-Content-Digest")
            if header:
                return Digest.parse(header)
            return self.get_manifest(repository, reference).digest

        return self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=_pull(repository),
            what=f"check manifest {self.host}/{repository}:{reference}",
            consume=consume,
            headers={"Accept": ", ".join(mt.MANIFEST_ACCEPT)},
            ok_statuses=frozenset({404}),
        )

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        """Store manifest bytes under a digest or tag; return the digest the registry confirms."""
        digest = Digest.of(data)
        what = f"push manifest {self.host}/{repository}:{reference}"

        def consume(response: httpx.Response) -> Digest:
            header = response.headers.get("Docker-Content-Digest")
            if header and header != digest:
                raise RegistryError(
                    f"{what}: the registry stored it as {header}, expected {digest}",
                    hint="the registry rewrote the manifest; it cannot keep digests stable",
                )
            return digest

        return self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=_push(repository),
            what=what,
            consume=consume,
            headers={"Content-Type": media_type},
            body=data,
        )

    def blob_exists(self, repository: str, digest: Digest, *, push: bool = False) -> bool:
        """``HEAD`` a blob: whether the repository has it."""
        return self._request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scope=_push(repository) if push else _pull(repository),
            what=f"check blob {self.host}/{repository}@{digest}",
            consume=lambda r: r.status_code != 404,
            ok_statuses=frozenset({404}),
        )

    def fetch_blob(
        self, repository: str, digest: Digest, store: BlobStore, size: int | None = None
    ) -> Path:
        """Stream a blob into ``store``, verified against ``digest`` (and ``size``)."""
        source = f"blob {digest} from {self.host}/{repository}"

        def consume(response: httpx.Response) -> Path:
            store.put_stream(
                response.iter_raw(CHUNK), expected=digest, expected_size=size, source=source
            )
            return store.path(digest)

        return self._request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=_pull(repository),
            what=f"fetch {source}",
            consume=consume,
        )

    def read_blob(self, repository: str, digest: Digest, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
        """Fetch a small blob (a config) into memory, verified against ``digest``."""
        what = f"fetch blob {self.host}/{repository}@{digest}"

        def consume(response: httpx.Response) -> bytes:
            data = _read_limited(response, limit, what)
            if Digest.of(data) != digest:
                raise DigestMismatch(
                    f"{what}: content hashes to {Digest.of(data)}, expected {digest}",
                    hint="the registry served corrupt content; retry or check the registry",
                )
            return data

        return self._request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=_pull(repository),
            what=what,
            consume=consume,
        )

    def upload_blob(
        self, repository: str, digest: Digest, size: int, opener: Callable[[], BinaryIO]
    ) -> None:
        """Upload a blob monolithically: ``POST`` a session, then ``PUT ?digest=`` the bytes.

        ``opener`` opens the blob afresh for each attempt; it is streamed, never read whole.
        """
        what = f"upload blob {digest} to {self.host}/{repository}"

        def body() -> Iterator[bytes]:
            with opener() as f:
                while chunk := f.read(CHUNK):
                    yield chunk

        def one_upload() -> None:
            # A failed PUT may leave partial data in its session, so each attempt starts anew.
            location = self._request(
                "POST",
                f"/v2/{repository}/blobs/uploads/",
                scope=_push(repository),
                what=f"start {what}",
                consume=lambda r: _location(r, what),
                headers={"Content-Length": "0"},
                retry=False,
            )
            self._request(
                "PUT",
                location,
                scope=_push(repository),
                what=what,
                consume=_ignore,
                params={"digest": str(digest)},
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(size),
                },
                body=body,
                retry=False,
            )

        self._with_retries(what, one_upload)

    def upload_file(self, repository: str, digest: Digest, size: int, path: Path) -> None:
        """Upload the file at ``path`` as blob ``digest``."""

        def opener() -> BinaryIO:
            return Path(path).open("rb")

        self.upload_blob(repository, digest, size, opener)

    def upload_bytes(self, repository: str, data: bytes) -> Digest:
        """Upload a small in-memory blob (a config); return its digest."""
        digest = Digest.of(data)
        self.upload_blob(repository, digest, len(data), lambda: io.BytesIO(data))
        return digest

    def tags(self, repository: str) -> list[str]:
        """List the repository's tags (following ``Link`` pagination)."""
        out: list[str] = []
        url: str | httpx.URL = f"/v2/{repository}/tags/list"
        while True:

            def consume(response: httpx.Response) -> tuple[list[str], str | None]:
                response.read()
                body = response.json()
                return list(body.get("tags") or []), response.links.get("next", {}).get("url")

            page, nxt = self._request(
                "GET",
                url,
                scope=_pull(repository),
                what=f"list tags of {repository}",
                consume=consume,
            )
            out.extend(page)
            if not nxt:
                return out
            url = httpx.URL(self.base_url).join(nxt)


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _ignore(response: httpx.Response) -> None:
    return None


def _location(response: httpx.Response, what: str) -> httpx.URL:
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(
            f"{what}: the registry started an upload without a Location",
            hint="the registry does not follow the distribution spec",
        )
    # A relative Location is resolved against the request; its query (upload state) is kept.
    return response.request.url.join(location)


def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > limit:
            raise RegistryError(
                f"{what}: larger than {limit} bytes",
                hint="the registry served an oversized document",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type_in(data: bytes) -> str:
    try:
        value = json.loads(data).get("mediaType")
    except (ValueError, AttributeError) as e:
        raise ImageError("manifest is not a JSON object", hint="the registry served junk") from e
    return str(value or "")
