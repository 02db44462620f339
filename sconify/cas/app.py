"""The CAS's two aiohttp applications: the client API and the enclave API.

Handlers are thin: they read the request, call :mod:`sconify.cas.sessions` or
:mod:`sconify.cas.attest`, and turn :class:`~sconify.errors.CasRefused` into the JSON error
body both APIs share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from sconify import __version__
from sconify.cas import attest as enclave
from sconify.cas import schema
from sconify.cas.serving import BadRequest, json_error, read_json_object
from sconify.cas.sessions import public_values, read_session, submit_session
from sconify.cas.store import SessionStore
from sconify.cas.tls import CasTls, cert_key_hash
from sconify.errors import CasRefused

log = logging.getLogger(__name__)

_STORE: web.AppKey[SessionStore] = web.AppKey("store", SessionStore)
_TLS: web.AppKey[CasTls] = web.AppKey("tls", CasTls)
_NONCES: web.AppKey[enclave.NonceBook] = web.AppKey("nonces", enclave.NonceBook)
_ENCLAVE_PORT: web.AppKey[list[int]] = web.AppKey("enclave_port", list)

_MAX_BODY = 2 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CasRefused as err:
        if err.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, err.message)
        else:
            log.info("%s %s refused (%s): %s", request.method, request.path, err.check, err.message)
        return json_error(err.status, err.check or "request", err.message, err.hint)
    except (BadRequest, enclave.BadAttestRequest) as err:
        return json_error(400, "request", str(err))


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
    app = web.Application(middlewares=[_errors], client_max_size=_MAX_BODY)
    app[_STORE] = store
    app[_TLS] = tls
    app[_ENCLAVE_PORT] = enclave_port
    app.router.add_get("/v1/version", _version)
    app.router.add_post("/v1/identities", _enroll)
    app.router.add_post("/v1/sessions", _post_session)
    app.router.add_get("/v1/sessions/{name:.+}", _get_session)
    app.router.add_get("/v1/values/session={name:.+}", _get_values)
    return app


def create_enclave_app(store: SessionStore, nonces: enclave.NonceBook) -> web.Application:
    """The enclave API (served with :meth:`CasTls.enclave_context`)."""
    app = web.Application(middlewares=[_errors], client_max_size=256 * 1024)
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
    csr = await request.read()
    cert_pem = request.app[_TLS].issue_client_cert(csr)
    return web.json_response({"certificate": cert_pem.decode("ascii")})


async def _post_session(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the session must be UTF-8 YAML") from None
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


async def _enclave_call(request: web.Request, call: Callable[..., T], body: dict[str, Any]) -> T:
    store = request.app[_STORE]
    if store.shared:
        # Reads and nonce writes go to a database server: never block the event loop on it.
        return await asyncio.to_thread(call, store, request.app[_NONCES], body)
    # One process on its own SQLite file, nonces in memory: the work is a read that never
    # waits (WAL) and a millisecond of crypto, cheaper inline than handed to a thread (the
    # hand-off was ~9% of the CAS's CPU per attestation).
    return call(store, request.app[_NONCES], body)


async def _challenge(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    return web.json_response(await _enclave_call(request, enclave.challenge, body))


async def _attest(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    return web.json_response({"config": await _enclave_call(request, enclave.attest, body)})
