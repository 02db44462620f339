"""``sconify cas serve``: the client API and the enclave API of one CAS, over TLS.

State dir layout (created on first start, keys 0600): ``cas-key.pem``/``cas-cert.pem`` (the TLS
identity the shims pin), ``client-ca-key.pem``/``client-ca-cert.pem`` (signs client identities),
``master.key`` (encrypts the store), ``cas.sqlite3`` (WAL), and ``ready.json`` while serving.

With ``--db postgresql://...`` the sessions, the audit chain and the challenges live in that
database instead of ``cas.sqlite3``, and several CAS processes may serve it: each needs the
same ``master.key`` and TLS keys in its state dir (see docs/dev/cas-store.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sconify.cas.app import create_api_app, create_enclave_app
from sconify.cas.attest import NonceBook
from sconify.cas.gate import ConnectionLimits, raise_fd_limit
from sconify.cas.serving import Listener, bind, serve
from sconify.cas.store import SessionStore, open_store
from sconify.cas.store.nonces import StoredNonceBook
from sconify.cas.tls import CasTls

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 8081
DEFAULT_ENCLAVE_PORT = 18765
#: Seconds a connection may stay without a complete request head, from its start or from its
#: last answer (idle keep-alive and slow headers alike).
IDLE_TIMEOUT = 15.0


def run(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    api_port: int = DEFAULT_API_PORT,
    enclave_port: int = DEFAULT_ENCLAVE_PORT,
    db: str | None = None,
) -> None:
    """Serve both APIs until SIGTERM/SIGINT; ``<state-dir>/ready.json`` holds the bound ports.

    ``db`` is a ``postgresql://`` URL shared by replicas; without it, SQLite in ``state_dir``.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tls = CasTls.load_or_create(state_dir)
    store = open_store(state_dir, db)
    # A database shared by replicas must hold the challenges too: one replica issues, another
    # may receive the answer. One process alone keeps them in memory (no write per challenge).
    nonces = StoredNonceBook(store) if store.shared else NonceBook()
    log.info("CAS store: %s", store.backend.describe())
    try:
        _serve(state_dir, host, api_port, enclave_port, tls, store, nonces)
    finally:
        store.close()


def _serve(
    state_dir: Path,
    host: str,
    api_port: int,
    enclave_port: int,
    tls: CasTls,
    store: SessionStore,
    nonces: NonceBook,
) -> None:
    enclave_sock = bind(host, enclave_port)
    bound_enclave = [int(enclave_sock.getsockname()[1])]
    log.info("CAS key hash %s", tls.cas_key_hash)
    open_files = raise_fd_limit()
    limits = ConnectionLimits().fitted(listeners=2)
    log.info(
        "connections: at most %d per API, %d per source address; open-file limit %d",
        limits.total,
        limits.per_source,
        open_files,
    )
    serve(
        [
            Listener(
                "enclave_port",
                create_enclave_app(store, nonces),
                host,
                bound_enclave[0],
                tls.enclave_context(),
                enclave_sock,
                access_log=False,
                limits=limits,
                idle_timeout=IDLE_TIMEOUT,
            ),
            Listener(
                "api_port",
                create_api_app(store, tls, bound_enclave),
                host,
                api_port,
                tls.api_context(),
                limits=limits,
                idle_timeout=IDLE_TIMEOUT,
            ),
        ],
        state_dir=state_dir,
        announce={"service": "cas", "cas_key_hash": tls.cas_key_hash},
    )
