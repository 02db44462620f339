"""TLS settings for a registry host, the way skopeo and Docker find them.

A certificate directory holds ``*.crt`` files (extra CAs, trusted besides the system's) and
``*.cert``/``*.key`` pairs (a client certificate). It is ``--cert-dir`` when given, else the first
of ``/etc/containers/certs.d/<host[:port]>/`` and ``/etc/docker/certs.d/<host[:port]>/`` that
exists.

The system's and certifi's CAs are loaded by a context's first handshake, not when it is made:
loading them takes tens of milliseconds, and a registry spoken to over plain HTTP (one on
loopback, typically) never needs them.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Self

import certifi

from sconify.errors import RegistryError

log = logging.getLogger(__name__)

CERTS_D = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


def cert_dir_for(
    host: str, cert_dir: Path | None, certs_d: Sequence[Path] = CERTS_D
) -> Path | None:
    """The certificate directory that applies to ``host``, if any."""
    if cert_dir is not None:
        if not Path(cert_dir).is_dir():
            raise RegistryError(
                f"the certificate directory {cert_dir} does not exist",
                hint="--cert-dir takes a directory of *.crt (CAs) and *.cert/*.key (client) files",
            )
        return Path(cert_dir)
    for root in certs_d:
        candidate = Path(root) / host
        if candidate.is_dir():
            return candidate
    return None


class _DeferredTrustContext(ssl.SSLContext):
    """What ``ssl.create_default_context()`` makes, plus certifi's CAs; the system's and
    certifi's CAs are loaded by the first handshake."""

    def __new__(cls) -> Self:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self) -> None:
        super().__init__()
        # PROTOCOL_TLS_CLIENT already requires a trusted certificate for the host name; this is
        # the rest of what create_default_context sets up.
        if sys.version_info >= (3, 13):
            self.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:
            self.keylog_filename = keylog
        self.directory: Path | None = None
        #: The system's and certifi's CAs are still to be loaded (by the first handshake).
        self.trust_pending = True
        self._trust_lock = threading.Lock()

    def _load_default_trust(self) -> None:
        # Several threads may open their first connections at once: all wait for one load.
        if not self.trust_pending:
            return
        with self._trust_lock:
            if self.trust_pending:
                self.load_default_certs(ssl.Purpose.SERVER_AUTH)
                self.load_verify_locations(cafile=certifi.where())
                self.trust_pending = False

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        self._load_default_trust()
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        self._load_default_trust()
        return super().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )


def ssl_context(directory: Path | None, *, verify: bool = True) -> ssl.SSLContext:
    """A client context: system and certifi CAs plus ``directory``'s, and its client certificate.

    With ``verify=False`` the server's certificate is not checked (a client certificate is
    still presented). ``directory``'s files are loaded (and their problems raised) here, the
    system's and certifi's CAs by the first handshake.
    """
    context: ssl.SSLContext
    if verify:
        context = _DeferredTrustContext()
        context.directory = directory
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if directory is not None:
        _load_directory(context, directory, verify=verify)
    return context


def probe_context(context: ssl.SSLContext) -> ssl.SSLContext:
    """A context for asking whether a host speaks TLS at all that does not load the system's CAs.

    It is ``context`` without the system's and certifi's CAs (``context`` itself when it has
    none to load). Whether TLS is spoken does not depend on them: a certificate the probe does
    not trust shows it as well as one it trusts.
    """
    if not isinstance(context, _DeferredTrustContext) or not context.trust_pending:
        return context
    probe = _DeferredTrustContext()
    probe.trust_pending = False
    if context.directory is not None:
        _load_directory(probe, context.directory, verify=True)
    return probe


def _load_directory(context: ssl.SSLContext, directory: Path, *, verify: bool) -> None:
    files = sorted(p for p in Path(directory).iterdir() if p.is_file())
    for path in files:
        if path.suffix == ".crt" and verify:
            _load(path, partial(context.load_verify_locations, cafile=str(path)))
    certs = {p.stem: p for p in files if p.suffix == ".cert"}
    keys = {p.stem: p for p in files if p.suffix == ".key"}
    for stem in sorted(set(certs) ^ set(keys)):
        have, missing = (certs[stem], ".key") if stem in certs else (keys[stem], ".cert")
        raise RegistryError(
            f"{have} has no matching {stem}{missing} in {directory}",
            hint="a client certificate needs both NAME.cert and NAME.key",
        )
    pairs = sorted(set(certs) & set(keys))
    if pairs:
        if len(pairs) > 1:
            log.warning(
                "%s holds %d client certificates; using %s", directory, len(pairs), pairs[0]
            )
        cert, key = certs[pairs[0]], keys[pairs[0]]
        _load(cert, partial(context.load_cert_chain, str(cert), str(key)))


def _load(path: Path, action: Callable[[], object]) -> None:
    try:
        action()
    except (OSError, ssl.SSLError) as e:
        raise RegistryError(
            f"cannot load {path}: {e}",
            hint="*.crt must be PEM CA certificates, *.cert/*.key a PEM certificate and its key",
        ) from e


def tls_failure(error: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a transport failure, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


_PLAIN_TEXT = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
)


def speaks_no_tls(error: ssl.SSLError) -> bool:
    """Whether a handshake failed because the server answered in plain text (not TLS)."""
    return (getattr(error, "reason", None) or "").upper() in _PLAIN_TEXT


def tls_refused(error: ssl.SSLError) -> bool:
    """Whether TLS was spoken but the handshake was refused: an untrusted certificate, or an
    alert from the server (e.g. a client certificate it wants). Retrying will not help."""
    reason = (getattr(error, "reason", None) or "").upper()
    return isinstance(error, ssl.SSLCertVerificationError) or "ALERT" in reason
