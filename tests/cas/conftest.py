"""Fixtures: real CAS and LAS processes, and identities in a temp config dir."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sconify.cas.client import CasClient
from sconify.cas.identity import Identity
from tests.support.services import CasProcess, cas, fresh_cas, las, user_dirs

__all__ = ["cas", "fresh_cas", "las", "user_dirs"]


@pytest.fixture
def alice(user_dirs: Path) -> Identity:
    """The default identity of the (temporary) user."""
    identity, _ = Identity.load_or_create()
    return identity


@pytest.fixture
def bob(tmp_path: Path) -> Identity:
    """Another identity."""
    identity, _ = Identity.load_or_create(tmp_path / "bob" / "identity.pem")
    return identity


@pytest.fixture
def connect(cas: CasProcess, tmp_path: Path) -> Iterator[Callable[[Identity], CasClient]]:
    """Open a client of the session CAS as an identity (pins kept in the test's temp dir)."""
    clients: list[CasClient] = []

    def _connect(identity: Identity) -> CasClient:
        client = cas.client(identity, pins_file=tmp_path / "pins.json")
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        client.close()


@pytest.fixture
def ns() -> str:
    """A namespace name unique to this test."""
    return f"ns-{uuid.uuid4().hex[:12]}"
