"""Blob uploads: cross-repository mount, monolithic ``PUT``, chunked ``PATCH`` with resume.

One :class:`BlobUpload` moves one blob. It starts an upload session (``POST``, asking for a mount
when another repository is known to hold the blob), then sends the blob in one ``PUT`` when it
fits in a chunk, else in ``PATCH`` chunks with ``Content-Range`` and a closing ``PUT ?digest=``.

After a failure (5xx, 429, a dropped connection, a 416) it asks the registry where the upload
stands (``GET`` on the session: ``Range: 0-<last byte>``, or the 416's own ``Range``) and
resumes from there, re-reading the blob at that offset. A registry that lost the session
(distribution 2.x discards a session that received part of a chunk) gets a new one; before that,
a ``HEAD`` checks whether the blob arrived anyway (a closing ``PUT`` whose answer was lost).
Failures in a row are bounded by the retry policy's attempts; only progress beyond the furthest
offset ever confirmed resets the count.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

import httpx

from sconify.errors import RegistryError
from sconify.image.blobstore import CHUNK
from sconify.image.digest import Digest
from sconify.registry.auth import mount_scope, push_scope
from sconify.registry.connection import Connection
from sconify.registry.errors import error_code, raise_for_response, transport_error
from sconify.registry.retry import RetryableStatus
from sconify.registry.stats import TransferStats

log = logging.getLogger(__name__)

_RANGE = re.compile(r"^(?:bytes=)?(\d+)-(\d+)$")
#: Error codes after which an upload session is gone or unusable: start a new one.
_SESSION_LOST = frozenset(
    {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "DIGEST_INVALID", "SIZE_INVALID", "HTTP_404"}
)


class Outcome(enum.Enum):
    """How a blob reached the repository."""

    UPLOADED = "uploaded"
    MOUNTED = "mounted"


class _SessionLost(Exception):
    """The registry no longer knows the session (or refused its content): start anew."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _Resync(Exception):
    """The registry refused our offset (416); ``offset`` is where it stands, when it said."""

    def __init__(self, offset: int | None, location: httpx.URL | None) -> None:
        super().__init__("upload offset refused")
        self.offset = offset
        self.location = location


def _range_end(response: httpx.Response) -> int | None:
    """The last byte offset of a ``Range: 0-<end>`` header, if present and well formed."""
    m = _RANGE.match(response.headers.get("Range", "").strip())
    return int(m.group(2)) if m else None


def _location(response: httpx.Response) -> httpx.URL | None:
    # A relative Location is resolved against the request; its query (upload state) is kept.
    location = response.headers.get("Location")
    return response.request.url.join(location) if location else None


