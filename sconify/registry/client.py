"""A client for one registry host speaking the OCI distribution protocol over httpx.

Every request goes through :class:`~sconify.registry.connection.Connection` (scheme, redirects,
auth, retries). Blob bodies stream in both directions; nothing larger than a manifest is held
in memory. Everything fetched is verified against its digest before it is returned or stored.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import httpx

from sconify.errors import DigestMismatch, ImageError, RegistryError
from sconify.image import mediatypes as mt
from sconify.image.blobstore import CHUNK, BlobStore, BlobTap, BlobWriter
from sconify.image.digest import Digest
from sconify.image.image import MAX_DOCUMENT_BYTES
from sconify.registry import credentials as creds_lookup
from sconify.registry.auth import pull_scope, push_scope
from sconify.registry.connection import Connection
from sconify.registry.credentials import Credentials
from sconify.registry.options import RegistryOptions
from sconify.registry.retry import RetryPolicy
from sconify.registry.stats import TransferStats
from sconify.registry.tls import cert_dir_for, ssl_context
from sconify.registry.upload import BlobUpload, Outcome
from sconify.transports.refs import is_loopback

log = logging.getLogger(__name__)

_AUTO = object()
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class FetchedManifest:
    """Manifest or index bytes exactly as served, their media type and digest."""

    data: bytes
    media_type: str
    digest: Digest


class RegistryClient:
    """The distribution API of one registry host (``host[:port]``).

    ``options`` carries the skopeo-like settings (credentials, auth file, certificates, TLS
    verification, retries, chunk size). The keyword arguments override single settings:
    ``credentials`` (``None`` for anonymous), ``insecure`` (``True`` forces plain HTTP,
    ``False`` HTTPS), ``retry``, ``timeout``; ``transport`` is the httpx seam.
    """

    def __init__(
        self,
        host: str,
        *,
        options: RegistryOptions | None = None,
        credentials: Credentials | object | None = _AUTO,
        insecure: bool | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.host = host
        self.options = opts = options or RegistryOptions()
        if credentials is _AUTO:

            def resolve() -> Credentials | None:
                return creds_lookup.resolve(
                    host, creds=opts.creds, no_creds=opts.no_creds, authfile=opts.authfile
                )

        elif credentials is None or isinstance(credentials, Credentials):
            fixed = credentials

            def resolve() -> Credentials | None:
                return fixed

        else:
            raise TypeError("credentials must be Credentials or None")
        directory = cert_dir_for(host, opts.cert_dir, opts.certs_d)
        tls = ssl_context(directory, verify=opts.tls_verify)
        if insecure is None and directory is not None and is_loopback(host):
            # Certificates configured for a loopback registry: it speaks TLS, do not probe.
            insecure = False
        self._conn = Connection(
            host,
            credentials=resolve,
            retry=retry or opts.retry,
            timeout=timeout if timeout is not None else opts.timeout,
            tls=tls,
            tls_verify=opts.tls_verify,
            insecure=insecure,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        """``http://host`` or ``https://host``, as the registry is spoken to."""
        return self._conn.base_url

    def close(self) -> None:
        """Close the connection pool."""
        self._conn.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- manifests ---------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the host speaks the distribution API (``GET /v2/``), logging in if asked."""
        self._conn.request(
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
        A mismatch is retried (the bytes may have been damaged on the way), then reported.
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

        return self._conn.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=pull_scope(repository),
            what=what,
            consume=consume,
            headers={"Accept": ", ".join(accept)},
            retry_on=(DigestMismatch,),
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

        return self._conn.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=pull_scope(repository),
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

        return self._conn.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=push_scope(repository),
            what=what,
            consume=consume,
            headers={"Content-Type": media_type},
            body=data,
        )

    def tags(self, repository: str) -> list[str]:
        """List the repository's tags (following ``Link`` pagination)."""
        out: list[str] = []
        url: str | httpx.URL = f"/v2/{repository}/tags/list"
        while True:

            def consume(response: httpx.Response) -> tuple[list[str], str | None]:
                response.read()
                body = response.json()
                return list(body.get("tags") or []), response.links.get("next", {}).get("url")

            page, nxt = self._conn.request(
                "GET",
                url,
                scope=pull_scope(repository),
                what=f"list tags of {repository}",
                consume=consume,
            )
            out.extend(page)
            if not nxt:
                return out
            url = self._conn.url(nxt)

    # -- blobs -------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: Digest, *, push: bool = False) -> bool:
        """``HEAD`` a blob: whether the repository has it."""
        return self._conn.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scope=push_scope(repository) if push else pull_scope(repository),
            what=f"check blob {self.host}/{repository}@{digest}",
            consume=lambda r: r.status_code != 404,
            ok_statuses=frozenset({404}),
        )

    def fetch_blob(
        self,
        repository: str,
        digest: Digest,
        store: BlobStore,
        size: int | None = None,
        *,
        stats: TransferStats | None = None,
        tap: BlobTap | None = None,
    ) -> Path:
        """Stream a blob into ``store``, verified against ``digest`` (and ``size``).

        A transfer that breaks off resumes with a ``Range`` request where it stopped (when the
        registry honours it); content that does not match the digest is fetched again, then
        reported naming the digest. ``tap`` sees the bytes as they arrive; it is dropped
        (closed incomplete) if the transfer has to start again from the beginning.
        """
        source = f"blob {digest} from {self.host}/{repository}"
        partial: list[BlobWriter] = []
        taps = [tap] if tap is not None else []
        tapped = [False]  # whether the tap saw bytes of an earlier attempt

        def attempt_headers() -> dict[str, str]:
            # Blobs are already compressed; identity keeps byte offsets meaningful for Range.
            headers = {"Accept-Encoding": "identity"}
            have = partial[0].size if partial else 0
            if have > 0 and (size is None or have < size):
                headers["Range"] = f"bytes={have}-"
            return headers

        def consume(response: httpx.Response) -> Path:
            have = partial[0].size if partial else 0
            if not (response.status_code == 206 and _resumes_at(response, have)):
                if partial:
                    partial.pop().abort()
                if tapped[0]:
                    while taps:
                        taps.pop().close(complete=False)
                partial.append(store.writer(source))
            writer = partial[0]
            for chunk in response.iter_raw(CHUNK):
                writer.write(chunk)
                for seeing in taps:
                    seeing.write(chunk)
                    tapped[0] = True
                if stats is not None:
                    stats.downloaded(len(chunk))
                if size is not None and writer.size > size:
                    partial.pop().abort()
                    raise DigestMismatch(
                        f"{source}: more than the expected {size} bytes (expected {digest})",
                        hint="the registry sent more data than the descriptor says",
                    )
            partial.pop().commit(digest, size)
            while taps:
                taps.pop().close(complete=True)
            if stats is not None:
                stats.downloaded(0, blob_done=True)
            return store.path(digest)

        def attempt() -> Path:
            return self._conn.request(
                "GET",
                f"/v2/{repository}/blobs/{digest}",
                scope=pull_scope(repository),
                what=f"fetch {source}",
                consume=consume,
                headers=attempt_headers(),
                retry=False,
            )

        try:
            return self._conn.run(f"fetch {source}", attempt, (DigestMismatch,))
        finally:
            for writer in partial:
                writer.abort()
            for seeing in taps:
                seeing.close(complete=False)

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

        return self._conn.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=pull_scope(repository),
            what=what,
            consume=consume,
            retry_on=(DigestMismatch,),
        )

    def upload_blob(
        self,
        repository: str,
        digest: Digest,
        size: int,
        opener: Callable[[], BinaryIO],
        *,
        mount_from: str | None = None,
        stats: TransferStats | None = None,
    ) -> Outcome:
        """Upload a blob (or mount it from ``mount_from``, a repository of this registry).

        Blobs up to the chunk size go in one ``PUT``, larger ones in resumable ``PATCH`` chunks.
        ``opener`` opens the blob afresh (seekable) whenever bytes must be (re)sent; it is
        streamed, never read whole. Existence is not checked first: see :meth:`blob_exists`.
        """
        return BlobUpload(
            self._conn,
            repository,
            digest,
            size,
            opener,
            chunk_size=self.options.chunk_size,
            mount_from=mount_from if mount_from != repository else None,
            stats=stats,
        ).run()

    def upload_file(
        self,
        repository: str,
        digest: Digest,
        size: int,
        path: Path,
        *,
        mount_from: str | None = None,
        stats: TransferStats | None = None,
    ) -> Outcome:
        """Upload the file at ``path`` as blob ``digest``."""

        def opener() -> BinaryIO:
            return Path(path).open("rb")

        return self.upload_blob(
            repository, digest, size, opener, mount_from=mount_from, stats=stats
        )

    def upload_bytes(
        self, repository: str, data: bytes, *, stats: TransferStats | None = None
    ) -> Digest:
        """Upload a small in-memory blob (a config); return its digest."""
        digest = Digest.of(data)
        self.upload_blob(repository, digest, len(data), lambda: io.BytesIO(data), stats=stats)
        return digest


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    """Whether a 206 answer continues exactly at ``offset``."""
    m = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
    return m is not None and int(m.group(1)) == offset


def _ignore(response: httpx.Response) -> None:
    return None


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
