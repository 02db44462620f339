"""Who may reach the secrets: access_policy and security.attestation gaps, on a real CAS.

Complements test_sessions.py (CREATOR, ANY, key hashes) and test_attestation.py (every check):
``NONE`` binds even the creator, ``create_sessions`` defaults to the ``update`` list, the
trusted quoting keys are read from the current version, and the ``ignore_advisories``
wildcard needs ``debug-mode``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from sconify.cas.client import CasClient
from sconify.cas.enclave_client import fetch_config
from sconify.cas.identity import Identity
from sconify.errors import CasRefused
from sconify.session import load_session
from sconify.session.secrets import SECRET_KINDS
from tests.cas.policies import MEASUREMENT, namespace, service_session
from tests.support.services import CasProcess, LasProcess

Connect = Callable[[Identity], CasClient]


def _refused(call: Callable[[], object]) -> CasRefused:
    with pytest.raises(CasRefused) as caught:
        call()
    return caught.value


def test_none_binds_even_the_creator(alice: Identity, connect: Connect, ns: str) -> None:
    owner = connect(alice)
    first = owner.create_session(
        textwrap.dedent(
            f"""\
            name: {ns}
            version: "0.3"
            access_policy:
              read: [NONE]
              update: [CREATOR]
              create_sessions: [NONE]
            """
        )
    )
    refusal = _refused(lambda: owner.read_session(ns))
    assert (refusal.status, refusal.check) == (403, "access_policy")
    refusal = _refused(lambda: owner.create_session(namespace(f"{ns}/child")))
    assert (refusal.status, refusal.check) == (403, "access_policy")
    # update is still the creator's: it reopens the namespace.
    owner.create_session(f"predecessor: {first}\n" + namespace(ns))
    owner.create_session(namespace(f"{ns}/child"))
    assert owner.read_session(f"{ns}/child").name == f"{ns}/child"


def test_create_sessions_defaults_to_the_update_list(
    alice: Identity, bob: Identity, connect: Connect, ns: str
) -> None:
    owner, friend = connect(alice), connect(bob)
    owner.create_session(
        f'name: {ns}\nversion: "0.3"\naccess_policy:\n  update: [CREATOR, {bob.key_hash}]\n'
    )
    friend.create_session(namespace(f"{ns}/by-bob"))
    owner.create_session(namespace(f"{ns}/by-alice"))
    assert friend.read_session(f"{ns}/by-bob").hash


def test_trusted_quoting_keys_come_from_the_current_version(
    cas: CasProcess, las: LasProcess, alice: Identity, connect: Connect, ns: str
) -> None:
    client = connect(alice)
    client.create_session(namespace(ns))
    name = f"{ns}/app"
    other_key = "ab" * 32
    listed = service_session(name, qe_key_id=las.qe_key_id).replace(
        f"trusted_scone_qe_pubkeys: [{las.qe_key_id}]",
        f"trusted_scone_qe_pubkeys: [{other_key}, {las.qe_key_id}]",
    )
    client.create_session(listed)

    def attest() -> object:
        return fetch_config(
            cas.enclave_addr, cas.cas_key_hash, las.addr, f"{name}/app", MEASUREMENT
        )

    assert attest()
    client.update_session(service_session(name, qe_key_id=other_key))
    refusal = _refused(attest)
    assert (refusal.status, refusal.check) == (403, "qe_key")
    assert las.qe_key_id in refusal.message


def test_ignore_advisories_wildcard_needs_debug_mode(
    alice: Identity, connect: Connect, ns: str, las: LasProcess
) -> None:
    client = connect(alice)
    client.create_session(namespace(ns))
    text = service_session(f"{ns}/app", qe_key_id=las.qe_key_id).replace(
        "    tolerate: [simulation]\n", '    tolerate: [simulation]\n    ignore_advisories: "*"\n'
    )
    refusal = _refused(lambda: client.create_session(text))
    assert (refusal.status, refusal.check) == (400, "session")
    assert "refused: security.attestation.ignore_advisories:" in refusal.message
    debug = text.replace("tolerate: [simulation]", "tolerate: [simulation, debug-mode]")
    assert client.create_session(debug)
    assert load_session(debug).security.ignore_advisories == ("*",)


def test_every_registered_kind_is_accepted_by_the_cas(
    alice: Identity, connect: Connect, ns: str
) -> None:
    client = connect(alice)
    secrets = "".join(f"  - {{name: s{i}, kind: {kind}}}\n" for i, kind in enumerate(SECRET_KINDS))
    name = f"{ns}-kinds"
    client.create_session(f'name: {name}\nversion: "0.3"\nsecrets:\n{secrets}')
    assert client.read_session(name).name == name
