"""TLS settings for a registry host, the way skopeo and Docker find them.

A certificate directory holds ``*.crt`` files (extra CAs, trusted besides the system's) and
``*.cert``/``*.key`` pairs (a client certificate). It is ``--cert-dir`` when given, else the first
of ``/etc/containers/certs.d/<host[:port]>/`` and ``/etc/docker/certs.d/<host[:port]>/`` that
exists.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

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


def ssl_context(directory: Path | None, *, verify: bool = True) -> ssl.SSLContext:
    """A client context: system and certifi CAs plus ``directory``'s, and its client certificate.

    With ``verify=False`` the server's certificate is not checked (a client certificate is
    still presented).
    """
    if verify:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=certifi.where())
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if directory is None:
        return context
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
    return context


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
