"""The CAS client: sessions over mutual TLS, the CAS pinned by its key hash.

::

    identity, _ = Identity.load_or_create()
    with CasClient("127.0.0.1:8081", identity=identity, pinned_key_hash=None) as cas:
        h = cas.create_session(yaml_text)

On first contact the CAS certificate's key hash is checked against ``pinned_key_hash`` (or the
pin recorded for that address, or recorded now: trust on first use). The identity is enrolled
once per CAS (``POST /v1/identities``) and its certificate cached.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from sconify.cas import pinning
from sconify.cas.identity import Identity
from sconify.cas.schema import CasVersion, SessionRecord
from sconify.errors import CasRefused, ServiceError, SessionError
from sconify.session import load_session

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 8081


def split_address(address: str, default_port: int = DEFAULT_API_PORT) -> tuple[str, int]:
    """``host[:port]`` (or ``https://host:port``) -> (host, port); IPv6 as ``[::1]:port``."""
    text = address.removeprefix("https://").rstrip("/")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ServiceError(
            f"{address!r} is not host:port", hint="pass e.g. --cas 127.0.0.1:8081"
        ) from None
    if not host or not 0 < port < 65536:
        raise ServiceError(f"{address!r} is not host:port", hint="pass e.g. --cas 127.0.0.1:8081")
    return host, port


class CasClient:
    """Talks to the client API of one CAS as one identity."""

    def __init__(
        self,
        address: str,
        *,
        identity: Identity,
        pinned_key_hash: str | None,
        timeout: float = 30.0,
        pins_file: Path | None = None,
    ) -> None:
        self.host, self.port = split_address(address)
        self.address = f"{self.host}:{self.port}" if ":" not in self.host else address
        self.identity = identity
        self._expected = pinned_key_hash
        self._timeout = timeout
        self._pins_file = pins_file
        self._http: httpx.Client | None = None
        self._cas_key_hash: str | None = None

    # -- connection ---------------------------------------------------------------------

    @property
    def cas_key_hash(self) -> str:
        """The verified key hash of the CAS (connects if needed)."""
        self._client()
        assert self._cas_key_hash is not None
        return self._cas_key_hash

    def _client(self) -> httpx.Client:
        if self._http is not None:
            return self._http
        cert_pem = pinning.fetch_certificate(self.host, self.port, self._timeout)
        key_hash = pinning.resolve_pin(
            self.address, cert_pem, self._expected, pins_file=self._pins_file
        )
        context = pinning.pinned_context(cert_pem)
        cert_path = self.identity.cached_cert(key_hash)
        if cert_path is None:
            cert_path = self._enroll(context, key_hash)
        context.load_cert_chain(cert_path, self.identity.path)
        self._cas_key_hash = key_hash
        self._http = httpx.Client(base_url=self._base_url, verify=context, timeout=self._timeout)
        return self._http

    @property
    def _base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def _enroll(self, context: Any, key_hash: str) -> Path:
        with httpx.Client(base_url=self._base_url, verify=context, timeout=self._timeout) as http:
            body = self._send(
                http,
                "POST",
                "/v1/identities",
                content=self.identity.csr_pem(),
                headers={"content-type": "application/pkcs10"},
            )
        certificate = body.get("certificate") if isinstance(body, dict) else None
        if not isinstance(certificate, str):
            raise ServiceError(f"the CAS at {self.address} did not issue a certificate")
        log.info("enrolled identity %s with the CAS at %s", self.identity.key_hash, self.address)
        return self.identity.store_cert(key_hash, certificate.encode("ascii"))

    def _send(self, http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise ServiceError(
                f"cannot reach the CAS at {self.address}: {err}",
                hint="start one with `sconify dev up`, or check --cas",
            ) from None
        if response.status_code >= 400:
            raise _refusal(response, self.address)
        try:
            return response.json()
        except ValueError:
            raise ServiceError(f"the CAS at {self.address} answered something not JSON") from None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(self._client(), method, path, **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> CasClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- API ------------------------------------------------------------------------------

    def version(self) -> CasVersion:
        """``GET /v1/version``."""
        return CasVersion.from_json(self._call("GET", "/v1/version"))

    def create_session(self, yaml_text: str) -> str:
        """``POST /v1/sessions``: create (or, with ``predecessor``, update); returns the hash."""
        body = self._call(
            "POST",
            "/v1/sessions",
            content=yaml_text.encode("utf-8"),
            headers={"content-type": "application/yaml"},
        )
        if not isinstance(body, dict) or not isinstance(body.get("hash"), str):
            raise ServiceError(f"the CAS at {self.address} answered without a hash")
        return str(body["hash"])

    def update_session(self, yaml_text: str) -> str:
        """Update a session, filling in ``predecessor`` from the CAS when the text has none."""
        session = load_session(yaml_text)
        if session.predecessor is None:
            current = self.current_hash(session.name)
            if current is None:
                raise CasRefused(
                    f"session {session.name!r} does not exist, so it cannot be updated",
                    status=404,
                    check="session",
                    hint="use `sconify session create`",
                )
            yaml_text = with_predecessor(yaml_text, current)
        return self.create_session(yaml_text)

    def read_session(self, name: str, hash: str | None = None) -> SessionRecord:
        """``GET /v1/sessions/<name>[?hash=]``."""
        params = {"hash": hash} if hash else None
        return SessionRecord.from_json(self._call("GET", f"/v1/sessions/{name}", params=params))

    def current_hash(self, name: str) -> str | None:
        """The current hash of ``name``, or ``None`` when it does not exist."""
        try:
            return self.read_session(name).hash
        except CasRefused as err:
            if err.status == 404:
                return None
            raise

    def public_values(self, name: str) -> dict[str, Any]:
        """``GET /v1/values/session=<name>``: the ``export_public`` secrets."""
        body = self._call("GET", f"/v1/values/session={name}")
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, dict):
            raise ServiceError(f"the CAS at {self.address} answered without values")
        return values


def with_predecessor(yaml_text: str, predecessor: str) -> str:
    """``yaml_text`` with a top-level ``predecessor:`` line added (comments kept)."""
    lines = yaml_text.splitlines(keepends=True)
    insert_at = 0
    for index, line in enumerate(lines):
        if line.startswith("---"):
            insert_at = index + 1
            break
        if line.strip() and not line.startswith(("#", "%")):
            break
    lines.insert(insert_at, f"predecessor: {predecessor}\n")
    candidate = "".join(lines)
    try:
        if load_session(candidate).predecessor == predecessor:
            return candidate
    except SessionError:
        pass
    # Unusual layouts (flow style, a document marker with content): re-dump the data.
    data = yaml.safe_load(yaml_text)
    data["predecessor"] = predecessor
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _refusal(response: httpx.Response, address: str) -> CasRefused:
    try:
        error = response.json()["error"]
        message = str(error["message"])
        check = error.get("check")
        hint = error.get("hint")
    except (ValueError, KeyError, TypeError):
        message, check, hint = f"HTTP {response.status_code}", None, None
    return CasRefused(
        f"the CAS at {address} refused: {message}",
        status=response.status_code,
        check=check if isinstance(check, str) else None,
        hint=hint if isinstance(hint, str) else None,
    )
