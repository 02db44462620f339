"""Who can obtain a quote from a LAS, and what a quote gives them (said at every start).

A simulated LAS quotes whatever measurement it is asked to, for whoever asks: it cannot tell an
enclave from any other process. A quote for a measurement, presented to a CAS with a fresh nonce,
obtains the configuration and keys of every session that tolerates ``simulation`` and trusts this
LAS's quoting key. Measurements are not secret (a converted image carries its own in the label
``org.sconify.measurement``), so whoever can reach the LAS and read an image's labels can obtain
that image's secrets. The only narrowing a LAS has is where it listens: by default loopback,
which every container of this host reaches when run with ``--network host``.
"""

from __future__ import annotations

import ipaddress
import socket

#: Where a LAS listens unless told otherwise: only this host (and its --network host containers).
DEFAULT_HOST = "127.0.0.1"

#: The label of a converted image that holds its measurement (what a quote is asked for).
MEASUREMENT_LABEL = "org.sconify.measurement"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) means loopback addresses only.

    A name is resolved: ``localhost`` counts when every address it has is loopback. The
    wildcards (``0.0.0.0``, ``::``, the empty string) are every address, not loopback.
    """
    literal = host.strip("[]")
    if not literal:
        return False
    try:
        return ipaddress.ip_address(literal).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(literal, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _is_wildcard(host: str) -> bool:
    literal = host.strip("[]")
    if not literal:
        return True
    try:
        return ipaddress.ip_address(literal).is_unspecified
    except ValueError:
        return False


def who_can_quote(host: str, port: int) -> str:
    """Who can obtain a quote from a LAS listening on ``host:port``."""
    if is_loopback(host):
        return (
            "any process on this host (in its network namespace: every local user, and every "
            "container run with --network host)"
        )
    if _is_wildcard(host):
        return (
            f"any process that can reach port {port} on any address of this host: other hosts "
            "and their containers too, not only this one"
        )
    return (
        f"any process that can reach {host}:{port}: other hosts and their containers too, "
        "not only this one"
    )


def startup_line(host: str, port: int, qe_key_id: str) -> str:
    """The line a LAS prints (stderr) once it listens: who can get a quote, and what for."""
    where = f"{host}:{port}"
    scope = "loopback only" if is_loopback(host) else "NOT loopback"
    line = (
        f"LAS listening on {where} ({scope}; simulation: it quotes any measurement for any "
        f"caller). Who can obtain a quote: {who_can_quote(host, port)}. What it gives them: "
        "the configuration and keys of every session that tolerates simulation and trusts "
        f"this LAS's quoting key {qe_key_id}; measurements are public (label "
        f"{MEASUREMENT_LABEL}), so whoever can quote an image's measurement from its labels "
        "gets that image's secrets."
    )
    if not is_loopback(host):
        line += (
            f" Listen on {DEFAULT_HOST} (--host) unless containers of other hosts must reach "
            "this LAS."
        )
    return line
