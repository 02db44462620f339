"""The CAS's two aiohttp applications: the client API and the enclave API.

Handlers are thin: they read the request, call :mod:`sconify.cas.sessions` or
:mod:`sconify.cas.attest`, and turn :class:`~sconify.errors.CasRefused` into the JSON error
body both APIs share.

What an anonymous caller can make the client API do is bounded before any body is read: the
routes that need an identity refuse a caller without a client certificate (401), and a body
declared larger than its route's limit is refused (413), also in answer to ``Expect:
100-continue``. Bodies are read within a size and a time limit (:mod:`sconify.cas.bodies`).
Every failure is the JSON error body; an unexpected exception is logged with its traceback and
answered 500 without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import HttpVersion11, web

from sconify import __version__
from sconify.cas import attest as enclave
from sconify.cas import schema
from sconify.cas.bodies import RequestRefused, check_declared_size, read_body
from sconify.cas.gate import source_of
from sconify.cas.serving import json_error, read_json_object
from sconify.cas.sessions import public_values, read_session, submit_session
from sconify.cas.store import SessionStore
from sconify.cas.tls import CasTls, cert_key_hash
from sconify.errors import CasRefused, SessionError
from sconify.session.load import MAX_SESSION_BYTES

log = logging.getLogger(__name__)

_STORE: web.AppKey[SessionStore] = web.AppKey("store", SessionStore)
_TLS: web.AppKey[CasTls] = web.AppKey("tls", CasTls)
_NONCES: web.AppKey[enclave.NonceBook] = web.AppKey("nonces", enclave.NonceBook)
_ENCLAVE_PORT: web.AppKey[list[int]] = web.AppKey("enclave_port", list)

#: Body limits per route (bytes). A session may be as large as the session reader accepts,
#: plus room for the request's own framing; a CSR is a few hundred bytes.
SESSION_BODY_LIMIT = MAX_SESSION_BYTES + 64 * 1024
CSR_BODY_LIMIT = 16 * 1024
#: The enclave API's largest request (attest: a quote, its signature, a PEM key, a JWK) is
#: about 3 KiB.
ENCLAVE_BODY_LIMIT = 64 * 1024

_BODY_LIMITS = {
    ("POST", "/v1/sessions"): SESSION_BODY_LIMIT,
    ("POST", "/v1/identities"): CSR_BODY_LIMIT,
}
_NEEDS_IDENTITY = {("POST", "/v1/sessions"), ("GET", "/v1/sessions/{name}")}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the JSON error body; nothing unexpected shows a traceback."""
    try:
        return await handler(request)
    except CasRefused as err:
        if err.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, err.message)
        else:
            log.info("%s %s refused (%s): %s", request.method, request.path, err.check, err.message)
        return json_error(err.status, err.check or "request", err.message, err.hint)
    except RequestRefused as err:
        return json_error(err.status, err.check, str(err))
    except enclave.BadAttestRequest as err:
        return json_error(400, "request", str(err))
    except SessionError as err:
        return json_error(400, "session", err.message, err.hint)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        # aiohttp's own answers (no such route, method not allowed...), as JSON.
        response = json_error(err.status, "request", err.reason)
        if "Allow" in err.headers:
            response.headers["Allow"] = err.headers["Allow"]
        return response
    except UnicodeError:
        return json_error(400, "request", "the request holds text that is not valid UTF-8")
    except Exception:
        # The traceback goes to the CAS's log, never to the caller.
        log.exception("%s %s failed unexpectedly", request.method, request.path)
        return json_error(
            500, "internal", "the CAS failed to handle this request; its log says why"
        )


def _route(request: web.Request) -> tuple[str, str]:
    resource = request.match_info.route.resource
    return request.method, resource.canonical if resource is not None else ""


def _precheck(request: web.Request) -> None:
    """What the client API checks before it reads any body: identity, then declared size."""
    route = _route(request)
    if route in _NEEDS_IDENTITY and caller_identity(request) is None:
        raise CasRefused(
            "this request needs a client certificate",
            status=401,
            check="identity",
            hint="enroll with POST /v1/identities and connect with the issued certificate",
        )
    check_declared_size(request, _BODY_LIMITS.get(route, 0))


@web.middleware
async def _before_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    _precheck(request)
    return await handler(request)


