"""Connection limits of a listening socket: caps per source address and in all, TLS handshake
timeout, and the file-descriptor limit they are computed from.

aiohttp's ``TCPSite`` hands every accepted socket to the TLS layer and then to the HTTP
protocol, with no bound on how many there are or how long a handshake may take; a client that
opens a thousand sockets and sends nothing exhausts the process's file descriptors. Here every
accepted socket first meets a :class:`_Gate`, which

- refuses it (closes it at once) when its source already holds ``per_source`` connections to
  this listener, or the listener holds ``total``;
- runs the TLS handshake itself (as ``loop.start_tls`` does, with a read buffer of 32 KiB
  instead of asyncio's 256 KiB per connection) within ``handshake_timeout``;
- hands the connection to aiohttp's protocol, which closes it when no complete request head
  arrives within the keep-alive timeout (set on the runner, see :mod:`sconify.cas.serving`).

A *source* is the peer's IPv4 address, or the /64 prefix of its IPv6 address (one host usually
holds a whole /64). The counting is a dict update per connection, nothing per request.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ipaddress
import logging
import resource
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

#: Descriptors kept free of connections: the database, logs, certificates, threads' files.
RESERVED_FDS = 256


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections one listener keeps, and how long a TLS handshake may take."""

    total: int = 4096
    per_source: int = 256
    handshake_timeout: float = 10.0

    def fitted(self, listeners: int) -> ConnectionLimits:
        """These limits, lowered so that ``listeners`` of them fit the descriptor limit."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        room = max(16, (soft - RESERVED_FDS) // max(1, listeners))
        total = min(self.total, room)
        return ConnectionLimits(
            total=total,
            per_source=min(self.per_source, total),
            handshake_timeout=self.handshake_timeout,
        )


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft if soft != resource.RLIM_INFINITY else wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        log.warning("cannot raise the open-file limit from %d to %d", soft, wanted)
        return soft
    return wanted


def source_of(peer: Any) -> str:
    """The source a peer address counts against: its IPv4 address or its IPv6 /64."""
    host = peer[0] if isinstance(peer, tuple) and peer else str(peer)
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class ConnectionCounter:
    """Open connections of one listener, by source."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.by_source: dict[str, int] = {}
        self.open = 0
        self.refused = 0

    def admit(self, source: str) -> bool:
        """Count a new connection from ``source``, or return ``False`` when it is over a cap."""
        held = self.by_source.get(source, 0)
        if held >= self.limits.per_source or self.open >= self.limits.total:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "connection from %s refused: %d from it, %d in all (caps %d, %d); "
                    "%d refused so far",
                    source,
                    held,
                    self.open,
                    self.limits.per_source,
                    self.limits.total,
                    self.refused,
                )
            return False
        self.by_source[source] = held + 1
        self.open += 1
        return True

    def release(self, source: str) -> None:
        """Forget one connection from ``source``."""
        held = self.by_source.get(source, 0) - 1
        if held > 0:
            self.by_source[source] = held
        else:
            self.by_source.pop(source, None)
        self.open -= 1


class _CompactTLS(asyncio.sslproto.SSLProtocol):
    """asyncio's TLS protocol with a 32 KiB read buffer instead of 256 KiB.

    The buffer is allocated (and touched) per connection as it is accepted: 2,000 idle
    connections held 500 MiB with the default. A TLS record is at most 16 KiB plus overhead.
    """

    max_size = 32 * 1024


async def _start_tls(
    transport: asyncio.Transport,
    protocol: asyncio.Protocol,
    context: ssl.SSLContext,
    timeout: float,
) -> asyncio.BaseTransport:
    """``loop.start_tls(..., server_side=True)`` with :class:`_CompactTLS`."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    tls = _CompactTLS(
        loop,
        protocol,
        context,
        waiter,
        server_side=True,
        call_connection_made=False,
        ssl_handshake_timeout=timeout,  # type: ignore[arg-type]  # typeshed says int; float works
    )
    transport.pause_reading()
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    return tls._get_app_transport()  # type: ignore[attr-defined,no-any-return]


class _Gate(asyncio.Protocol):
    """First protocol of an accepted socket; forwards to aiohttp's once admitted (and TLS is up)."""

    def __init__(
        self,
        counter: ConnectionCounter,
        make_inner: Callable[[], asyncio.Protocol],
        ssl_context: ssl.SSLContext | None,
        handshakes: set[asyncio.Task[None]],
    ) -> None:
        self._counter = counter
        self._make_inner = make_inner
        self._ssl_context = ssl_context
        self._handshakes = handshakes
        self._inner: asyncio.Protocol | None = None
        self._source: str | None = None
        # Data the TLS layer delivers as the handshake completes, before start_tls returns.
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        source = source_of(transport.get_extra_info("peername"))
        if not self._counter.admit(source):
            transport.abort()
            return
        self._source = source
        if self._ssl_context is None:
            self._connect_inner(transport)
            return
        transport.pause_reading()  # nothing reaches this protocol before the handshake starts
        task = asyncio.get_running_loop().create_task(self._handshake(transport))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        assert self._ssl_context is not None
        try:
            secured = await _start_tls(
                transport, self, self._ssl_context, self._counter.limits.handshake_timeout
            )
        except OSError:  # ssl.SSLError, ConnectionError and TimeoutError are OSErrors
            self._release()  # start_tls closed the socket
            return
        self._connect_inner(secured)

    def _connect_inner(self, transport: asyncio.BaseTransport) -> None:
        self._inner = self._make_inner()
        self._inner.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            self._inner.data_received(data)

    def _release(self) -> None:
        if self._source is not None:
            self._counter.release(self._source)
            self._source = None

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
        elif self._source is not None:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)


class GatedSite(web.BaseSite):
    """An aiohttp site on a bound socket whose connections pass a :class:`_Gate`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        *,
        limits: ConnectionLimits,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._sock = sock
        self.counter = ConnectionCounter(limits)
        self._handshakes: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        """``https://host:port`` (or ``http://``) of the socket."""
        host, port = self._sock.getsockname()[:2]
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{host}:{port}"

    async def start(self) -> None:
        """Start accepting on the socket."""
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            lambda: _Gate(self.counter, server, self._ssl_context, self._handshakes),
            sock=self._sock,
            backlog=self._backlog,
        )

    async def stop(self) -> None:
        """Stop accepting and drop connections still in their TLS handshake."""
        for task in list(self._handshakes):
            task.cancel()
        await super().stop()
