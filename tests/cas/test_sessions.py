"""Sessions on a real CAS over mutual TLS: create, update, read, namespaces, access, races."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sconify.cas.client import CasClient
from sconify.cas.identity import Identity
from sconify.cas.pinning import pins_path
from sconify.cas.store import SessionStore
from sconify.errors import CasRefused, ServiceError
from sconify.session import load_session, session_hash
from tests.cas.policies import namespace, service_session
from tests.support.services import CasProcess, LasProcess, run_cas

Connect = Callable[[Identity], CasClient]


def test_version_reports_key_hash_and_enclave_port(
    cas: CasProcess, alice: Identity, connect: Connect
) -> None:
    info = connect(alice).version()
    assert info.cas_key_hash == cas.cas_key_hash
    assert f"127.0.0.1:{info.enclave_port}" == cas.enclave_addr
    assert info.version


def test_create_read_update_read(
    alice: Identity, connect: Connect, ns: str, las: LasProcess
) -> None:
    client = connect(alice)
    ns_hash = client.create_session(namespace(ns))
    assert ns_hash == session_hash(load_session(namespace(ns)))
    name = f"{ns}/app"
    text = service_session(name, qe_key_id=las.qe_key_id)
    first = client.create_session(text)
    assert first == session_hash(load_session(text))
    record = client.read_session(name)
    assert (record.name, record.hash, record.session, record.predecessor) == (
        name,
        first,
        text,
        None,
    )
    assert client.current_hash(name) == first

    changed = service_session(name, qe_key_id=las.qe_key_id, env_value="two")
    second = client.update_session(changed)
    assert second != first
    latest = client.read_session(name)
    assert latest.hash == second and latest.predecessor == first
    assert "MODE: two" in latest.session and f"predecessor: {first}" in latest.session
    assert client.read_session(name, hash=first).session == text
    with pytest.raises(CasRefused) as caught:
        client.read_session(name, hash="0" * 64)
    assert caught.value.status == 404


def test_create_twice_is_a_conflict_and_update_of_nothing_is_not_found(
    alice: Identity, connect: Connect, ns: str
) -> None:
    client = connect(alice)
    client.create_session(namespace(ns))
    with pytest.raises(CasRefused) as caught:
        client.create_session(namespace(ns))
    assert (caught.value.status, caught.value.check) == (409, "predecessor")
    assert caught.value.hint and "session update" in caught.value.hint
    with pytest.raises(CasRefused) as caught:
        client.create_session(f"predecessor: {'1' * 64}\n" + namespace(f"{ns}-missing"))
    assert caught.value.status == 404
    assert client.current_hash(f"{ns}-missing") is None


def test_a_stale_predecessor_is_a_conflict(alice: Identity, connect: Connect, ns: str) -> None:
    client = connect(alice)
    first = client.create_session(namespace(ns))
    client.create_session(f"predecessor: {first}\n" + namespace(ns, extra="# v2\n"))
    second = client.current_hash(ns)
    assert second != first
    with pytest.raises(CasRefused) as caught:
        client.create_session(f"predecessor: {first}\n" + namespace(ns, create_sessions="[ANY]"))
    assert (caught.value.status, caught.value.check) == (409, "predecessor")
    assert client.current_hash(ns) == second


def test_invalid_sessions_are_refused_with_the_field(
    alice: Identity, connect: Connect, ns: str
) -> None:
    with pytest.raises(CasRefused) as caught:
        connect(alice).create_session(f"name: {ns}\nversion: '0.3'\nservices: [{{name: x}}]\n")
    assert (caught.value.status, caught.value.check) == (400, "session")
    assert "services[0].command" in caught.value.message


def test_namespace_must_exist(alice: Identity, connect: Connect, ns: str, las: LasProcess) -> None:
    with pytest.raises(CasRefused) as caught:
        connect(alice).create_session(service_session(f"{ns}/app", qe_key_id=las.qe_key_id))
    assert (caught.value.status, caught.value.check) == (404, "namespace")


def test_nested_namespaces(alice: Identity, connect: Connect, ns: str) -> None:
    client = connect(alice)
    client.create_session(namespace(ns))
    client.create_session(namespace(f"{ns}/team"))
    client.create_session(namespace(f"{ns}/team/project"))
    with pytest.raises(CasRefused):
        client.create_session(namespace(f"{ns}/other/project"))


def test_another_identity_cannot_create_in_read_or_update(
    alice: Identity, bob: Identity, connect: Connect, ns: str, las: LasProcess
) -> None:
    owner, intruder = connect(alice), connect(bob)
    owner.create_session(namespace(ns))
    name = f"{ns}/app"
    first = owner.create_session(service_session(name, qe_key_id=las.qe_key_id))

    # bob holds no right on either: every answer is the one a missing session gets.
    with pytest.raises(CasRefused) as caught:
        intruder.create_session(service_session(f"{ns}/mine", qe_key_id=las.qe_key_id))
    assert (caught.value.status, caught.value.check) == (404, "namespace")
    with pytest.raises(CasRefused) as caught:
        intruder.read_session(name)
    assert (caught.value.status, caught.value.check) == (404, "session")
    with pytest.raises(CasRefused) as caught:
        intruder.create_session(
            service_session(name, qe_key_id=las.qe_key_id, env_value="evil", predecessor=first)
        )
    assert (caught.value.status, caught.value.check) == (404, "session")
    with pytest.raises(CasRefused) as caught:
        intruder.create_session(service_session(name, qe_key_id=las.qe_key_id))
    assert (caught.value.status, caught.value.check) == (404, "namespace")
    assert owner.current_hash(name) == first


def test_access_can_be_granted_by_key_hash_and_to_anyone(
    alice: Identity, bob: Identity, connect: Connect, ns: str, las: LasProcess
) -> None:
    owner, friend = connect(alice), connect(bob)
    owner.create_session(namespace(ns, create_sessions=f"[CREATOR, {bob.key_hash}]"))
    friend.create_session(namespace(f"{ns}/friends-space"))
    name = f"{ns}/shared"
    first = owner.create_session(
        service_session(name, qe_key_id=las.qe_key_id, read="[ANY]", update=f"[{bob.key_hash}]")
    )
    assert friend.read_session(name).hash == first
    second = friend.update_session(
        service_session(name, qe_key_id=las.qe_key_id, read="[ANY]", update="[NONE]")
    )
    assert owner.read_session(name).hash == second
    with pytest.raises(CasRefused) as caught:
        owner.update_session(service_session(name, qe_key_id=las.qe_key_id, read="[ANY]"))
    assert caught.value.status == 403


def test_concurrent_updates_exactly_one_wins(
    alice: Identity, connect: Connect, ns: str, las: LasProcess
) -> None:
    setup = connect(alice)
    setup.create_session(namespace(ns))
    name = f"{ns}/raced"
    base = setup.create_session(service_session(name, qe_key_id=las.qe_key_id))
    contenders = [connect(alice) for _ in range(8)]
    for client in contenders:
        client.version()  # connect and enroll before the race
    start = threading.Barrier(len(contenders))
    outcomes: list[str | CasRefused] = [""] * len(contenders)

    def update(index: int) -> None:
        text = service_session(
            name, qe_key_id=las.qe_key_id, env_value=f"v{index}", predecessor=base
        )
        start.wait()
        try:
            outcomes[index] = contenders[index].create_session(text)
        except CasRefused as err:
            outcomes[index] = err

    threads = [threading.Thread(target=update, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, CasRefused)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 7 and all(e.status == 409 for e in losers)
    assert setup.current_hash(name) == winners[0]


def test_public_values_and_only_those(
    alice: Identity, connect: Connect, ns: str, las: LasProcess
) -> None:
    client = connect(alice)
    client.create_session(namespace(ns))
    client.create_session(service_session(f"{ns}/app", qe_key_id=las.qe_key_id))
    values = client.public_values(f"{ns}/app")
    assert values == {"shared": {"kind": "ascii", "value": "visible-to-all"}}


def test_first_use_pins_the_cas_and_a_mismatch_is_refused(
    cas: CasProcess, alice: Identity, user_dirs: Path, tmp_path: Path
) -> None:
    with CasClient(cas.api_addr, identity=alice, pinned_key_hash=None) as client:
        assert client.cas_key_hash == cas.cas_key_hash
    assert json.loads(pins_path().read_text()) == {cas.api_addr: cas.cas_key_hash}
    with run_cas(tmp_path / "impostor") as impostor:
        pins = {impostor.api_addr: cas.cas_key_hash}
        pins_path().write_text(json.dumps(pins))
        with pytest.raises(ServiceError) as caught:
            CasClient(impostor.api_addr, identity=alice, pinned_key_hash=None).version()
        assert impostor.cas_key_hash in caught.value.message
        assert caught.value.hint and str(pins_path()) in caught.value.hint
        with pytest.raises(ServiceError):
            CasClient(impostor.api_addr, identity=alice, pinned_key_hash="ab" * 32).version()


def test_an_unreachable_cas_names_the_address(alice: Identity, tmp_path: Path) -> None:
    with run_cas(tmp_path / "gone") as gone:
        addr = gone.api_addr
    with pytest.raises(ServiceError) as caught:
        CasClient(addr, identity=alice, pinned_key_hash=None).version()
    assert addr in caught.value.message
    assert (
        caught.value.hint and "sconify dev up" in caught.value.hint and "--cas" in caught.value.hint
    )


def test_state_is_private_and_encrypted_at_rest(
    fresh_cas: CasProcess, alice: Identity, tmp_path: Path, las: LasProcess
) -> None:
    client = fresh_cas.client(alice, pins_file=tmp_path / "pins.json")
    client.create_session(namespace("secretive"))
    text = service_session("secretive/app", qe_key_id=las.qe_key_id)
    client.create_session(text)
    client.close()
    fresh_cas.stop()
    state = fresh_cas.state_dir
    for name in ("cas-key.pem", "client-ca-key.pem", "master.key", "cas.sqlite3"):
        assert (state / name).stat().st_mode & 0o077 == 0, name
    with sqlite3.connect(state / "cas.sqlite3") as db:
        blobs = b"".join(
            bytes(row[0]) + bytes(row[1])
            for row in db.execute("SELECT body, secrets FROM versions")
        )
    raw = (state / "cas.sqlite3").read_bytes() + blobs
    for needle in (
        b"66e7935397249112d1148e6ce98a396a8c96b3b0",
        b"visible-to-all",
        b"python3 app.py",
    ):
        assert needle not in raw
    store = SessionStore(state)
    assert store.audit_chain_valid()
    with store.reader() as tx:
        version = tx.version("secretive/app", session_hash(load_session(text)))
    assert version is not None and version.text == text
    assert "visible-to-all" not in repr(version)


def test_audit_chain_detects_tampering(
    fresh_cas: CasProcess, alice: Identity, tmp_path: Path
) -> None:
    client = fresh_cas.client(alice, pins_file=tmp_path / "pins.json")
    for index in range(3):
        client.create_session(namespace(f"audited-{index}"))
    client.close()
    fresh_cas.stop()
    store = SessionStore(fresh_cas.state_dir)
    assert store.audit_chain_valid()
    with sqlite3.connect(fresh_cas.state_dir / "cas.sqlite3") as db:
        db.execute(
            "UPDATE audit SET entry = replace(entry, 'audited-1', 'audited-9') WHERE seq = 2"
        )
    assert not store.audit_chain_valid()
