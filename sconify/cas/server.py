"""``sconify cas serve``: the client API and the enclave API of one CAS, over TLS.

State dir layout (created on first start, keys 0600): ``cas-key.pem``/``cas-cert.pem`` (the TLS
identity the shims pin), ``client-ca-key.pem``/``client-ca-cert.pem`` (signs client identities),
``master.key`` (encrypts the store), ``cas.sqlite3`` (WAL), and ``ready.json`` while serving.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sconify.cas.app import create_api_app, create_enclave_app
from sconify.cas.attest import NonceBook
from sconify.cas.serving import Listener, bind, serve
from sconify.cas.store import SessionStore
from sconify.cas.tls import CasTls

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 8081
DEFAULT_ENCLAVE_PORT = 18765


def run(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    api_port: int = DEFAULT_API_PORT,
    enclave_port: int = DEFAULT_ENCLAVE_PORT,
) -> None:
    """Serve both APIs until SIGTERM/SIGINT; ``<state-dir>/ready.json`` holds the bound ports."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tls = CasTls.load_or_create(state_dir)
    store = SessionStore(state_dir)
    enclave_sock = bind(host, enclave_port)
    bound_enclave = [int(enclave_sock.getsockname()[1])]
    log.info("CAS key hash %s", tls.cas_key_hash)
    serve(
        [
            Listener(
                "enclave_port",
                create_enclave_app(store, NonceBook()),
                host,
                bound_enclave[0],
                tls.enclave_context(),
                enclave_sock,
            ),
            Listener(
                "api_port",
                create_api_app(store, tls, bound_enclave),
                host,
                api_port,
                tls.api_context(),
            ),
        ],
        state_dir=state_dir,
        announce={"service": "cas", "cas_key_hash": tls.cas_key_hash},
    )
