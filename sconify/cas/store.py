"""The CAS's embedded store: SQLite in WAL mode, bodies and secrets encrypted at rest.

Every session version keeps its YAML text and its secret values, each sealed with AES-256-GCM
under the master key (``<state-dir>/master.key``, 0600), with the session name and hash as
associated data so a row cannot be moved to another session. Changes go through
:meth:`SessionStore.transaction` (``BEGIN IMMEDIATE``: one writer at a time, also across
processes) and leave a hash-chained entry in the audit table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sconify.canonical import canonical_json
from sconify.cas.files import load_or_create_secret
from sconify.errors import ServiceError

DB_FILE = "cas.sqlite3"
MASTER_KEY_FILE = "master.key"
_NONCE = 12

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
"""


class Conflict(Exception):
    """The compare-and-swap lost: the session's current hash is not the expected one."""


@dataclass(frozen=True)
class StoredVersion:
    """One version of a session, decrypted. ``repr`` hides the text and the secrets."""

    name: str
    hash: str
    predecessor: str | None
    text: str = field(repr=False)
    secrets: dict[str, bytes] = field(repr=False)
    created_by: str
    created_at: int


@dataclass(frozen=True)
class Head:
    """A session's current version and the identity that created its first version."""

    name: str
    current_hash: str
    creator: str


class _Sealer:
    """AES-256-GCM under the master key; ``aad`` binds a blob to its row."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise ServiceError(
                "a stored session does not decrypt under the master key",
                hint="the state dir's master.key does not belong to this database; restore it",
            ) from None


def _aad(kind: str, name: str, session_hash: str) -> bytes:
    return f"sconify-cas {kind}\0{name}\0{session_hash}".encode()


class Transaction:
    """Reads and writes inside one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, conn: sqlite3.Connection, sealer: _Sealer) -> None:
        self._conn = conn
        self._sealer = sealer

    def head(self, name: str) -> Head | None:
        """The session's current version, if it exists."""
        row = self._conn.execute(
            "SELECT name, current_hash, creator FROM sessions WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else Head(row[0], row[1], row[2])

    def version(self, name: str, session_hash: str) -> StoredVersion | None:
        """One version of a session, decrypted."""
        row = self._conn.execute(
            "SELECT predecessor, body, secrets, created_by, created_at FROM versions "
            "WHERE name = ? AND hash = ?",
            (name, session_hash),
        ).fetchone()
        if row is None:
            return None
        text = self._sealer.open(row[1], _aad("body", name, session_hash)).decode("utf-8")
        packed = json.loads(self._sealer.open(row[2], _aad("secrets", name, session_hash)))
        return StoredVersion(
            name=name,
            hash=session_hash,
            predecessor=row[0],
            text=text,
            secrets={k: base64.b64decode(v) for k, v in packed.items()},
            created_by=row[3],
            created_at=row[4],
        )

    def current(self, name: str) -> tuple[Head, StoredVersion] | None:
        """The head and its version together."""
        head = self.head(name)
        if head is None:
            return None
        version = self.version(name, head.current_hash)
        if version is None:
            raise ServiceError(f"the store lost the current version of {name!r}")
        return head, version

    def put_version(
        self,
        *,
        name: str,
        session_hash: str,
        predecessor: str | None,
        text: str,
        secrets: dict[str, bytes],
        actor: str,
    ) -> None:
        """Store a new version and move the head to it (compare-and-swap on ``predecessor``).

        With ``predecessor`` ``None`` the session must not exist; otherwise its current hash
        must equal ``predecessor``. Raises :class:`Conflict` when that does not hold.
        """
        now = int(time.time())
        packed = json.dumps({k: base64.b64encode(v).decode() for k, v in secrets.items()})
        try:
            self._conn.execute(
                "INSERT INTO versions (name, hash, predecessor, body, secrets, created_by, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    session_hash,
                    predecessor,
                    self._sealer.seal(text.encode("utf-8"), _aad("body", name, session_hash)),
                    self._sealer.seal(packed.encode(), _aad("secrets", name, session_hash)),
                    actor,
                    now,
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"version {session_hash} of {name!r} already exists") from None
        if predecessor is None:
            try:
                self._conn.execute(
                    "INSERT INTO sessions (name, current_hash, creator, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, session_hash, actor, now, now),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"session {name!r} already exists") from None
            action = "create"
        else:
            cursor = self._conn.execute(
                "UPDATE sessions SET current_hash = ?, updated_at = ? "
                "WHERE name = ? AND current_hash = ?",
                (session_hash, now, name, predecessor),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"the current version of {name!r} is not {predecessor}")
            action = "update"
        self._audit(
            {
                "action": action,
                "actor": actor,
                "at": now,
                "hash": session_hash,
                "name": name,
                "predecessor": predecessor,
            }
        )

    def _audit(self, entry: dict[str, object]) -> None:
        row = self._conn.execute(
            "SELECT entry_hash FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        previous = row[0] if row else "0" * 64
        text = canonical_json({**entry, "previous": previous}).decode()
        entry_hash = hashlib.sha256(text.encode()).hexdigest()
        self._conn.execute(
            "INSERT INTO audit (entry, entry_hash) VALUES (?, ?)", (text, entry_hash)
        )


class SessionStore:
    """The CAS database in ``state_dir``; creates it and the master key on first use."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / DB_FILE
        self._sealer = _Sealer(load_or_create_secret(state_dir / MASTER_KEY_FILE, 32))
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        os.chmod(self._path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction: committed when the block ends, rolled back on error."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(conn, self._sealer)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def reader(self) -> Iterator[Transaction]:
        """A read-only snapshot (a deferred transaction)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            try:
                yield Transaction(conn, self._sealer)
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()

    def audit_chain_valid(self) -> bool:
        """Whether every audit entry links to the one before it and hashes to its stored hash."""
        conn = self._connect()
        try:
            previous = "0" * 64
            for text, entry_hash in conn.execute(
                "SELECT entry, entry_hash FROM audit ORDER BY seq"
            ):
                if hashlib.sha256(text.encode()).hexdigest() != entry_hash:
                    return False
                if json.loads(text).get("previous") != previous:
                    return False
                previous = entry_hash
            return True
        finally:
            conn.close()
