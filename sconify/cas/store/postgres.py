"""The shared store: one PostgreSQL database that several CAS processes (replicas) serve.

Same tables and SQL as SQLite (``BYTEA`` for the sealed blobs). Every write transaction first
takes one transaction-scoped advisory lock, so writers are serialized across replicas exactly
like SQLite's ``BEGIN IMMEDIATE``: the compare-and-swap on ``predecessor`` and the audit chain
head are read and written by one writer at a time, and the chain stays linear. Reads run in
``REPEATABLE READ READ ONLY`` snapshots and never wait for the lock. Challenges (nonces) live
in the ``nonces`` table, so a challenge issued by one replica is answered at another, once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo

from sconify.cas.store.core import Backend, Sql
from sconify.errors import ServiceError

# Arbitrary constants naming the advisory locks (ASCII "sconifyw" and "sconifys").
_WRITER_LOCK = 0x73636F6E69667977
_SCHEMA_LOCK = 0x73636F6E69667973

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sessions (
        name TEXT PRIMARY KEY,
        current_hash TEXT NOT NULL,
        creator TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS versions (
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        predecessor TEXT,
        body BYTEA NOT NULL,
        secrets BYTEA NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (name, hash)
    )""",
    """CREATE TABLE IF NOT EXISTS audit (
        seq BIGINT PRIMARY KEY,
        entry TEXT NOT NULL,
        entry_hash TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS nonces (
        digest TEXT PRIMARY KEY,
        config_id TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires)",
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
]

_INTEGRITY = (psycopg.errors.UniqueViolation,)
_MAX_IDLE = 8


def is_postgres_url(url: str) -> bool:
    """Whether ``--db`` names a PostgreSQL database."""
    return url.startswith(("postgresql://", "postgres://"))


class PostgresBackend(Backend):
    """A PostgreSQL database named by a ``postgresql://`` URL; creates its tables on first use."""

    shared = True

    def __init__(self, url: str) -> None:
        self._url = url
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                conn.execute(statement)

    def describe(self) -> str:
        """Database, user and host of the URL, without its password."""
        try:
            parts = conninfo.conninfo_to_dict(self._url)
        except psycopg.ProgrammingError:
            return "the PostgreSQL database given with --db"
        host = parts.get("host") or "the default socket"
        return f"postgresql database {parts.get('dbname', '?')!s} on {host!s}"

    def _open(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=30)
        except psycopg.Error as err:
            # The server's message names the host, database or user; never the password.
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ServiceError(
                f"cannot connect to {self.describe()}: {reason}",
                hint="check the --db URL, that PostgreSQL runs, and that the user may connect",
            ) from None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._open()
        healthy = False
        try:
            yield conn
            healthy = True
        finally:
            idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if healthy and idle and not conn.closed:
                with self._lock:
                    if len(self._idle) < _MAX_IDLE:
                        self._idle.append(conn)
                        conn = None
            if conn is not None:
                conn.close()

    @contextmanager
    def write(self) -> Iterator[Sql]:
        """``BEGIN``, the writer lock, ... ``COMMIT`` (``ROLLBACK`` on error)."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
                yield Sql(conn, "%s", _INTEGRITY)
            except BaseException:
                if not conn.closed:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Sql]:
        """A repeatable-read, read-only snapshot, always rolled back."""
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield Sql(conn, "%s", _INTEGRITY)
            finally:
                if not conn.closed:
                    conn.execute("ROLLBACK")

    @contextmanager
    def autocommit(self) -> Iterator[Sql]:
        """Statements that commit one by one."""
        with self._connection() as conn:
            yield Sql(conn, "%s", _INTEGRITY)

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
