"""What every CAS store shares: sealing under the master key, the transaction API, the audit chain.

A store is :class:`SessionStore` over a :class:`Backend` (SQLite in the state dir, or
PostgreSQL shared by replicas). The SQL is written once, with ``?`` placeholders; a backend
only opens connections, begins and ends transactions, and says which exception is a
uniqueness violation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sconify.canonical import canonical_json
from sconify.cas.files import load_or_create_secret
from sconify.errors import ServiceError

MASTER_KEY_FILE = "master.key"
GENESIS = "0" * 64
_NONCE = 12
_KEY_CHECK = "master_key_check"


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


@dataclass(frozen=True)
class AuditReport:
    """The outcome of walking the audit chain from its first entry to its head.

    ``broken`` is the sequence number of the first entry that does not verify (``None`` when
    the chain is intact) and ``problem`` says why.
    """

    entries: int
    head: str
    broken: int | None = None
    problem: str | None = None

    @property
    def valid(self) -> bool:
        """Whether every entry verified."""
        return self.broken is None


class Sql:
    """One open connection; statements use ``?`` and the backend's placeholder replaces it."""

    def __init__(self, conn: Any, placeholder: str, integrity: tuple[type[Exception], ...]):
        self._conn = conn
        self._placeholder = placeholder
        self.integrity = integrity

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        return self._conn.execute(sql, params)

    def one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        """The first row of a query, or ``None``."""
        row = self._run(sql, params).fetchone()
        return None if row is None else tuple(row)

    def rows(self, sql: str, *params: Any) -> Iterator[tuple[Any, ...]]:
        """Every row of a query, streamed."""
        for row in self._run(sql, params):
            yield tuple(row)

    def run(self, sql: str, *params: Any) -> int:
        """Execute a statement; the number of rows it changed."""
        return int(self._run(sql, params).rowcount)


class Backend(ABC):
    """Connections and transaction boundaries of one database engine.

    ``shared`` says whether several CAS processes may serve the database at once (then
    challenges must live in it too).
    """

    shared = False

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for logs and errors (never with a password)."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Sql]:
        """A write transaction that holds the store's single writer lock until it ends."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Sql]:
        """A read-only snapshot."""

    @abstractmethod
    def autocommit(self) -> AbstractContextManager[Sql]:
        """A connection whose every statement commits on its own (nonces)."""

    def close(self) -> None:  # noqa: B027 - optional hook, SQLite keeps nothing open
        """Release pooled connections."""


class _Sealer:
    """AES-256-GCM under the master key; ``aad`` binds a blob to its row."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.check = hmac.new(key, b"sconify-cas master key check", hashlib.sha256).hexdigest()

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


def entry_hash(text: str) -> str:
    """The hash that the next audit entry names as ``previous``."""
    return hashlib.sha256(text.encode()).hexdigest()