async def _expect(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: the prechecks answer before the client sends its body."""
    try:
        _precheck(request)
    except CasRefused as err:
        return json_error(err.status, err.check or "request", err.message, err.hint)
    except RequestRefused as err:
        return json_error(err.status, err.check, str(err))
    if request.version >= HttpVersion11 and request.headers.get("Expect", "").lower() == (
        "100-continue"
    ):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


def caller_identity(request: web.Request) -> str | None:
    """Hex SHA-256 of the SPKI of the client certificate, or ``None`` without one."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return cert_key_hash(der) if der else None


def create_api_app(store: SessionStore, tls: CasTls, enclave_port: list[int]) -> web.Application:
    """The client API (served with :meth:`CasTls.api_context`).

    ``enclave_port`` is a one-item list filled in once the enclave socket is bound.
    """
    app = web.Application(middlewares=[_errors, _before_body], client_max_size=SESSION_BODY_LIMIT)
    app[_STORE] = store
    app[_TLS] = tls
    app[_ENCLAVE_PORT] = enclave_port
    app.router.add_get("/v1/version", _version)
    app.router.add_post("/v1/identities", _enroll, expect_handler=_expect)
    app.router.add_post("/v1/sessions", _post_session, expect_handler=_expect)
    app.router.add_get("/v1/sessions/{name:.+}", _get_session)
    app.router.add_get("/v1/values/session={name:.+}", _get_values)
    return app


def create_enclave_app(store: SessionStore, nonces: enclave.NonceBook) -> web.Application:
    """The enclave API (served with :meth:`CasTls.enclave_context`)."""
    app = web.Application(middlewares=[_errors], client_max_size=ENCLAVE_BODY_LIMIT)
    app[_STORE] = store
    app[_NONCES] = nonces
    app.router.add_post("/v1/enclave/challenge", _challenge)
    app.router.add_post("/v1/enclave/attest", _attest)
    return app


async def _version(request: web.Request) -> web.Response:
    info = schema.CasVersion(
        version=__version__,
        cas_key_hash=request.app[_TLS].cas_key_hash,
        enclave_port=request.app[_ENCLAVE_PORT][0],
    )
    return web.json_response(info.to_json())


async def _enroll(request: web.Request) -> web.Response:
    csr = await read_body(request, CSR_BODY_LIMIT)
    cert_pem = request.app[_TLS].issue_client_cert(csr)
    return web.json_response({"certificate": cert_pem.decode("ascii")})


async def _post_session(request: web.Request) -> web.Response:
    raw = await read_body(request, SESSION_BODY_LIMIT)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRefused("the session must be UTF-8 YAML") from None
    identity = caller_identity(request)
    store = request.app[_STORE]
    # SQLite work runs in a thread: BEGIN IMMEDIATE may wait for another writer.
    submitted = await asyncio.to_thread(submit_session, store, text, identity)
    return web.json_response(
        {"hash": submitted.hash, "name": submitted.name, "created": submitted.created},
        status=201 if submitted.created else 200,
    )


async def _get_session(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    wanted = request.query.get("hash")
    stored = await asyncio.to_thread(
        read_session, request.app[_STORE], name, caller_identity(request), version=wanted
    )
    record = schema.SessionRecord(
        name=stored.name, hash=stored.hash, session=stored.text, predecessor=stored.predecessor
    )
    return web.json_response(record.to_json())


async def _get_values(request: web.Request) -> web.Response:
    # SCONE's form: /v1/values/session=<name>[,secret=<secret>]
    name, *filters = request.match_info["name"].split(",")
    wanted = {f.removeprefix("secret=") for f in filters if f.startswith("secret=")}
    values = await asyncio.to_thread(public_values, request.app[_STORE], name)
    if wanted:
        values = {k: v for k, v in values.items() if k in wanted}
    return web.json_response({"values": values})


async def _enclave_call(request: web.Request, call: Callable[..., T], *args: Any) -> T:
    store = request.app[_STORE]
    if store.shared:
        # Reads and nonce writes go to a database server: never block the event loop on it.
        return await asyncio.to_thread(call, store, request.app[_NONCES], *args)
    # One process on its own SQLite file, nonces in memory: the work is a read that never
    # waits (WAL) and a millisecond of crypto, cheaper inline than handed to a thread (the
    # hand-off was ~9% of the CAS's CPU per attestation).
    return call(store, request.app[_NONCES], *args)


async def _challenge(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    source = source_of(request.remote or "")
    return web.json_response(await _enclave_call(request, enclave.challenge, body, source))


async def _attest(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    return web.json_response({"config": await _enclave_call(request, enclave.attest, body)})
