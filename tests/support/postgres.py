"""A real PostgreSQL server for tests, from Debian's ``postgresql`` package.

::

    with run_postgres() as pg:
        url = pg.create_database()      # postgresql://postgres@/<db>?host=<socket dir>
        pg.dump(url)                     # pg_dump's plain SQL, bytes

The server runs from a temp data dir on a unix socket in that dir (no TCP port, so nothing can
clash), as the ``postgres`` user when we are root (``initdb`` refuses root), with ``trust``
authentication for that socket only. When the package is missing it is installed with apt-get
(``.ci/run`` installs it in CI). Fixtures: ``postgres`` (session scoped) and ``pg_url`` (a
fresh database per test).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg
import pytest

from tests.support.services import CasProcess, run_cas

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
_PORT = 5432  # only names the socket file inside our own directory
# What replicas of one database must share (docs/dev/cas-store.md): the store key, the TLS
# identity shims pin, and the CA that signs client certificates.
SHARED_KEY_FILES = (
    "master.key",
    "cas-key.pem",
    "cas-cert.pem",
    "client-ca-key.pem",
    "client-ca-cert.pem",
)


def _ensure_installed() -> None:
    if (PG_BIN / "initdb").exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env)


def _as_server_user() -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresServer:
    """A running server: its data dir, socket dir and log."""

    base: Path
    data_dir: Path
    log_path: Path

    @property
    def socket_dir(self) -> Path:
        """The directory holding ``.s.PGSQL.5432``."""
        return self.base / "socket"

    def url(self, dbname: str) -> str:
        """A URL for ``dbname`` through the socket, as the superuser."""
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}&port={_PORT}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"cas_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump(self, url: str) -> bytes:
        """``pg_dump`` of the database at ``url`` (plain SQL, data included)."""
        return subprocess.run(
            [str(PG_BIN / "pg_dump"), "--dbname", url], check=True, capture_output=True
        ).stdout

    def log(self) -> str:
        """The server's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its files."""
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                [
                    *_as_server_user(),
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                check=False,
                capture_output=True,
            )
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_postgres() -> PostgresServer:
    """Initialize a cluster in a new temp dir and start it; returns once it accepts connections."""
    _ensure_installed()
    # Not under pytest's tmp dirs: those are 0700 root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="sconify-pg-"))
    server = PostgresServer(base=base, data_dir=base / "data", log_path=base / "server.log")
    server.socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, SUPERUSER)
        shutil.chown(server.socket_dir, SUPERUSER)
    base.chmod(0o755)
    as_user = _as_server_user()
    try:
        subprocess.run(
            [
                *as_user,
                str(PG_BIN / "initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-k {server.socket_dir} -p {_PORT} -c listen_addresses=''"
        subprocess.run(
            [
                *as_user,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_path),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as err:
        log = server.log()
        server.stop()
        raise RuntimeError(
            f"PostgreSQL did not start: {err.stderr.decode(errors='replace')}\n{log}"
        ) from None
    return server


def share_keys(source: Path, replica: Path) -> None:
    """Copy the key files of one CAS state dir into a replica's (0600, as the CAS keeps them)."""
    replica.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in SHARED_KEY_FILES:
        target = replica / name
        shutil.copyfile(source / name, target)
        target.chmod(0o600)


def run_cas_on(state_dir: Path, db: str | None) -> CasProcess:
    """Start ``sconify cas serve --db URL`` (SQLite in ``state_dir`` for ``None``) on port 0."""
    return run_cas(state_dir, db=db)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session."""
    with run_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty database for one test."""
    return postgres.create_database()
