"""The store itself, on SQLite and on a real PostgreSQL: compare-and-swap, history, sealing,
the audit chain, the master key check and stored challenges."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from sconify.cas.store import Conflict, SessionStore, open_store, verify_chain
from sconify.cas.store.nonces import StoredNonceBook
from sconify.errors import ServiceError, UsageError
from tests.support import postgres as pg_support
from tests.support.cli import Cli

postgres = pg_support.postgres
OpenStore = Callable[[], SessionStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> str | None:
    """``None`` (SQLite in the state dir) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: pg_support.PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def reopen(tmp_path: Path, db: str | None) -> Iterator[OpenStore]:
    """Open the store of this test's state dir (and database) again and again."""
    opened: list[SessionStore] = []

    def _open() -> SessionStore:
        store = open_store(tmp_path / "state", db)
        opened.append(store)
        return store

    (tmp_path / "state").mkdir(mode=0o700)
    yield _open
    for store in opened:
        store.close()


def _put(store: SessionStore, name: str, new: str, predecessor: str | None) -> None:
    with store.transaction() as tx:
        tx.put_version(
            name=name,
            session_hash=new,
            predecessor=predecessor,
            text=f"name: {name}\n# body of {new}\n",
            secrets={"token": f"secret-of-{new}".encode()},
            actor="a" * 64,
        )


def test_compare_and_swap_history_and_lineage(reopen: OpenStore) -> None:
    store = reopen()
    _put(store, "app", "h1", None)
    with pytest.raises(Conflict):
        _put(store, "app", "h1b", None)
    _put(store, "app", "h2", "h1")
    with pytest.raises(Conflict):
        _put(store, "app", "h3", "h1")
    again = reopen()
    with again.reader() as tx:
        current = tx.current("app")
        assert current is not None
        head, version = current
        assert (head.current_hash, version.predecessor) == ("h2", "h1")
        assert version.secrets == {"token": b"secret-of-h2"}
        assert "secret-of" not in repr(version) and "body of" not in repr(version)
        old = tx.version("app", "h1")
        assert old is not None and old.text.endswith("# body of h1\n")
        assert tx.version("app", "h3") is None and tx.version("app", "h1b") is None
        assert tx.lineage("app") == ["h2", "h1"]
        assert tx.lineage("nothing") == []
    report = again.verify_audit()
    assert report.valid and report.entries == 2 and len(report.head) == 64


def test_a_failed_transaction_leaves_nothing(reopen: OpenStore) -> None:
    store = reopen()
    _put(store, "app", "h1", None)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_version(
            name="app", session_hash="h2", predecessor="h1", text="x", secrets={}, actor="b"
        )
        raise RuntimeError("crash between the write and the commit")
    with store.reader() as tx:
        assert tx.lineage("app") == ["h1"] and tx.version("app", "h2") is None
    assert store.verify_audit().entries == 1


def test_another_master_key_is_refused(reopen: OpenStore, tmp_path: Path, db: str | None) -> None:
    _put(reopen(), "app", "h1", None)
    (tmp_path / "state" / "master.key").write_bytes(b"\x01" * 32)
    with pytest.raises(ServiceError) as caught:
        reopen()
    assert "master key" in caught.value.message
    assert caught.value.hint and "master.key" in caught.value.hint


def test_verify_names_the_first_broken_entry(
    reopen: OpenStore, tmp_path: Path, db: str | None
) -> None:
    store = reopen()
    for index in range(4):
        _put(store, f"s{index}", f"h{index}", None)
    intact = verify_chain(tmp_path / "state", db)
    assert intact.entries == 4
    args = ["cas", "audit", "verify", "--state-dir", str(tmp_path / "state"), "--json"]
    shown = Cli(tmp_path / "home").run("sconify", *args, *(["--db", db] if db else []))
    assert json.loads(shown.stdout) == {"entries": 4, "head": intact.head}
    forged = "UPDATE audit SET entry = replace(entry, 's2', 's9') WHERE seq = 3"
    _tamper(tmp_path / "state", db, forged)
    with pytest.raises(ServiceError) as caught:
        verify_chain(tmp_path / "state", db)
    assert "audit entry 3 is broken" in caught.value.message
    report = store.verify_audit()
    assert (report.broken, report.entries) == (3, 2)
    args = ["cas", "audit", "verify", "--state-dir", str(tmp_path / "state")]
    args += ["--db", db] if db else []
    failed = Cli(tmp_path / "home").run("sconify", *args, check=False)
    assert failed.returncode == 1 and failed.stdout == ""
    assert "audit entry 3 is broken" in failed.stderr and "hint:" in failed.stderr
    _tamper(tmp_path / "state", db, "DELETE FROM audit WHERE seq = 3")
    report = store.verify_audit()
    assert report.broken == 4 and report.problem == "entry 3 is missing"


def _tamper(state_dir: Path, db: str | None, statement: str) -> None:
    if db is None:
        import sqlite3

        with sqlite3.connect(state_dir / "cas.sqlite3") as conn:
            conn.execute(statement)
        conn.close()
    else:
        with psycopg.connect(db, autocommit=True) as pg:
            pg.execute(statement.encode())


def test_verify_needs_an_existing_cas(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as caught:
        verify_chain(tmp_path / "nothing")
    assert "not the state dir of a CAS" in caught.value.message
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(UsageError):
        open_store(tmp_path, "mysql://somewhere/db")


def test_stored_nonces_are_single_use_bound_and_expire(reopen: OpenStore) -> None:
    now = [1000.0]
    replica_a = StoredNonceBook(reopen(), clock=lambda: now[0])
    replica_b = StoredNonceBook(reopen(), clock=lambda: now[0])
    nonce = replica_a.issue("ns/app/svc")
    assert len(nonce) == 64
    assert replica_b.consume(nonce, "ns/app/svc") is None
    assert replica_a.consume(nonce, "ns/app/svc") == "the nonce is unknown or was already used"
    other = replica_a.issue("ns/app/svc")
    assert replica_b.consume(other, "ns/app/other") == "the nonce was issued for another config id"
    late = replica_b.issue("ns/app/svc")
    now[0] += 60
    assert replica_a.consume(late, "ns/app/svc") == "the nonce has expired"


def test_postgres_errors_name_the_database_not_the_password(
    tmp_path: Path, postgres: pg_support.PostgresServer
) -> None:
    url = f"postgresql://nobody:hunter2@/missing_db?host={postgres.socket_dir}&port=5432"
    with pytest.raises(ServiceError) as caught:
        open_store(tmp_path, url)
    assert "missing_db" in caught.value.message and "hunter2" not in caught.value.message
    assert caught.value.hint and "--db" in caught.value.hint