class BlobUpload:
    """Upload one blob of ``size`` bytes, read through ``opener``, to ``repository``."""

    def __init__(
        self,
        conn: Connection,
        repository: str,
        digest: Digest,
        size: int,
        opener: Callable[[], BinaryIO],
        *,
        chunk_size: int,
        mount_from: str | None = None,
        stats: TransferStats | None = None,
    ) -> None:
        self.conn = conn
        self.repository = repository
        self.digest = digest
        self.size = size
        self.opener = opener
        self.chunk_size = chunk_size
        self.mount_from = mount_from
        self.stats = stats
        self.what = f"upload blob {digest} to {conn.host}/{repository}"

    # -- the state machine -------------------------------------------------------------------

    def run(self) -> Outcome:
        """Upload (or mount) the blob; raise a :class:`RegistryError` when it cannot be done."""
        failures = 0
        furthest = 0
        session: httpx.URL | None = None
        offset = 0
        chunk = self.chunk_size
        recover = False
        while True:
            try:
                if recover:
                    recover = False
                    if session is not None and self.size > chunk:
                        session, offset = self._where(session, offset)
                    else:
                        session = None
                    if session is None and self._present():
                        log.info("%s: the blob arrived despite the failure", self.what)
                        return self._done(Outcome.UPLOADED)
                if session is None:
                    session, mounted, min_chunk = self._start()
                    if mounted:
                        return self._done(Outcome.MOUNTED)
                    offset = 0
                    chunk = max(self.chunk_size, min_chunk)
                if self.size <= chunk:
                    self._put(session, whole=True)
                    return self._done(Outcome.UPLOADED)
                while offset < self.size:
                    end = min(offset + chunk, self.size) - 1
                    session, offset = self._patch(session, offset, end)
                    if offset > furthest:
                        furthest, failures = offset, 0
                self._put(session, whole=False)
                return self._done(Outcome.UPLOADED)
            except _Resync as e:
                failures = self._failed(failures, e)
                if e.offset is not None:
                    offset = e.offset
                    session = e.location or session
                else:
                    recover = True
            except _SessionLost as e:
                failures = self._failed(failures, e, e.response)
                session, recover = None, True
            except (httpx.TransportError, RetryableStatus) as e:
                response = e.response if isinstance(e, RetryableStatus) else None
                failures = self._failed(failures, e, response)
                # Without a session nothing was sent: just start one again.
                recover = session is not None

    def _failed(
        self, failures: int, error: Exception, response: httpx.Response | None = None
    ) -> int:
        """Count a failure; raise the final error when the attempts are spent, else wait."""
        policy = self.conn.retry
        failures += 1
        if failures >= policy.attempts:
            if response is not None:
                raise_for_response(response, self.what)
            if isinstance(error, httpx.TransportError):
                raise transport_error(self.conn.host, self.what, error) from error
            raise RegistryError(
                f"{self.what}: the registry kept refusing the upload offset",
                hint="the registry's upload sessions misbehave; retry the push later",
            ) from error
        wait = policy.delay(failures - 1, response)
        log.info("%s: %s, recovering in %.2fs", self.what, error, wait)
        time.sleep(wait)
        return failures

    def _done(self, outcome: Outcome) -> Outcome:
        if self.stats is not None:
            if outcome is Outcome.MOUNTED:
                self.stats.mounted(self.size)
            else:
                self.stats.uploaded(self.size)
        return outcome

    # -- the requests ------------------------------------------------------------------------

    def _start(self) -> tuple[httpx.URL, bool, int]:
        """``POST`` a session (with a mount when possible): (location, mounted, min chunk)."""
        params: dict[str, str] = {}
        scope = push_scope(self.repository)
        if self.mount_from:
            params = {"mount": str(self.digest), "from": self.mount_from}
            scope = mount_scope(self.repository, self.mount_from)

        def consume(response: httpx.Response) -> tuple[httpx.URL, bool, int]:
            location = _location(response)
            if response.status_code == 201 and self.mount_from:
                log.debug("mounted %s from %s", self.digest, self.mount_from)
                return location or response.request.url, True, 0
            if location is None:
                raise RegistryError(
                    f"{self.what}: the registry started an upload without a Location",
                    hint="the registry does not follow the distribution spec",
                )
            minimum = response.headers.get("OCI-Chunk-Min-Length", "")
            return location, False, int(minimum) if minimum.isdigit() else 0

        return self.conn.request(
            "POST",
            f"/v2/{self.repository}/blobs/uploads/",
            scope=scope,
            what=f"start {self.what}",
            consume=consume,
            params=params,
            headers={"Content-Length": "0"},
            retry=False,
        )

    def _body(self, start: int, length: int) -> Callable[[], Iterator[bytes]]:
        def chunks() -> Iterator[bytes]:
            with self.opener() as f:
                f.seek(start)
                left = length
                while left > 0:
                    piece = f.read(min(CHUNK, left))
                    if not piece:
                        raise RegistryError(
                            f"{self.what}: the local blob ended {left} bytes early",
                            hint="the blob changed on disk during the push; convert again",
                        )
                    left -= len(piece)
                    if self.stats is not None:
                        self.stats.sent(len(piece))
                    yield piece

        return chunks

    def _patch(self, session: httpx.URL, start: int, end: int) -> tuple[httpx.URL, int]:
        """Send bytes ``start..end``; return the next location and the registry's offset."""

        def consume(response: httpx.Response) -> tuple[httpx.URL, int]:
            status = response.status_code
            if status == 416:
                response.read()
                last = _range_end(response)
                raise _Resync(None if last is None else last + 1, _location(response))
            if not response.is_success:
                self._lost_or_raise(response)
            last = _range_end(response)
            offset = end + 1 if last is None else last + 1
            if not start < offset <= end + 1:
                raise RegistryError(
                    f"{self.what}: after bytes {start}-{end} the registry reports"
                    f" Range {response.headers.get('Range')}",
                    hint="the registry's chunked uploads misbehave",
                )
            return _location(response) or session, offset

        return self.conn.request(
            "PATCH",
            session,
            scope=push_scope(self.repository),
            what=self.what,
            consume=consume,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{end}",
                "Content-Length": str(end - start + 1),
            },
            body=self._body(start, end - start + 1),
            ok_statuses=frozenset({400, 404, 416}),
            retry=False,
        )

    def _put(self, session: httpx.URL, *, whole: bool) -> None:
        """Close the session with ``PUT ?digest=``, carrying the whole blob when ``whole``."""

        def consume(response: httpx.Response) -> None:
            if not response.is_success:
                self._lost_or_raise(response)
            stored = response.headers.get("Docker-Content-Digest")
            if stored and stored != self.digest:
                raise RegistryError(
                    f"{self.what}: the registry stored it as {stored}",
                    hint="the registry changed the content; do not use it",
                )

        headers = {"Content-Type": "application/octet-stream"}
        headers["Content-Length"] = str(self.size if whole else 0)
        self.conn.request(
            "PUT",
            session,
            scope=push_scope(self.repository),
            what=self.what,
            consume=consume,
            params={"digest": str(self.digest)},
            headers=headers,
            body=self._body(0, self.size) if whole else b"",
            ok_statuses=frozenset({400, 404}),
            retry=False,
        )

    def _where(self, session: httpx.URL, confirmed: int) -> tuple[httpx.URL | None, int]:
        """Ask where the session stands: (location, offset), or (None, 0) when it is gone."""

        def consume(response: httpx.Response) -> tuple[httpx.URL | None, int]:
            if not response.is_success:
                response.read()
                if error_code(response)[0] in _SESSION_LOST or response.status_code == 404:
                    return None, 0
                self._lost_or_raise(response)
            last = _range_end(response)
            # distribution answers 0-0 both for no byte and for one byte received.
            if last is None or last >= self.size or (last == 0 and confirmed > 1):
                return None, 0
            offset = 0 if last == 0 and confirmed == 0 else last + 1
            log.info("%s: the registry holds %d bytes; resuming there", self.what, offset)
            return _location(response) or session, offset

        return self.conn.request(
            "GET",
            session,
            scope=push_scope(self.repository),
            what=f"check {self.what}",
            consume=consume,
            ok_statuses=frozenset({400, 404}),
            retry=False,
        )

    def _present(self) -> bool:
        return self.conn.request(
            "HEAD",
            f"/v2/{self.repository}/blobs/{self.digest}",
            scope=push_scope(self.repository),
            what=f"check blob {self.conn.host}/{self.repository}@{self.digest}",
            consume=lambda r: r.status_code != 404,
            ok_statuses=frozenset({404}),
            retry=False,
        )

    def _lost_or_raise(self, response: httpx.Response) -> None:
        response.read()
        if error_code(response)[0] in _SESSION_LOST or response.status_code == 404:
            raise _SessionLost(response)
        raise_for_response(response, self.what)
