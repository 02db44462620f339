"""Two CAS processes on one PostgreSQL database serve one state, through the real TLS APIs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sconify.cas.client import CasClient
from sconify.cas.enclave_client import EnclaveClient
from sconify.cas.identity import Identity
from sconify.crypto.jwe import TeePrivateKey, open_sealed
from sconify.errors import CasRefused, ServiceError
from sconify.las.quote import bind_report_data
from tests.cas.policies import MEASUREMENT, namespace, service_session
from tests.support import postgres as pg_support
from tests.support.cli import Cli
from tests.support.services import CasProcess, LasProcess

postgres = pg_support.postgres
pg_url = pg_support.pg_url


@dataclass
class Replicas:
    """Replicas ``a`` and ``b`` of one database ``url``."""

    a: CasProcess
    b: CasProcess
    url: str


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[Replicas]:
    """Replica A creates the keys; B gets a copy of them and serves the same database."""
    with pg_support.run_cas_on(tmp_path / "a", pg_url) as a:
        pg_support.share_keys(tmp_path / "a", tmp_path / "b")
        with pg_support.run_cas_on(tmp_path / "b", pg_url) as b:
            assert a.cas_key_hash == b.cas_key_hash
            yield Replicas(a, b, pg_url)


def _clients(replicas: Replicas, identity: Identity, count: int, pins: Path) -> list[CasClient]:
    return [
        (replicas.a if index % 2 == 0 else replicas.b).client(identity, pins_file=pins)
        for index in range(count)
    ]


def test_eight_concurrent_updates_across_replicas_one_wins(
    replicas: Replicas, alice: Identity, las: LasProcess, tmp_path: Path
) -> None:
    pins = tmp_path / "pins.json"
    setup = replicas.a.client(alice, pins_file=pins)
    setup.create_session(namespace("race"))
    base = setup.create_session(service_session("race/app", qe_key_id=las.qe_key_id))
    contenders = _clients(replicas, alice, 8, pins)
    for client in contenders:
        client.version()  # connect and enroll before the race
    start = threading.Barrier(len(contenders))
    outcomes: list[str | Exception] = [""] * len(contenders)

    def update(index: int) -> None:
        text = service_session(
            "race/app", qe_key_id=las.qe_key_id, env_value=f"v{index}", predecessor=base
        )
        start.wait()
        try:
            outcomes[index] = contenders[index].create_session(text)
        except (CasRefused, ServiceError) as err:
            outcomes[index] = err

    threads = [threading.Thread(target=update, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, CasRefused) and o.status == 409]
    assert len(winners) == 1 and len(losers) == 7, outcomes
    assert all(loser.check == "predecessor" for loser in losers)
    reader_b = replicas.b.client(alice, pins_file=pins)
    assert reader_b.current_hash("race/app") == winners[0]
    record = reader_b.read_session("race/app")
    assert record.predecessor == base
    assert reader_b.read_session("race/app", hash=base).hash == base
    for client in [setup, reader_b, *contenders]:
        client.close()


def test_concurrent_writers_on_both_replicas_keep_one_linear_audit_chain(
    replicas: Replicas, alice: Identity, tmp_path: Path
) -> None:
    writers = _clients(replicas, alice, 8, tmp_path / "pins.json")
    for client in writers:
        client.version()
    start = threading.Barrier(len(writers))
    failures: list[Exception] = []

    def write(index: int) -> None:
        start.wait()
        try:
            for round_ in range(3):
                writers[index].create_session(namespace(f"chain-{index}-{round_}"))
        except Exception as err:
            failures.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for client in writers:
        client.close()
    cli = Cli(tmp_path / "home")
    for state in (replicas.a.state_dir, replicas.b.state_dir):
        result = cli.run(
            "sconify", "cas", "audit", "verify", "--state-dir", str(state), "--db", replicas.url
        )
        assert result.stdout.startswith("24 entries, head ")


def test_a_challenge_from_one_replica_is_accepted_by_the_other_once(
    replicas: Replicas, alice: Identity, las: LasProcess, tmp_path: Path
) -> None:
    client = replicas.a.client(alice, pins_file=tmp_path / "pins.json")
    client.create_session(namespace("attest"))
    session_hash = client.create_session(service_session("attest/app", qe_key_id=las.qe_key_id))
    client.close()
    at_a = EnclaveClient(replicas.a.enclave_addr, cas_key_hash=replicas.a.cas_key_hash)
    at_b = EnclaveClient(replicas.b.enclave_addr, cas_key_hash=replicas.b.cas_key_hash)
    try:
        tee = TeePrivateKey.generate()
        nonce = at_a.challenge("attest/app/app")
        quote = las.client().quote(
            MEASUREMENT, bind_report_data(nonce, tee.public_key.thumbprint())
        )
        token = at_b.attest("attest/app/app", nonce, quote, tee.public_key)
        assert f'"session_hash":"{session_hash}"' in open_sealed(token, tee).decode()
        for replica in (at_b, at_a):
            with pytest.raises(CasRefused) as caught:
                replica.attest("attest/app/app", nonce, quote, tee.public_key)
            assert (caught.value.status, caught.value.check) == (403, "nonce")
    finally:
        at_a.close()
        at_b.close()


def test_a_replica_with_another_master_key_does_not_start(
    replicas: Replicas, tmp_path: Path
) -> None:
    with pytest.raises(ServiceError) as caught:
        pg_support.run_cas_on(tmp_path / "stranger", replicas.url)
    assert "master key does not belong to the database" in caught.value.message
