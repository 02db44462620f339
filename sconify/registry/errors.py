"""Turning registry HTTP answers into :class:`RegistryError` with the registry's error code."""

from __future__ import annotations

import json
import ssl

import httpx

from sconify.errors import ImageNotFound, RegistryError, SconifyError
from sconify.registry.tls import speaks_no_tls, tls_failure, tls_refused

_HINTS = {
    "UNAUTHORIZED": "log in: --creds USER:PASS, --authfile FILE, or 'docker login HOST'"
    " (~/.docker/config.json)",
    "DENIED": "the credentials lack access to this repository; check the account's permissions",
    "NAME_UNKNOWN": "check the repository name",
    "NAME_INVALID": "repository names are lowercase, e.g. localhost:5000/team/app",
    "MANIFEST_UNKNOWN": "check the tag or digest (skopeo list-tags docker://REPO lists tags)",
    "MANIFEST_INVALID": "the registry rejected the manifest; it may not support this media type",
    "MANIFEST_BLOB_UNKNOWN": "a blob the manifest names is missing; push the blobs first",
    "BLOB_UNKNOWN": "the blob is not in this repository; push it first",
    "BLOB_UPLOAD_UNKNOWN": "the upload session expired; retry the push",
    "BLOB_UPLOAD_INVALID": "the upload was rejected; retry the push",
    "DIGEST_INVALID": "the uploaded bytes do not match their digest; the local blob may be corrupt",
    "SIZE_INVALID": "the uploaded size does not match the descriptor",
    "TOOMANYREQUESTS": "the registry is rate limiting; wait and retry",
    "UNSUPPORTED": "the registry does not support this operation",
}


class RegistryResponseError(RegistryError):
    """A registry answered with an error; ``code`` is its error code (or ``HTTP_<status>``)."""

    def __init__(self, message: str, *, status: int, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


def error_code(response: httpx.Response) -> tuple[str, str]:
    """Return the first ``(code, message)`` of a distribution error body, or the HTTP status."""
    try:
        body = json.loads(response.content or b"{}")
        first = body["errors"][0]
        return str(first.get("code") or f"HTTP_{response.status_code}"), str(
            first.get("message") or ""
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return f"HTTP_{response.status_code}", response.reason_phrase


def raise_for_response(response: httpx.Response, what: str) -> None:
    """Raise a :class:`SconifyError` for an error response; ``what`` says what was attempted.

    A missing manifest or repository raises :class:`ImageNotFound`; every other failure a
    :class:`RegistryResponseError` carrying the registry's code and a hint.
    """
    if response.is_success:
        return
    if not response.is_stream_consumed:
        response.read()
    code, message = error_code(response)
    status = response.status_code
    text = f"{what}: {status} {code}" + (f" ({message})" if message else "")
    if status == 404 and code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "HTTP_404"):
        raise ImageNotFound(text, hint=_HINTS.get(code, "check the image name and tag"))
    hint = _HINTS.get(code)
    if hint is None:
        if status == 401:
            hint = _HINTS["UNAUTHORIZED"]
        elif status == 403:
            hint = _HINTS["DENIED"]
        elif status >= 500:
            hint = "the registry failed; check its logs and retry"
        else:
            hint = "check the image reference and the registry"
    raise RegistryResponseError(text, status=status, code=code, hint=hint)


def unreachable(host: str, error: Exception) -> SconifyError:
    """Return the error for a registry that cannot be reached at all."""
    return RegistryError(
        f"cannot reach registry {host}: {error}",
        hint="check the host and port, and that the registry is running"
        " (loopback registries may use plain HTTP, others need HTTPS or --tls-verify=false)",
    )


def transport_error(host: str, what: str, error: httpx.TransportError) -> SconifyError:
    """Return the error for a request whose connection failed (after any retries)."""
    tls = tls_failure(error)
    if tls is not None and tls_refused(tls):
        return tls_error(host, tls)
    if tls is not None and speaks_no_tls(tls):
        return no_tls_error(host, tls)
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return unreachable(host, error)
    return RegistryError(
        f"{what}: the connection to {host} failed: {error or type(error).__name__}",
        hint="the network or the registry dropped the transfer repeatedly; retry later",
    )


def no_tls_error(host: str, error: ssl.SSLError) -> SconifyError:
    """Return the error for an HTTPS request to a server that answers in plain HTTP."""
    return RegistryError(
        f"registry {host} does not speak TLS (HTTPS): {getattr(error, 'reason', None) or error}",
        hint="for a plain-HTTP registry give --tls-verify=false (only loopback registries get"
        " plain HTTP without it)",
    )


def tls_error(host: str, error: ssl.SSLError) -> SconifyError:
    """Return the error for a failed TLS handshake with ``host``."""
    reason = getattr(error, "reason", None) or str(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or reason
        hint = (
            f"trust the registry's CA: put it as *.crt in --cert-dir or in"
            f" /etc/containers/certs.d/{host}/ (or /etc/docker/certs.d/{host}/);"
            " or skip verification with --tls-verify=false"
        )
        return RegistryError(f"TLS certificate of {host} not trusted: {detail}", hint=hint)
    return RegistryError(
        f"TLS handshake with {host} failed: {reason}",
        hint="if the registry asks for a client certificate, put NAME.cert and NAME.key in"
        f" --cert-dir or /etc/containers/certs.d/{host}/",
    )
