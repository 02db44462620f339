"""Attacks on a real CAS, each run in a process of its own (so that its work does not slow the
legitimate client the tests time), from source addresses other than the legitimate client's.

Every function here is a process target: ``(results, ready, target, ...)``. It sets ``ready``
once the attack is under way (held connections open, or at once for floods) and puts one dict
of counts into ``results`` when it ends. Every attack is bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from sconify.cas.pinning import pinned_context


@dataclass(frozen=True)
class Target:
    """Where the CAS listens and what an attacker knows of it (its certificate is public)."""

    host: str
    api_port: int
    enclave_port: int
    cert_pem: bytes


@dataclass(frozen=True)
class Credentials:
    """A client certificate: anyone may enroll one, so attackers have them too."""

    cert_path: str
    key_path: str


def _context(target: Target, credentials: Credentials | None = None) -> ssl.SSLContext:
    context = pinned_context(target.cert_pem)
    if credentials is not None:
        context.load_cert_chain(credentials.cert_path, credentials.key_path)
    return context


def _https(
    target: Target, port: int, source: str, context: ssl.SSLContext, timeout: float = 30.0
) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        target.host, port, context=context, timeout=timeout, source_address=(source, 0)
    )


def _answer(connection: http.client.HTTPSConnection) -> tuple[int, Any]:
    response = connection.getresponse()
    raw = response.read()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw[:200]


def post_bodies(
    results: Queue[dict[str, Any]],
    ready: Event,
    target: Target,
    credentials: Credentials | None,
    requests: list[tuple[str, str, bytes, str]],
    source: str,
    min_seconds: float = 4.0,
) -> None:
    """POST each ``(api, path, body, content type)`` (api: ``client`` or ``enclave``) on a new
    connection, all of them again until ``min_seconds`` have passed; count the answers by
    status and check, and the ``rounds``."""
    ready.set()
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + min_seconds
    while True:
        _post_round(target, credentials, requests, source, seen)
        seen["rounds"] += 1
        if time.monotonic() >= deadline:
            break
    results.put(dict(seen))


def _post_round(
    target: Target,
    credentials: Credentials | None,
    requests: list[tuple[str, str, bytes, str]],
    source: str,
    seen: Counter[str],
) -> None:
    for api, path, body, content_type in requests:
        port = target.api_port if api == "client" else target.enclave_port
        connection = _https(target, port, source, _context(target, credentials))
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": content_type})
            status, answer = _answer(connection)
            check = answer["error"]["check"] if isinstance(answer, dict) else "not-json"
            seen[f"{status} {check}"] += 1
        except (OSError, http.client.HTTPException) as err:
            # The CAS may answer before the body is sent and close: the upload then fails.
            seen[f"closed {type(err).__name__}"] += 1
        finally:
            connection.close()


def _http_head(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: cas\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class _Responses:
    """Reads pipelined HTTP/1.1 responses (each with Content-Length) off one socket."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        self._buffer = b""

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the CAS closed the connection")
        self._buffer += chunk

    def next(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return status, body


def challenge_flood(
    results: Queue[dict[str, Any]],
    ready: Event,
    target: Target,
    config_id: str,
    total: int,
    connections: int,
    seconds: float,
    source: str,
) -> None:
    """Up to ``total`` challenges for ``config_id`` over ``connections`` keep-alive
    connections, pipelined 200 at a time, for at most ``seconds``; never answers one."""
    ready.set()
    request = _http_head("/v1/enclave/challenge", json.dumps({"config_id": config_id}).encode())
    batch = 200
    context = _context(target)
    socks = []
    for _ in range(connections):
        raw = socket.create_connection(
            (target.host, target.enclave_port), timeout=30, source_address=(source, 0)
        )
        socks.append(context.wrap_socket(raw, server_hostname=target.host))
    readers = [_Responses(sock) for sock in socks]
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    sent = 0
    while sent < total and time.monotonic() < deadline:
        for sock in socks:
            sock.sendall(request * batch)
        for reader in readers:
            for _ in range(batch):
                status, body = reader.next()
                check = json.loads(body).get("error", {}).get("check", "") if status != 200 else ""
                seen[f"{status} {check}".strip()] += 1
        sent += batch * len(socks)
    for sock in socks:
        sock.close()
    results.put({"sent": sent, **seen})


def _client_hello() -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the CAS closed ``sock`` (nothing else is expected on it: no request ended)."""
    sock.setblocking(False)
    try:
        if isinstance(sock, ssl.SSLSocket):
            sock.recv(1024)  # b"" (close_notify) or an answer: either way the CAS is done
            return True
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def hold_connections(
    results: Queue[dict[str, Any]],
    ready: Event,
    target: Target,
    count: int,
    sources: list[str],
    hold_seconds: float,
    watch_seconds: float = 0.0,
) -> None:
    """Open ``count`` connections spread over ``sources`` and both APIs, a third each left
    silent after the TCP handshake, stopped halfway through the ClientHello, or stopped
    halfway through the request head after a full TLS handshake; hold them ``hold_seconds``.

    With ``watch_seconds``, then wait that long for the CAS to close them, and report how many
    of each kind it closed and how long that took.
    """
    hello = _client_hello()
    context = _context(target)
    kinds = ("silent", "half-hello", "half-head")
    held: list[tuple[str, socket.socket]] = []
    for index in range(count):
        kind = kinds[index % 3]
        source = sources[(index // 3) % len(sources)]
        port = target.api_port if (index // 3) % 2 == 0 else target.enclave_port
        raw = socket.create_connection((target.host, port), timeout=30, source_address=(source, 0))
        if kind == "silent":
            held.append((kind, raw))
        elif kind == "half-hello":
            raw.sendall(hello[: len(hello) // 2])
            held.append((kind, raw))
        else:
            tls = context.wrap_socket(raw, server_hostname=target.host)
            tls.sendall(b"GET /v1/version HTTP/1.1\r\nHost: cas\r\nX-Slow: ")
            held.append((kind, tls))
    opened_at = time.monotonic()
    ready.set()
    outcome: dict[str, Any] = {"opened": len(held)}
    time.sleep(max(0.0, opened_at + hold_seconds - time.monotonic()))
    outcome["closed_while_held"] = sum(closed_by_peer(sock) for _, sock in held)
    if watch_seconds:
        closed_after: dict[str, float] = {}
        deadline = opened_at + watch_seconds
        while time.monotonic() < deadline and len(closed_after) < len(held):
            for number, (_, sock) in enumerate(held):
                if number not in closed_after and closed_by_peer(sock):
                    closed_after[number] = time.monotonic() - opened_at
            time.sleep(0.25)
        for kind in kinds:
            times = [t for n, t in closed_after.items() if held[n][0] == kind]
            outcome[f"{kind}_closed"] = len(times)
            outcome[f"{kind}_latest"] = max(times, default=None)
    for _, sock in held:
        sock.close()
    results.put(outcome)
