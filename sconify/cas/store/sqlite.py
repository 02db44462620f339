"""The embedded store: one SQLite file in WAL mode in the state dir (``cas.sqlite3``, 0600).

``BEGIN IMMEDIATE`` makes writers wait for each other, also across processes; readers see a
snapshot and never wait. ``synchronous=NORMAL`` keeps every committed transaction across a
crash of the process (not of the machine), which is what ``kill -9`` tests.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sconify.cas.store.core import Backend, Sql

DB_FILE = "cas.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY,
    current_hash TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    predecessor TEXT,
    body BLOB NOT NULL,
    secrets BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, hash)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    digest TEXT PRIMARY KEY,
    config_id TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_INTEGRITY = (sqlite3.IntegrityError,)


class SqliteBackend(Backend):
    """``<state-dir>/cas.sqlite3``, created on first use."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DB_FILE
        # Reads reuse one connection per thread (opening one cost ~10% of an attestation);
        # writes open their own, so a writer never shares a connection with a reader.
        self._readers = threading.local()
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()
        os.chmod(self.path, 0o600)

    def describe(self) -> str:
        """The database file."""
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def write(self) -> Iterator[Sql]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Sql(conn, "?", _INTEGRITY)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[Sql]:
        """A deferred transaction, always rolled back, on this thread's reading connection."""
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect()
        conn.execute("BEGIN")
        try:
            yield Sql(conn, "?", _INTEGRITY)
        finally:
            conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close this thread's reading connection (other threads' close when they end)."""
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is not None:
            conn.close()
            self._readers.conn = None

    @contextmanager
    def autocommit(self) -> Iterator[Sql]:
        """Statements outside any explicit transaction."""
        conn = self._connect()
        try:
            yield Sql(conn, "?", _INTEGRITY)
        finally:
            conn.close()
