"""The enclave API's logic: challenges, and the checks before a configuration is released.

Contracts.md section 7. The checks run in the contract's order and the first failure names
itself (``session``, ``service``, ``nonce``, ``qe_key``, ``signature``, ``quote``,
``report_data``, ``mrenclave``, ``tolerate``). A nonce is consumed by any attempt that
presents it, whatever the outcome.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from sconify.canonical import canonical_json
from sconify.cas.sessions import current_values
from sconify.cas.store import SessionStore
from sconify.crypto.jwe import TeePublicKey, seal
from sconify.errors import CasRefused, CryptoError, SessionError
from sconify.las.quote import (
    SimQuote,
    bind_report_data,
    key_id,
    load_qe_public_key,
    signature_valid,
)
from sconify.session import Service, Session, load_session, service_config
from sconify.session._names import valid_session_name

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

NONCE_TTL_SECONDS = 60
_ATTEST_FIELDS = {"config_id", "nonce", "quote", "signature", "qe_pubkey", "tee_pubkey"}
_PARSED_SESSIONS = 256
_QE_KEYS = 64


class BadAttestRequest(Exception):
    """A request body of the wrong shape (400, check ``request``)."""


@dataclass(frozen=True)
class ChallengeLimits:
    """Outstanding (issued, neither answered nor expired) challenges one CAS process keeps.

    ``per_source``: from one source (an IPv4 address or an IPv6 /64, see
    :func:`sconify.cas.gate.source_of`); ``per_config``: for one config id; ``total``: in all.
    A source alone can hold neither a config id's share nor the total, so a flood from one
    client leaves challenges for every other (docs/dev/cas.md, "Challenges").
    """

    per_source: int = 512
    per_config: int = 4096
    total: int = 100_000


@dataclass(frozen=True)
class _Issued:
    config_id: str
    expires: float
    source: str


def _busy(message: str) -> CasRefused:
    # 503, not 429: the shim retries a 5xx with backoff and gives up on a 4xx (contracts 7).
    return CasRefused(message, status=503, check="nonce", hint="retry later")


class NonceBook:
    """Outstanding challenges, in memory: single use, ``ttl`` seconds, within ``limits``.

    Every issued nonce is also queued by expiry (the ttl is fixed, so the queue is in order):
    each issue first drops the expired ones, so the counts per source and per config id are
    always those of live challenges, at a constant cost per challenge.
    """

    def __init__(
        self,
        ttl: float = NONCE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        limits: ChallengeLimits | None = None,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._limits = limits or ChallengeLimits()
        self._issued: dict[str, _Issued] = {}
        self._by_source: dict[str, int] = {}
        self._by_config: dict[str, int] = {}
        self._expiry: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def issue(self, config_id: str, source: str = "") -> str:
        """A fresh nonce (64 hex) for ``config_id``, asked for from ``source``."""
        with self._lock:
            now = self._clock()
            self.admit(config_id, source, now)
            nonce = os.urandom(32).hex()
            self._record(nonce, config_id, source, now)
            return nonce

    def check(self, config_id: str, source: str = "") -> None:
        """Refuse (503) a challenge that :meth:`issue` would refuse now."""
        with self._lock:
            self.admit(config_id, source, self._clock())

    def admit(self, config_id: str, source: str, now: float) -> None:
        """Drop expired challenges, then refuse (503) one over a limit. Caller holds the lock."""
        while self._expiry and self._expiry[0][0] <= now:
            _, nonce = self._expiry.popleft()
            issued = self._issued.get(nonce)
            if issued is not None and issued.expires <= now:
                self._forget(nonce)
        limits = self._limits
        if self._by_source.get(source, 0) >= limits.per_source:
            raise _busy(
                f"too many outstanding challenges from your address (at most {limits.per_source})"
            )
        if self._by_config.get(config_id, 0) >= limits.per_config:
            raise _busy(f"too many outstanding challenges for {config_id!r}")
        if len(self._issued) >= limits.total:
            raise _busy("too many outstanding challenges")

    def _record(self, nonce: str, config_id: str, source: str, now: float) -> None:
        expires = now + self._ttl
        self._issued[nonce] = _Issued(config_id, expires, source)
        self._by_source[source] = self._by_source.get(source, 0) + 1
        self._by_config[config_id] = self._by_config.get(config_id, 0) + 1
        self._expiry.append((expires, nonce))

    def _forget(self, nonce: str) -> _Issued | None:
        issued = self._issued.pop(nonce, None)
        if issued is not None:
            _decrement(self._by_source, issued.source)
            _decrement(self._by_config, issued.config_id)
        return issued

    def consume(self, nonce: str, config_id: str) -> str | None:
        """Use up ``nonce``; return why it is not acceptable for ``config_id``, or ``None``."""
        with self._lock:
            issued = self._forget(nonce)
        if issued is None:
            return "the nonce is unknown or was already used"
        if issued.expires <= self._clock():
            return "the nonce has expired"
        if issued.config_id != config_id:
            return "the nonce was issued for another config id"
        return None


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def split_config_id(config_id: str) -> tuple[str, str]:
    """``ns/session/service`` -> (``ns/session``, ``service``)."""
    session_name, sep, service_name = config_id.rpartition("/")
    if not sep or not session_name or not service_name:
        raise CasRefused(
            f"config id {config_id!r} is not <session>/<service>",
            status=404,
            check="session",
            hint="set SCONE_CONFIG_ID to <namespace>/<session>/<service>",
        )
    return session_name, service_name


class _Bounded(Generic[K, V]):
    """A thread-safe map of at most ``size`` entries; the oldest goes first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for ``key``, else ``make()`` kept (a failing ``make`` keeps nothing)."""
        with self._lock:
            kept = self._items.get(key)
        if kept is not None:
            return kept
        made = make()
        with self._lock:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = made
        return made


class ParsedSessions:
    """Validated sessions by the SHA-256 of their stored text, at most ``size`` of them.

    Parsing and validating the YAML was half of the CAS's CPU per attestation (BENCHMARKS.md).
    The store is still read on every request, so an update is seen at once and replicas stay
    consistent; only the parse of a text seen before is skipped. A text's digest determines
    its :class:`Session` (frozen), and the texts themselves are not kept.
    """

    def __init__(self, size: int = _PARSED_SESSIONS) -> None:
        self._parsed: _Bounded[bytes, Session] = _Bounded(size)

    def get(self, text: str) -> Session:
        """The validated session of ``text``; ``CasRefused`` (400, ``session``) if invalid."""

        def parse() -> Session:
            try:
                return load_session(text)
            except SessionError as err:
                raise CasRefused(err.message, status=400, check="session", hint=err.hint) from None

        return self._parsed.get_or_make(hashlib.sha256(text.encode("utf-8")).digest(), parse)


_SESSIONS = ParsedSessions()


class RenderedConfigs:
    """Released configurations (canonical JSON) by session version and service, at most
    ``size`` of them.

    A version (its hash) fixes the session text and its stored secret values, so the
    configuration it releases to a service is always the same bytes; rendering it (placeholders,
    PEM and DER encodings of keys and certificates) was a tenth of the CAS's CPU per
    attestation. Every check of an attest request still runs before it is looked up, and the
    sealing under the enclave's key is done for every release.
    """

    def __init__(self, size: int = _PARSED_SESSIONS) -> None:
        self._rendered: _Bounded[tuple[str, str], bytes] = _Bounded(size)

    def get(
        self, session: Session, service: Service, values: dict[str, Any], session_hash: str
    ) -> bytes:
        """The configuration ``service`` of this version of ``session`` releases."""

        def render() -> bytes:
            try:
                config = service_config(session, service.name, values, session_hash=session_hash)
            except SessionError as err:
                raise CasRefused(err.message, status=500, check="config", hint=err.hint) from None
            except ValueError:
                # A stored key or certificate that no longer parses: say which, never what it
                # holds.
                raise CasRefused(
                    f"a secret of session {session.name!r} could not be rendered",
                    status=500,
                    check="config",
                    hint="update the session so the CAS makes its secrets again",
                ) from None
            return canonical_json(config)

        return self._rendered.get_or_make((session_hash, service.name), render)


_RENDERED = RenderedConfigs()


@functools.lru_cache(maxsize=_QE_KEYS)
def _qe_key(pem: str) -> tuple[ec.EllipticCurvePublicKey, str]:
    # Every quote of one LAS carries the same PEM: parse it and hash its SPKI once.
    key = load_qe_public_key(pem)
    return key, key_id(key)


def _lookup(store: SessionStore, config_id: str) -> tuple[Session, str, dict[str, Any], Service]:
    # Anyone may ask the enclave API (an enclave has no identity before it attests): a missing
    # session and a missing service give one answer, so the API says no more than that this
    # config id is not served (that one that is served is, cannot be hidden from an enclave).
    session_name, service_name = split_config_id(config_id)
    unknown = CasRefused(
        f"no configuration {config_id!r} on this CAS (no such session, or no such service in it)",
        status=404,
        check="session",
    )
    if not valid_session_name(session_name):
        # No such session can exist (and the store is never asked for a name it cannot hold).
        raise unknown
    try:
        session, current_hash, values = current_values(store, session_name, _SESSIONS.get)
    except CasRefused as refused:
        if refused.status == 404:
            raise unknown from None
        raise
    service = session.service(service_name)
    if service is None:
        raise unknown
    return session, current_hash, values, service


def challenge(
    store: SessionStore, nonces: NonceBook, body: dict[str, Any], source: str = ""
) -> dict[str, Any]:
    """``POST /v1/enclave/challenge``: a nonce bound to an existing session and service.

    ``source`` is the caller's source address (:func:`sconify.cas.gate.source_of`): the
    challenges it holds are limited (:class:`ChallengeLimits`).
    """
    config_id = body.get("config_id")
    if set(body) != {"config_id"} or not isinstance(config_id, str):
        raise BadAttestRequest("expected exactly {config_id: string}")
    nonces.check(config_id, source)  # a flood is refused before it costs a store read
    _lookup(store, config_id)
    return {"expires_in": NONCE_TTL_SECONDS, "nonce": nonces.issue(config_id, source)}


def _refuse(check: str, message: str, hint: str | None = None) -> CasRefused:
    return CasRefused(message, status=403, check=check, hint=hint)


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def attest(store: SessionStore, nonces: NonceBook, body: dict[str, Any]) -> str:
    """``POST /v1/enclave/attest``: run every check, then seal the service's configuration."""
    if set(body) != _ATTEST_FIELDS:
        raise BadAttestRequest(f"expected exactly the fields {', '.join(sorted(_ATTEST_FIELDS))}")
    strings = ("config_id", "nonce", "quote", "signature", "qe_pubkey")
    if not all(isinstance(body[k], str) for k in strings) or not isinstance(
        body["tee_pubkey"], dict
    ):
        raise BadAttestRequest("config_id, nonce, quote, signature, qe_pubkey must be strings")
    config_id: str = body["config_id"]
    nonce: str = body["nonce"]
    nonce_problem = nonces.consume(nonce, config_id)

    session, current_hash, values, service = _lookup(store, config_id)
    if nonce_problem is not None:
        raise _refuse("nonce", nonce_problem, "ask for a new challenge")

    try:
        qe_key, qe_key_id = _qe_key(body["qe_pubkey"])
    except ValueError as err:
        raise _refuse("qe_key", f"the quoting key is unusable: {err}") from None
    if qe_key_id not in session.security.trusted_scone_qe_pubkeys:
        raise _refuse(
            "qe_key",
            f"quoting key {qe_key_id} is not trusted by session {session.name!r}",
            hint="add the LAS key id (GET /v1/qe-pubkey) to "
            "security.attestation.trusted_scone_qe_pubkeys",
        )

    try:
        quote_bytes, signature = _b64(body["quote"]), _b64(body["signature"])
    except (binascii.Error, ValueError):
        raise _refuse("signature", "quote or signature is not base64") from None
    if not signature_valid(qe_key, quote_bytes, signature):
        raise _refuse("signature", "the quote's signature does not verify with the quoting key")

    try:
        quote = SimQuote.parse(quote_bytes)
    except ValueError as err:
        raise _refuse("quote", str(err)) from None
    if quote.qe_key_id != qe_key_id:
        raise _refuse("quote", "the quote names another quoting key than the one that signed it")

    try:
        tee = TeePublicKey.from_jwk(body["tee_pubkey"])
    except CryptoError:
        raise _refuse("report_data", "tee_pubkey is not a P-256 JWK") from None
    expected = bind_report_data(nonce, tee.thumbprint())
    if not hmac.compare_digest(bytes.fromhex(quote.report_data), expected):
        raise _refuse(
            "report_data",
            "report_data does not bind this nonce and TEE key",
            hint="report_data = SHA-256(nonce bytes || JWK thumbprint) || 32 zero bytes",
        )

    if quote.mrenclave not in service.mrenclaves:
        raise _refuse(
            "mrenclave",
            f"measurement {quote.mrenclave} is not allowed for {config_id}",
            hint="the image or its SCONE_HEAP/STACK/ALLOW_DLOPEN/FORK changed since conversion",
        )

    tolerated = session.security.tolerate
    if "simulation" not in tolerated:
        raise _refuse(
            "tolerate",
            "the quote is simulated and the session does not tolerate simulation",
            hint="add simulation to security.attestation.tolerate (sconify_image "
            "--allow-simulation or --cas-debug)",
        )
    if quote.debug and "debug-mode" not in tolerated:
        raise _refuse(
            "tolerate",
            "the quote is from a debug enclave and the session does not tolerate debug-mode",
            hint="add debug-mode to security.attestation.tolerate",
        )

    config = _RENDERED.get(session, service, values, current_hash)
    log.info("released %s (session %s) to measurement %s", config_id, current_hash, quote.mrenclave)
    return seal(config, tee)