class Transaction:
    """Reads and writes inside one transaction of the store."""

    def __init__(self, sql: Sql, sealer: _Sealer) -> None:
        self._sql = sql
        self._sealer = sealer

    def head(self, name: str) -> Head | None:
        """The session's current version, if it exists."""
        row = self._sql.one("SELECT name, current_hash, creator FROM sessions WHERE name = ?", name)
        return None if row is None else Head(row[0], row[1], row[2])

    def version(self, name: str, session_hash: str) -> StoredVersion | None:
        """One version of a session, decrypted."""
        row = self._sql.one(
            "SELECT predecessor, body, secrets, created_by, created_at FROM versions "
            "WHERE name = ? AND hash = ?",
            name,
            session_hash,
        )
        if row is None:
            return None
        text = self._sealer.open(bytes(row[1]), _aad("body", name, session_hash)).decode()
        packed = json.loads(self._sealer.open(bytes(row[2]), _aad("secrets", name, session_hash)))
        return StoredVersion(
            name=name,
            hash=session_hash,
            predecessor=row[0],
            text=text,
            secrets={k: base64.b64decode(v) for k, v in packed.items()},
            created_by=row[3],
            created_at=int(row[4]),
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

    def lineage(self, name: str) -> list[str]:
        """The version hashes from the current one back to the first, following predecessors.

        Raises :class:`ServiceError` when a link is missing (a half-written history).
        """
        head = self.head(name)
        if head is None:
            return []
        chain: list[str] = []
        wanted: str | None = head.current_hash
        while wanted is not None:
            row = self._sql.one(
                "SELECT predecessor FROM versions WHERE name = ? AND hash = ?", name, wanted
            )
            if row is None or wanted in chain:
                raise ServiceError(f"the history of {name!r} is broken at version {wanted}")
            chain.append(wanted)
            wanted = row[0]
        return chain

    def hashes(self, name: str) -> set[str]:
        """Every stored version hash of ``name``, in no order."""
        return {row[0] for row in self._sql.rows("SELECT hash FROM versions WHERE name = ?", name)}

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
            self._sql.run(
                "INSERT INTO versions (name, hash, predecessor, body, secrets, created_by, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                name,
                session_hash,
                predecessor,
                self._sealer.seal(text.encode("utf-8"), _aad("body", name, session_hash)),
                self._sealer.seal(packed.encode(), _aad("secrets", name, session_hash)),
                actor,
                now,
            )
        except self._sql.integrity:
            raise Conflict(f"version {session_hash} of {name!r} already exists") from None
        if predecessor is None:
            try:
                self._sql.run(
                    "INSERT INTO sessions (name, current_hash, creator, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    name,
                    session_hash,
                    actor,
                    now,
                    now,
                )
            except self._sql.integrity:
                raise Conflict(f"session {name!r} already exists") from None
            action = "create"
        else:
            changed = self._sql.run(
                "UPDATE sessions SET current_hash = ?, updated_at = ? "
                "WHERE name = ? AND current_hash = ?",
                session_hash,
                now,
                name,
                predecessor,
            )
            if changed != 1:
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
        # Callers hold the writer lock, so the head read here is still the head at commit.
        row = self._sql.one("SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1")
        seq, previous = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
        text = canonical_json({**entry, "previous": previous}).decode()
        self._sql.run(
            "INSERT INTO audit (seq, entry, entry_hash) VALUES (?, ?, ?)",
            seq,
            text,
            entry_hash(text),
        )


class SessionStore:
    """The CAS database; the master key is ``<state-dir>/master.key`` (created on first use).

    ``SessionStore(state_dir)`` is the SQLite store in the state dir; :func:`open_store` picks
    PostgreSQL for a ``postgresql://`` URL.
    """

    def __init__(self, state_dir: Path, backend: Backend | None = None) -> None:
        if backend is None:
            from sconify.cas.store.sqlite import SqliteBackend

            backend = SqliteBackend(state_dir)
        self.backend = backend
        self.shared = backend.shared
        self._sealer = _Sealer(load_or_create_secret(state_dir / MASTER_KEY_FILE, 32))
        self._check_master_key()

    def _check_master_key(self) -> None:
        with self.backend.write() as sql:
            row = sql.one("SELECT value FROM meta WHERE key = ?", _KEY_CHECK)
            if row is None:
                sql.run(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", _KEY_CHECK, self._sealer.check
                )
            elif not hmac.compare_digest(str(row[0]), self._sealer.check):
                raise ServiceError(
                    f"the master key does not belong to the database at {self.backend.describe()}",
                    hint="every CAS serving one database needs the same master.key: copy it "
                    "from the state dir of the first replica (or restore it from backup)",
                )

    def close(self) -> None:
        """Release the backend's connections."""
        self.backend.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction: committed when the block ends, rolled back on error.

        Writers are serialized (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), also
        across processes.
        """
        with self.backend.write() as sql:
            yield Transaction(sql, self._sealer)

    @contextmanager
    def reader(self) -> Iterator[Transaction]:
        """A read-only snapshot."""
        with self.backend.read() as sql:
            yield Transaction(sql, self._sealer)

    def add_nonce(self, digest: str, config_id: str, expires: float, now: float) -> int:
        """Record an issued challenge; drops expired ones; the number still outstanding."""
        with self.backend.autocommit() as sql:
            sql.run("DELETE FROM nonces WHERE expires <= ?", now)
            sql.run(
                "INSERT INTO nonces (digest, config_id, expires) VALUES (?, ?, ?)",
                digest,
                config_id,
                expires,
            )
            row = sql.one("SELECT count(*) FROM nonces")
            return int(row[0]) if row else 0

    def take_nonce(self, digest: str) -> tuple[str, float] | None:
        """Remove a challenge and return its config id and expiry: only one caller gets it."""
        with self.backend.autocommit() as sql:
            row = sql.one(
                "DELETE FROM nonces WHERE digest = ? RETURNING config_id, expires", digest
            )
        return None if row is None else (str(row[0]), float(row[1]))

    def verify_audit(self) -> AuditReport:
        """Walk the audit chain; stops at the first entry that does not verify."""
        count, previous, expected_seq = 0, GENESIS, 1
        with self.backend.read() as sql:
            for seq, text, stored_hash in sql.rows(
                "SELECT seq, entry, entry_hash FROM audit ORDER BY seq"
            ):
                problem = None
                if int(seq) != expected_seq:
                    problem = f"entry {expected_seq} is missing"
                elif entry_hash(text) != stored_hash:
                    problem = "its content does not hash to its stored hash"
                else:
                    try:
                        linked = json.loads(text).get("previous")
                    except ValueError:
                        linked = None
                    if linked != previous:
                        problem = "it does not name the entry before it as previous"
                if problem is not None:
                    return AuditReport(count, previous, broken=int(seq), problem=problem)
                count, previous, expected_seq = count + 1, stored_hash, expected_seq + 1
        return AuditReport(count, previous)

    def audit_chain_valid(self) -> bool:
        """Whether every audit entry links to the one before it and hashes to its stored hash."""
        return self.verify_audit().valid
