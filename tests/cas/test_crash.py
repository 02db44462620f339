"""``kill -9`` of a CAS in the middle of a stream of updates, then a restart: nothing that was
acknowledged is lost, nothing half-written remains, the audit chain verifies, and no secret,
volume key or session body is in plaintext in the state dir, the logs or the database."""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from sconify.cas.enclave_client import fetch_config
from sconify.cas.identity import Identity
from sconify.cas.store import open_store
from sconify.session import load_session
from tests.cas.policies import FSPF_KEY, MEASUREMENT, namespace, service_session
from tests.support import postgres as pg_support
from tests.support.cli import Cli
from tests.support.services import LasProcess

postgres = pg_support.postgres

NAME = "crash/app"
ACKS_BEFORE_KILL = 20
# Guards against a hung test only; nothing is asserted about speed.
STREAM_GUARD_SECONDS = 300


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> str | None:
    """``None`` (SQLite in the state dir) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: pg_support.PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


def test_kill_9_mid_stream_keeps_every_acknowledged_update(
    db: str | None, tmp_path: Path, alice: Identity, las: LasProcess, request: pytest.FixtureRequest
) -> None:
    state = tmp_path / "cas"
    pins = tmp_path / "pins.json"
    acked: list[str] = []
    ended: list[BaseException] = []
    stop = threading.Event()
    with pg_support.run_cas_on(state, db) as first:
        client = first.client(alice, pins_file=pins)
        client.create_session(namespace("crash"))
        acked.append(client.create_session(service_session(NAME, qe_key_id=las.qe_key_id)))

        def stream() -> None:
            index = 0
            while not stop.is_set():
                text = service_session(
                    NAME, qe_key_id=las.qe_key_id, env_value=f"v{index}", predecessor=acked[-1]
                )
                try:
                    acked.append(client.create_session(text))
                except BaseException as err:  # the CAS died under us: the stream ends here
                    ended.append(err)
                    return
                index += 1

        thread = threading.Thread(target=stream)
        thread.start()
        guard = time.monotonic() + STREAM_GUARD_SECONDS
        while len(acked) <= ACKS_BEFORE_KILL and thread.is_alive() and time.monotonic() < guard:
            time.sleep(0.01)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
        # The files exactly as the crash left them (SQLite: an unchecked WAL), grepped below.
        crashed = {f"{p} (after the kill)": p.read_bytes() for p in state.rglob("*") if p.is_file()}
        thread.join(60)
        stop.set()
        assert not thread.is_alive()
        client.close()
    assert len(acked) > ACKS_BEFORE_KILL, f"the stream stopped early: {ended}\n{first.log()}"
    assert ended, "the stream should have been cut by the kill"

    with pg_support.run_cas_on(state, db) as second:
        client = second.client(alice, pins_file=pins)
        for session_hash in acked:
            assert client.read_session(NAME, hash=session_hash).hash == session_hash
        current = client.read_session(NAME)
        # The update in flight at the kill may have committed without its answer arriving.
        assert current.hash == acked[-1] or current.predecessor == acked[-1]
        config = fetch_config(
            second.enclave_addr, second.cas_key_hash, las.addr, f"{NAME}/app", MEASUREMENT
        )
        client.close()

    store = open_store(state, db)
    try:
        with store.reader() as tx:
            lineage = tx.lineage(NAME)
            assert tx.hashes(NAME) == set(lineage), "a version outside the history"
            for session_hash in lineage:
                version = tx.version(NAME, session_hash)
                assert version is not None
                assert load_session(version.text).name == NAME
                assert set(version.secrets) == {"token", "key", "shared"}
        assert lineage[::-1][: len(acked)] == acked
    finally:
        store.close()
    verify = ["cas", "audit", "verify", "--state-dir", str(state)] + (["--db", db] if db else [])
    result = Cli(tmp_path / "home").run("sconify", *verify)
    assert result.stdout.startswith(f"{len(lineage) + 1} entries, head ")

    token = config["command"][3]
    key = bytes.fromhex(config["environment"]["KEY_HEX"])
    needles = [
        token.encode(),
        key,
        key.hex().encode(),
        base64.b64encode(key),
        FSPF_KEY.encode(),
        b"visible-to-all",
        b"python3 app.py",
        "grüß dich".encode(),
    ]
    haystacks = {str(path): path.read_bytes() for path in state.rglob("*") if path.is_file()}
    haystacks.update(crashed)
    haystacks.update({str(p): p.read_bytes() for p in tmp_path.glob("*.log")})
    if db is not None:
        server: pg_support.PostgresServer = request.getfixturevalue("postgres")
        haystacks["pg_dump"] = server.dump(db)
        assert b"COPY public.versions" in haystacks["pg_dump"]
        haystacks["postgres log"] = server.log().encode()
        for path in server.data_dir.rglob("*"):
            if path.is_file():
                haystacks[str(path)] = path.read_bytes()
    else:
        # The WAL file exists only while a connection is open, so it may or may not be there.
        assert any(name.endswith("cas.sqlite3 (after the kill)") for name in haystacks)
    for where, data in haystacks.items():
        for needle in needles:
            assert needle not in data, f"{needle[:6]!r}... in plaintext in {where}"
