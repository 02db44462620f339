"""Challenges kept in the store, for CAS replicas that share a PostgreSQL database.

Same contract as :class:`sconify.cas.attest.NonceBook` (single use, 60 s, bound to a config
id) but held in the ``nonces`` table: ``DELETE ... RETURNING`` hands a nonce to exactly one
attempt, whichever replica it reaches. Only a SHA-256 of each nonce is stored, and expiry
uses the wall clock because replicas share no monotonic clock.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

from sconify.cas.attest import NONCE_TTL_SECONDS, NonceBook
from sconify.cas.store.core import SessionStore
from sconify.errors import CasRefused

MAX_OUTSTANDING = 100_000


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class StoredNonceBook(NonceBook):
    """Outstanding challenges in the store's ``nonces`` table."""

    def __init__(
        self,
        store: SessionStore,
        ttl: float = NONCE_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl, clock)
        self._store = store
        self._wall_ttl = ttl
        self._wall_clock = clock

    def issue(self, config_id: str, source: str = "") -> str:
        """A fresh nonce (64 hex) for ``config_id``, visible to every replica.

        The limits per source and per config id are this replica's (counted in memory, like
        :class:`NonceBook`); the total is the database's.
        """
        nonce = os.urandom(32).hex()
        now = self._wall_clock()
        with self._lock:
            self.admit(config_id, source, now)
            self._record(nonce, config_id, source, now)
        outstanding = self._store.add_nonce(_digest(nonce), config_id, now + self._wall_ttl, now)
        if outstanding > MAX_OUTSTANDING:
            self._store.take_nonce(_digest(nonce))
            with self._lock:
                self._forget(nonce)
            raise CasRefused(
                "too many outstanding challenges", status=503, check="nonce", hint="retry later"
            )
        return nonce

    def consume(self, nonce: str, config_id: str) -> str | None:
        """Use up ``nonce``; return why it is not acceptable for ``config_id``, or ``None``."""
        with self._lock:
            self._forget(nonce)  # this replica's count, if it issued the nonce
        issued = self._store.take_nonce(_digest(nonce))
        if issued is None:
            return "the nonce is unknown or was already used"
        issued_for, expires = issued
        if expires <= self._wall_clock():
            return "the nonce has expired"
        if issued_for != config_id:
            return "the nonce was issued for another config id"
        return None
