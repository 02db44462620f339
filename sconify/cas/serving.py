"""Run aiohttp apps on bound sockets until SIGTERM/SIGINT, announcing the ports in ready.json.

Shared by ``sconify cas serve`` and ``sconify las serve``. Binding first and writing
``ready.json`` (atomically) only once every socket listens lets callers pass port 0 and learn
the ports the kernel chose.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from sconify.cas.bodies import RequestRefused, parse_json_object, read_body
from sconify.cas.files import write_atomic
from sconify.cas.gate import ConnectionLimits, GatedSite
from sconify.errors import ServiceError

log = logging.getLogger(__name__)

READY_FILE = "ready.json"


@dataclass
class Listener:
    """One app on one address. ``name`` is the ready.json key of its port; ``access_log``
    says whether every request is logged (not for the enclave API: an attestation is two
    requests, and its release is logged once by the handler).

    With ``limits``, connections pass a :class:`~sconify.cas.gate.GatedSite` (caps per source
    and in all, TLS handshake timeout) and one that holds no complete request head for
    ``idle_timeout`` seconds, from its start or its last answer, is closed.
    """

    name: str
    app: web.Application
    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    sock: socket.socket | None = None
    access_log: bool = True
    limits: ConnectionLimits | None = None
    idle_timeout: float | None = None


#: Pending connections the kernel queues for accept (a burst of clients must not overflow it:
#: a dropped SYN costs the next client a one-second retransmission).
BACKLOG = 1024


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or a :class:`ServiceError` that says which address is taken."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as err:
        raise ServiceError(
            f"cannot listen on {host}:{port}: {err.strerror}",
            hint="another process uses the port: stop it, or choose another port",
        ) from None


def serve(
    listeners: list[Listener],
    *,
    state_dir: Path,
    announce: dict[str, Any],
    on_start: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until a signal; ``announce`` adds fields to ready.json (e.g. the CAS key hash).

    SIGTERM stops cleanly and returns; SIGINT stops as cleanly, then raises
    ``KeyboardInterrupt`` so that the command exits 130 like any interrupted command.
    """
    ready = state_dir / READY_FILE
    ready.unlink(missing_ok=True)
    sockets = [item.sock or bind(item.host, item.port) for item in listeners]
    received = asyncio.run(_serve(listeners, sockets, ready, announce, on_start))
    if received == signal.SIGINT:
        raise KeyboardInterrupt


async def _serve(
    listeners: list[Listener],
    sockets: list[socket.socket],
    ready: Path,
    announce: dict[str, Any],
    on_start: Callable[[], Awaitable[None]] | None,
) -> int:
    stop = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    runners: list[web.AppRunner] = []
    try:
        info: dict[str, Any] = {"pid": os.getpid(), **announce}
        for item, sock in zip(listeners, sockets, strict=True):
            options: dict[str, Any] = {} if item.access_log else {"access_log": None}
            if item.idle_timeout is not None:
                # aiohttp's keep-alive timer runs from the connection's start and from each
                # answer, and closes a connection still waiting for a whole request head: an
                # idle timeout and a header-read timeout in one. Lingering (reading and
                # discarding an unread body so the client sees the answer) stays short.
                options.update(keepalive_timeout=item.idle_timeout, lingering_time=2.0)
            runner = web.AppRunner(item.app, **options)
            await runner.setup()
            runners.append(runner)
            site: web.BaseSite
            if item.limits is not None:
                site = GatedSite(
                    runner, sock, limits=item.limits, ssl_context=item.ssl_context, backlog=BACKLOG
                )
            else:
                site = web.SockSite(runner, sock, ssl_context=item.ssl_context, backlog=BACKLOG)
            await site.start()
            port = sock.getsockname()[1]
            info[item.name] = port
            info.setdefault("host", item.host)
            log.info("listening on %s:%d (%s)", item.host, port, item.name)
        if on_start is not None:
            await on_start()
        write_atomic(ready, (json.dumps(info, sort_keys=True) + "\n").encode())
        await stop.wait()
        log.info("stopping")
    finally:
        ready.unlink(missing_ok=True)
        for runner in reversed(runners):
            await runner.cleanup()
        for sock in sockets:
            sock.close()
    return received[0] if received else 0


def json_error(status: int, check: str, message: str, hint: str | None = None) -> web.Response:
    """The error body of both services: ``{"error": {"check", "message"[, "hint"]}}``."""
    body: dict[str, str] = {"check": check, "message": message}
    if hint:
        body["hint"] = hint
    return web.json_response({"error": body}, status=status)


async def read_json_object(request: web.Request, limit: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object (at most ``limit`` bytes, default the app's
    ``client_max_size``); raises :class:`RequestRefused` otherwise (400, 408 or 413)."""
    raw = await read_body(request, request.client_max_size if limit is None else limit)
    return parse_json_object(raw)


#: A malformed request (400, check ``request``); :class:`RequestRefused` carries other statuses.
BadRequest = RequestRefused


@web.middleware
async def bad_request_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn :class:`RequestRefused` into its JSON error (400, 408 or 413)."""
    try:
        return await handler(request)
    except RequestRefused as err:
        return json_error(err.status, err.check, str(err))
