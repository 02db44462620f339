"""A fault-injecting TCP proxy that speaks just enough HTTP/1.1 to break chosen requests.

It sits between a client and a real server (a ``docker-registry``), forwards every request and
response byte for byte, and applies a fault to the requests its rules match::

    rules = [Rule(Respond(503), method="PATCH", times=2),
             Rule(ResetRequest(after=4096), method="PUT", path="/blobs/uploads/")]
    with FaultProxy(registry.addr, rules=rules) as proxy:
        push(image, parse(f"docker://{proxy.addr}/app:1"))
        proxy.exchanges("PATCH")      # what went through, with the fault applied to each

Faults:

- :class:`Respond`: answer with a status (503, 429, 416...) without forwarding the request.
- :class:`ResetRequest`: reset the connection after ``after`` bytes of the request body; with
  ``forward=True`` those bytes reach the server first and the client is reset only once the
  server has dealt with the cut request (it then holds a partial upload), otherwise the server
  sees nothing (like a buffering load balancer in front of it).
- :class:`ResetResponse`: forward the request, then reset after ``after`` response body bytes.
- :class:`DropResponse`: forward the request, then reset before any of the answer (the server
  did the work; the client never learns it).
- :class:`Truncate`: forward the request, then close cleanly after ``after`` body bytes (the
  client sees a body shorter than its ``Content-Length``).
- :class:`Corrupt`: flip one byte of the response body (or of the request body with
  ``request=True``), keeping its length: a digest mismatch.

Each client connection gets its own upstream connection. Traffic that is not HTTP (a TLS
``ClientHello``, as from a client probing for HTTPS) is piped through untouched. Body offsets
count payload bytes for ``Content-Length`` bodies and raw bytes for chunked ones.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType

_HEAD_LIMIT = 64 * 1024
_PIECE = 64 * 1024


@dataclass(frozen=True)
class Respond:
    """Answer ``status`` (with a distribution error body) instead of forwarding the request."""

    status: int = 503
    retry_after: str | None = "0"
    code: str = "UNAVAILABLE"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ResetRequest:
    """Reset the connection after ``after`` request body bytes (sent on when ``forward``)."""

    after: int = 0
    forward: bool = False


@dataclass(frozen=True)
class ResetResponse:
    """Forward the request; reset the connection after ``after`` response body bytes."""

    after: int = 0


@dataclass(frozen=True)
class DropResponse:
    """Forward the request; reset the connection instead of relaying any of the answer."""


@dataclass(frozen=True)
class Truncate:
    """Forward the request; close the connection cleanly after ``after`` response body bytes."""

    after: int = 0


@dataclass(frozen=True)
class Corrupt:
    """Flip the byte at body offset ``at`` (default: the middle) of the response or request."""

    at: int | None = None
    request: bool = False


Fault = Respond | ResetRequest | ResetResponse | DropResponse | Truncate | Corrupt


@dataclass
class Rule:
    """Apply ``fault`` to requests matching ``method`` and the regex ``path`` (searched in the
    request target, query included): skip the first ``skip`` matches, then fault ``times``
    matches (``None``: all of them)."""

    fault: Fault
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    skip: int = 0
    matched: int = field(default=0, init=False)
    applied: int = field(default=0, init=False)

    def _matches(self, method: str, target: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return self.path is None or re.search(self.path, target) is not None


@dataclass(frozen=True)
class Exchange:
    """One request that went through: ``status`` is None when no status reached the client."""

    method: str
    target: str
    status: int | None
    fault: str | None
    headers: dict[str, str]

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]


class _Closed(Exception):
    """The peer closed the connection where a message was expected."""


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(_PIECE)
        if not data:
            return False
        self.buf += data
        return True

    def peek(self) -> bytes:
        if not self.buf:
            self._fill()
        return self.buf

    def head(self) -> bytes | None:
        """The bytes up to and including the blank line; None on a clean EOF before any."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _HEAD_LIMIT:
                raise _Closed("message head too large")
            if not self._fill():
                if self.buf:
                    raise _Closed("connection closed inside a message head")
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise _Closed("connection closed inside a chunked body")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def some(self, limit: int) -> bytes:
        if not self.buf and not self._fill():
            raise _Closed("connection closed inside a body")
        piece, self.buf = self.buf[:limit], self.buf[limit:]
        return piece

    def until_eof(self) -> Iterator[bytes]:
        while True:
            if not self.buf and not self._fill():
                return
            piece, self.buf = self.buf, b""
            yield piece


