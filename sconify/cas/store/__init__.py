"""The CAS's store: session versions, sealed secrets, the audit chain and (shared) challenges.

Every session version keeps its YAML text and its secret values, each sealed with AES-256-GCM
under the master key (``<state-dir>/master.key``, 0600), with the session name and hash as
associated data so a row cannot be moved to another session. Changes go through
:meth:`SessionStore.transaction` (one writer at a time, also across processes) and leave a
hash-chained entry in the audit table.

Two backends: SQLite in the state dir (the default, one CAS process) and PostgreSQL
(``--db postgresql://...``, any number of CAS processes sharing the state). Pick one with
:func:`open_store`.
"""

from __future__ import annotations

from pathlib import Path

from sconify.cas.store.core import (
    MASTER_KEY_FILE,
    AuditReport,
    Conflict,
    Head,
    SessionStore,
    StoredVersion,
    Transaction,
)
from sconify.cas.store.sqlite import DB_FILE
from sconify.errors import ServiceError

__all__ = [
    "DB_FILE",
    "MASTER_KEY_FILE",
    "AuditReport",
    "Conflict",
    "Head",
    "SessionStore",
    "StoredVersion",
    "Transaction",
    "open_store",
    "verify_chain",
]


def open_store(state_dir: Path, db: str | None = None) -> SessionStore:
    """The store for ``--state-dir``/``--db``: SQLite in ``state_dir`` unless ``db`` is a URL.

    The master key always comes from ``state_dir``; replicas of one PostgreSQL database need
    the same ``master.key`` (the store refuses a key that does not match the database's).
    """
    if db is None:
        return SessionStore(state_dir)
    from sconify.cas.store.postgres import PostgresBackend, is_postgres_url

    if not is_postgres_url(db):
        from sconify.errors import UsageError

        raise UsageError(
            "--db must be a postgresql:// URL",
            hint="leave --db out to use SQLite in the state dir",
        )
    return SessionStore(state_dir, PostgresBackend(db))


def verify_chain(state_dir: Path, db: str | None = None) -> AuditReport:
    """Walk the audit chain of an existing CAS; a :class:`ServiceError` names a broken entry."""
    needed = [state_dir / MASTER_KEY_FILE] + ([state_dir / DB_FILE] if db is None else [])
    missing = [path for path in needed if not path.exists()]
    if missing:
        raise ServiceError(
            f"{missing[0]} does not exist: {state_dir} is not the state dir of a CAS",
            hint="pass the --state-dir (and --db) that `sconify cas serve` was started with",
        )
    store = open_store(state_dir, db)
    try:
        report = store.verify_audit()
    finally:
        store.close()
    if not report.valid:
        raise ServiceError(
            f"audit entry {report.broken} is broken: {report.problem} "
            f"({report.entries} entries before it verify, the last one {report.head})",
            hint="the audit log was altered outside the CAS: restore the database from a backup "
            "and investigate who had write access to it",
        )
    return report
