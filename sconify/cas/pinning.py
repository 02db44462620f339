"""Pinning the CAS by the hash of its public key (trust on first use for the client API).

The CAS certificate is self-signed: what makes it trusted is that its SPKI hashes to the
expected value. The certificate is fetched once, its hash checked, and then used as the only
trust anchor of the TLS context, so every later handshake is verified against exactly that
certificate (and needs its private key). Pins seen on first use are recorded in
``$XDG_CONFIG_HOME/sconify/cas-pins.json`` as ``{"host:port": "<hash>"}``.
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path

from cryptography import x509

from sconify.cas.files import write_atomic
from sconify.cas.identity import config_dir
from sconify.cas.tls import spki_sha256
from sconify.errors import ServiceError

log = logging.getLogger(__name__)


def pins_path() -> Path:
    """The file of recorded CAS pins."""
    return config_dir() / "cas-pins.json"


def load_pins(path: Path | None = None) -> dict[str, str]:
    """All recorded pins (address -> key hash)."""
    target = path or pins_path()
    try:
        data = json.loads(target.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise ServiceError(f"{target} is not readable JSON", hint="fix or remove it") from None
    if not isinstance(data, dict):
        raise ServiceError(f"{target} is not a JSON object", hint="fix or remove it")
    return {str(k): str(v) for k, v in data.items()}


def record_pin(address: str, key_hash: str, path: Path | None = None) -> None:
    """Remember ``key_hash`` for ``address``."""
    target = path or pins_path()
    pins = load_pins(target)
    pins[address] = key_hash
    write_atomic(target, (json.dumps(pins, indent=2, sort_keys=True) + "\n").encode())


def fetch_certificate(host: str, port: int, timeout: float) -> bytes:
    """The server's leaf certificate (PEM), without verifying it."""
    try:
        return ssl.get_server_certificate((host, port), timeout=timeout).encode("ascii")
    except (OSError, ssl.SSLError) as err:
        raise ServiceError(
            f"cannot reach the CAS at {host}:{port}: {err}",
            hint="start one with `sconify dev up`, or check --cas",
        ) from None


def certificate_key_hash(cert_pem: bytes) -> str:
    """Hex SHA-256 of the SPKI DER of a PEM certificate."""
    return spki_sha256(x509.load_pem_x509_certificate(cert_pem).public_key())


def pinned_context(cert_pem: bytes) -> ssl.SSLContext:
    """A client context that trusts exactly ``cert_pem`` (host names are not checked)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=cert_pem.decode("ascii"))
    return ctx


def resolve_pin(
    address: str, cert_pem: bytes, expected: str | None, *, pins_file: Path | None = None
) -> str:
    """Check the fetched certificate against ``expected`` or the recorded pin, or record it.

    Returns the CAS key hash. A mismatch raises :class:`ServiceError` with what to do.
    """
    actual = certificate_key_hash(cert_pem)
    recorded = load_pins(pins_file).get(address)
    wanted = expected or recorded
    if wanted is not None and wanted.lower() != actual:
        source = "the expected" if expected else f"the pinned (in {pins_file or pins_path()})"
        raise ServiceError(
            f"the CAS at {address} presents key hash {actual}, not {source} {wanted}",
            hint="someone may be intercepting the connection; if the CAS was reset on purpose, "
            f"remove {address} from {pins_file or pins_path()} (or pass the new hash)",
        )
    if recorded is None:
        record_pin(address, actual, pins_file)
        log.info("pinned the CAS at %s to key hash %s (first use)", address, actual)
    return actual