@dataclass
class _Message:
    first: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, raw: bytes) -> _Message:
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers)

    def get(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def without(self, name: str) -> _Message:
        return _Message(self.first, [(k, v) for k, v in self.headers if k.lower() != name.lower()])

    def encode(self) -> bytes:
        lines = [self.first, *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def framing(self, *, request: bool) -> tuple[str, int]:
        """``("length", n)``, ``("chunked", 0)`` or ``("eof", 0)`` (responses only)."""
        if "chunked" in (self.get("Transfer-Encoding") or "").lower():
            return "chunked", 0
        length = self.get("Content-Length")
        if length is not None:
            return "length", int(length)
        # A request without either has no body; a response then runs to the connection's end.
        return ("length", 0) if request else ("eof", 0)


def _body(reader: _Reader, framing: tuple[str, int]) -> Iterator[bytes]:
    kind, length = framing
    if kind == "length":
        left = length
        while left > 0:
            piece = reader.some(min(left, _PIECE))
            left -= len(piece)
            yield piece
    elif kind == "chunked":
        while True:
            size_line = reader.line()
            yield size_line
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:
                    trailer = reader.line()
                    yield trailer
                    if trailer == b"\r\n":
                        return
            left = size + 2
            while left > 0:
                piece = reader.some(min(left, _PIECE))
                left -= len(piece)
                yield piece
    else:
        yield from reader.until_eof()


def _reset(sock: socket.socket | None) -> None:
    """Close with RST (linger 0) rather than FIN, as a dropped connection looks."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _drain(upstream: socket.socket, timeout: float = 10.0) -> None:
    """End the request body early and wait until the server has dealt with it (answered and
    closed), so that the client learns of the failure only after the server stored what it got.
    """
    with contextlib.suppress(OSError):
        upstream.shutdown(socket.SHUT_WR)
        upstream.settimeout(timeout)
        while upstream.recv(_PIECE):
            pass


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


class FaultProxy:
    """A TCP proxy to ``target`` (``host:port``) listening on ``host`` at a free port."""

    def __init__(self, target: str, rules: Sequence[Rule] = (), host: str = "127.0.0.1") -> None:
        self.target = _split_addr(target)
        self.rules: list[Rule] = list(rules)
        self.log: list[Exchange] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, 0))
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        port = self._listener.getsockname()[1]
        self.addr = f"{host}:{port}"

    # -- control -------------------------------------------------------------------------

    def add(self, *rules: Rule) -> None:
        """Add rules (checked in order; the first one with faults left applies)."""
        with self._lock:
            self.rules.extend(rules)

    def clear(self) -> None:
        """Drop all rules and the log."""
        with self._lock:
            self.rules.clear()
            self.log.clear()

    def exchanges(self, method: str | None = None, path: str | None = None) -> list[Exchange]:
        """The requests seen so far, filtered like a :class:`Rule`."""
        with self._lock:
            return [
                x
                for x in self.log
                if (method is None or x.method == method)
                and (path is None or re.search(path, x.target))
            ]

    def faults(self) -> list[Exchange]:
        """The requests a fault was applied to."""
        return [x for x in self.exchanges() if x.fault is not None]

    def start(self) -> FaultProxy:
        """Start accepting connections."""
        thread = threading.Thread(target=self._accept, name=f"faultproxy {self.addr}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop accepting and close every open connection."""
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for s in open_sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- plumbing --------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            with self._lock:
                self._threads.append(thread)

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _untrack(self, *socks: socket.socket | None) -> None:
        with self._lock:
            for s in socks:
                if s is not None:
                    self._sockets.discard(s)

    def _pick(self, method: str, target: str) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if not rule._matches(method, target):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                if rule.times is not None and rule.applied >= rule.times:
                    continue
                rule.applied += 1
                return rule.fault
        return None

    def _record(self, request: _Message, status: int | None, fault: Fault | None) -> None:
        method, _, rest = request.first.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        headers = {k: v for k, v in request.headers}
        name = type(fault).__name__ if fault else None
        exchange = Exchange(method, target, status, name, headers)
        with self._lock:
            self.log.append(exchange)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        upstream: socket.socket | None = None
        try:
            reader = _Reader(client)
            first = reader.peek()
            if not first:
                return
            if not first[:1].isalpha():
                upstream = self._track(socket.create_connection(self.target))
                self._pipe(client, reader.buf, upstream)
                return
            up_reader: _Reader | None = None
            while not self._stopped:
                raw = reader.head()
                if raw is None:
                    return
                request = _Message.parse(raw)
                method, _, rest = request.first.partition(" ")
                fault = self._pick(method, rest.rsplit(" ", 1)[0])
                if (request.get("Expect") or "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    request = request.without("Expect")
                if isinstance(fault, Respond):
                    for _ in _body(reader, request.framing(request=True)):
                        pass
                    client.sendall(self._respond(fault))
                    self._record(request, fault.status, fault)
                    continue
                if upstream is None:
                    upstream = self._track(socket.create_connection(self.target))
                    up_reader = _Reader(upstream)
                assert up_reader is not None
                keep = self._exchange(client, reader, upstream, up_reader, request, method, fault)
                if not keep:
                    return
        except (OSError, _Closed, ValueError):
            return
        finally:
            self._untrack(client, upstream)
            for s in (client, upstream):
                if s is not None and s.fileno() != -1:
                    s.close()

    def _exchange(
        self,
        client: socket.socket,
        reader: _Reader,
        upstream: socket.socket,
        up_reader: _Reader,
        request: _Message,
        method: str,
        fault: Fault | None,
    ) -> bool:
        """Forward one request and its response; return whether the connection stays open."""
        if isinstance(fault, ResetRequest):
            self._reset_request(client, reader, upstream, request, fault)
            return False
        upstream.sendall(request.encode())
        framing = request.framing(request=True)
        sent = 0
        middle = framing[1] // 2
        for piece in _body(reader, framing):
            if isinstance(fault, Corrupt) and fault.request:
                piece = _flip(piece, sent, middle if fault.at is None else fault.at)
            upstream.sendall(piece)
            sent += len(piece)

        while True:
            raw = up_reader.head()
            if raw is None:
                raise _Closed("upstream closed before answering")
            response = _Message.parse(raw)
            status = int(response.first.split(" ", 2)[1])
            if status >= 200 or status == 101:
                break
            client.sendall(raw)
        if isinstance(fault, DropResponse):
            self._record(request, status, fault)
            _reset(client)
            _reset(upstream)
            return False
        bodiless = method == "HEAD" or status in (204, 304)
        resp_framing = ("length", 0) if bodiless else response.framing(request=False)
        client.sendall(raw)
        sent = 0
        middle = resp_framing[1] // 2
        cut = fault.after if isinstance(fault, ResetResponse | Truncate) else None
        for piece in _body(up_reader, resp_framing):
            if cut is not None and sent + len(piece) >= cut:
                client.sendall(piece[: cut - sent])
                self._record(request, status, fault)
                if isinstance(fault, Truncate):
                    client.shutdown(socket.SHUT_WR)
                    client.close()
                else:
                    _reset(client)
                _reset(upstream)
                return False
            if isinstance(fault, Corrupt) and not fault.request:
                piece = _flip(piece, sent, middle if fault.at is None else fault.at)
            client.sendall(piece)
            sent += len(piece)
        self._record(request, status, fault)
        if cut is not None:
            # The body was shorter than ``after``: still break the connection afterwards.
            _reset(client)
            return False
        closing = "close" in (response.get("Connection") or "").lower()
        return resp_framing[0] != "eof" and not closing

    def _reset_request(
        self,
        client: socket.socket,
        reader: _Reader,
        upstream: socket.socket,
        request: _Message,
        fault: ResetRequest,
    ) -> None:
        """Read ``after`` body bytes (passing head and bytes on when ``forward``), then reset."""
        if fault.forward:
            upstream.sendall(request.encode())
        sent = 0
        for piece in _body(reader, request.framing(request=True)):
            take = piece[: max(0, fault.after - sent)]
            if fault.forward:
                upstream.sendall(take)
            sent += len(take)
            if sent >= fault.after:
                break
        if fault.forward:
            _drain(upstream)
        self._record(request, None, fault)
        _reset(client)
        _reset(upstream)

    @staticmethod
    def _respond(fault: Respond) -> bytes:
        body = json.dumps({"errors": [{"code": fault.code, "message": "injected fault"}]}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if fault.retry_after is not None:
            headers.append(("Retry-After", fault.retry_after))
        headers.extend(fault.headers)
        return _Message(f"HTTP/1.1 {fault.status} Injected", headers).encode() + body

    def _pipe(self, client: socket.socket, pending: bytes, upstream: socket.socket) -> None:
        upstream.sendall(pending)

        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(_PIECE):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
        back.start()
        copy(client, upstream)
        back.join(30)


def _flip(piece: bytes, offset: int, at: int) -> bytes:
    """Flip the byte at absolute body offset ``at`` if it falls in ``piece`` (at ``offset``)."""
    if offset <= at < offset + len(piece):
        i = at - offset
        return piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1 :]
    return piece
