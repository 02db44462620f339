"""HTTP to one registry host: the scheme, redirects, authentication and retries, in one place.

Scheme: HTTPS, except that loopback hosts and ``tls_verify=False`` try HTTPS once and use plain
HTTP when the host does not speak TLS (as Docker does for loopback and skopeo for
``--tls-verify=false``). ``insecure=True`` forces HTTP and ``insecure=False`` HTTPS.

Redirects are followed here rather than by httpx so that a redirected upload can replay its
body; ``Authorization`` is dropped as soon as a redirect leaves the registry's origin (scheme,
host and port), as the distribution spec requires.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import httpx

from sconify.errors import RegistryError
from sconify.registry.auth import Authenticator
from sconify.registry.credentials import Credentials
from sconify.registry.errors import no_tls_error, raise_for_response, tls_error, transport_error
from sconify.registry.retry import RETRY_STATUSES, RetryableStatus, RetryPolicy
from sconify.registry.tls import probe_context, speaks_no_tls, tls_failure, tls_refused
from sconify.transports.refs import is_loopback

log = logging.getLogger(__name__)

T = TypeVar("T")

Body = bytes | Callable[[], Iterator[bytes]] | None

MAX_REDIRECTS = 10
#: Seconds the HTTPS probe of a loopback or unverified host may take before HTTP is assumed.
PROBE_TIMEOUT = 5.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = ("content-length", "content-type", "content-range", "transfer-encoding")


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and effective port: what must match for credentials to follow a redirect."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, port


class Connection:
    """Requests to one registry ``host`` (``host[:port]``) with auth, redirects and retries."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Callable[[], Credentials | None],
        retry: RetryPolicy,
        timeout: float,
        tls: ssl.SSLContext | bool = True,
        tls_verify: bool = True,
        insecure: bool | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.host = host
        self.retry = retry
        self.auth = Authenticator(host, credentials, retry)
        self._insecure = insecure
        self._probe = insecure is None and (is_loopback(host) or not tls_verify)
        self._base: str | None = None
        self._lock = threading.Lock()
        self._tls = tls
        self._transport = transport
        self.http = httpx.Client(
            follow_redirects=False,
            verify=tls,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
            headers={"User-Agent": "sconify"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    @property
    def base_url(self) -> str:
        """``http(s)://host``; the first use may probe whether the host speaks TLS."""
        with self._lock:
            if self._base is None:
                self._base = f"{self._scheme()}://{self.host}"
            return self._base

    def _scheme(self) -> str:
        if self._insecure is not None:
            return "http" if self._insecure else "https"
        if not self._probe:
            return "https"
        prober = self._prober()
        try:
            prober.get(f"https://{self.host}/v2/", timeout=PROBE_TIMEOUT).close()
        except httpx.TransportError as e:
            failure = tls_failure(e)
            if failure is not None and tls_refused(failure):
                return "https"  # TLS is spoken; the real request reports what is wrong with it
            log.debug("%s does not answer HTTPS (%s); using plain HTTP", self.host, e)
            return "http"
        finally:
            if prober is not self.http:
                prober.close()
        return "https"

    def _prober(self) -> httpx.Client:
        """The client that probes for TLS: one that does not load the system's CAs when it can.

        Most probed hosts speak plain HTTP, and then the CAs would be loaded for nothing.
        """
        if self._transport is not None or not isinstance(self._tls, ssl.SSLContext):
            return self.http
        context = probe_context(self._tls)
        if context is self._tls:
            return self.http
        return httpx.Client(follow_redirects=False, verify=context, headers=self.http.headers)

    def url(self, path: str) -> httpx.URL:
        """The absolute URL of an API path (``/v2/...``) or of a link the registry gave."""
        return httpx.URL(self.base_url).join(path)

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        body: Body,
        authorization: str | None,
    ) -> httpx.Response:
        """One request, following redirects; the response is open for streaming."""
        h = dict(headers)
        if authorization:
            h["Authorization"] = authorization
        home = origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            content = body() if callable(body) else body
            request = self.http.build_request(method, url, headers=h, content=content)
            try:
                response = self.http.send(request, stream=True)
            except httpx.TransportError as e:
                # Neither an untrusted certificate nor plain HTTP on the port gets better on retry.
                failure = tls_failure(e)
                name = self.host if origin(url) == home else url.netloc.decode()
                if failure is not None and tls_refused(failure):
                    raise tls_error(name, failure) from e
                if failure is not None and speaks_no_tls(failure):
                    raise no_tls_error(name, failure) from e
                raise
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            response.read()
            response.close()
            url = response.request.url.join(location)
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
                h = {k: v for k, v in h.items() if k.lower() not in _BODY_HEADERS}
            if origin(url) != home:
                h.pop("Authorization", None)
            log.debug("redirected to %s", url.copy_with(query=None))
        raise RegistryError(
            f"{self.host} redirected more than {MAX_REDIRECTS} times",
            hint="the registry or a proxy in front of it loops; check its configuration",
        )

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        scope: str,
        what: str,
        consume: Callable[[httpx.Response], T],
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Body = None,
        ok_statuses: frozenset[int] = frozenset(),
        retry: bool = True,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> T:
        """Send a request with auth and retries; ``consume`` reads the successful response.

        ``body`` is bytes or a factory of chunks (so a streamed upload restarts on each attempt).
        Statuses in ``ok_statuses`` reach ``consume`` instead of raising (e.g. 404 for HEAD).
        Exceptions in ``retry_on`` raised by ``consume`` are retried too (a digest mismatch).
        With ``retry=False`` this is one attempt whose transient failures propagate as
        :class:`httpx.TransportError` or :class:`RetryableStatus`, for a caller that recovers
        in its own way (uploads).
        """
        target = url if isinstance(url, httpx.URL) else self.url(url)
        if params:
            target = target.copy_merge_params(params)

        def attempt() -> T:
            response = self.send(method, target, headers or {}, body, self.auth.header(scope))
            try:
                if response.status_code == 401:
                    response.read()
                    authorization = self.auth.answer(self.http, response, scope)
                    response.close()
                    response = self.send(method, target, headers or {}, body, authorization)
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

        if not retry:
            return attempt()
        return self.run(what, attempt, retry_on)

    def run(
        self, what: str, attempt: Callable[[], T], retry_on: tuple[type[Exception], ...] = ()
    ) -> T:
        """Run ``attempt`` under the retry policy and turn what is left into sconify errors."""
        try:
            return self.retry.run(what, attempt, retry_on)
        except RetryableStatus as e:
            raise_for_response(e.response, what)
            raise
        except httpx.TransportError as e:
            raise transport_error(self.host, what, e) from e
