"""The LAS server: ``GET /v1/qe-pubkey`` and ``POST /v1/quote`` (contracts.md section 6).

Plain HTTP on loopback by default: it signs whatever measurement it is asked to, for whoever
asks, exactly like a simulated quoting enclave would. Its startup line says who can therefore
obtain a quote and what that gives them (:mod:`sconify.las.exposure`). The quoting key lives in
``<state-dir>/qe-key.pem`` (0600).
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from sconify.cas.files import load_or_create_key
from sconify.cas.serving import (
    BadRequest,
    Listener,
    bad_request_middleware,
    bind,
    read_json_object,
    serve,
)
from sconify.las.exposure import DEFAULT_HOST, startup_line
from sconify.las.quote import SimQuote, is_hex, key_id, public_pem, sign

log = logging.getLogger(__name__)

QE_KEY_FILE = "qe-key.pem"
DEFAULT_PORT = 18766

_QE_KEY: web.AppKey[ec.EllipticCurvePrivateKey] = web.AppKey("qe_key", ec.EllipticCurvePrivateKey)


def load_qe_key(state_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The LAS quoting key, created on first start."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, created = load_or_create_key(state_dir / QE_KEY_FILE)
    if created:
        log.info("created quoting key %s", key_id(key.public_key()))
    return key


def create_app(state_dir: Path) -> web.Application:
    """The LAS application, its quoting key loaded from (or created in) ``state_dir``."""
    app = web.Application(middlewares=[bad_request_middleware], client_max_size=64 * 1024)
    app[_QE_KEY] = load_qe_key(state_dir)
    app.router.add_get("/v1/qe-pubkey", _qe_pubkey)
    app.router.add_post("/v1/quote", _quote)
    return app


async def _qe_pubkey(request: web.Request) -> web.Response:
    public = request.app[_QE_KEY].public_key()
    return web.json_response({"key_id": key_id(public), "pem": public_pem(public)})


async def _quote(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if set(body) != {"debug", "measurement", "report_data"}:
        raise BadRequest("expected exactly debug, measurement and report_data")
    if not isinstance(body["debug"], bool):
        raise BadRequest("debug must be true or false")
    if not is_hex(body["measurement"], 32):
        raise BadRequest("measurement must be 64 lower-case hex digits")
    if not is_hex(body["report_data"], 64):
        raise BadRequest("report_data must be 128 lower-case hex digits")
    key = request.app[_QE_KEY]
    qe_key_id = key_id(key.public_key())
    quote = SimQuote(
        mrenclave=body["measurement"],
        report_data=body["report_data"],
        qe_key_id=qe_key_id,
        debug=body["debug"],
        issued_at=int(time.time()),
    ).to_bytes()
    log.info("quote for measurement %s (debug=%s)", body["measurement"], body["debug"])
    return web.json_response(
        {
            "qe_key_id": qe_key_id,
            "qe_pubkey": public_pem(key.public_key()),
            "quote": base64.b64encode(quote).decode("ascii"),
            "signature": base64.b64encode(sign(key, quote)).decode("ascii"),
        }
    )


def run(state_dir: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the LAS until SIGTERM/SIGINT; ``<state-dir>/ready.json`` holds the bound port.

    Once listening, and before ready.json is written, it says on stderr who can obtain a quote
    and what that gives them.
    """
    app = create_app(state_dir)
    qe_key_id = key_id(app[_QE_KEY].public_key())
    sock = bind(host, port)
    try:
        log.warning("%s", startup_line(host, sock.getsockname()[1], qe_key_id))
        serve(
            [Listener("port", app, host, port, sock=sock)],
            state_dir=state_dir,
            announce={"service": "las", "qe_key_id": qe_key_id},
        )
    finally:
        sock.close()
