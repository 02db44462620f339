"""Bounded retries with exponential backoff for transient registry failures (429, 5xx, I/O)."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RetryableStatus(Exception):
    """Raised inside an attempt to ask for another try after a transient HTTP status."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` in all (the first try included), delays doubling from ``base`` up to
    ``max_delay``. A ``Retry-After`` header is honoured up to ``max_retry_after`` seconds, even
    when that is longer than ``max_delay``.
    """

    attempts: int = 4
    base: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (0-based ``attempt``)."""
        wait: float = min(self.max_delay, self.base * (2.0**attempt))
        asked = retry_after(response) if response is not None else None
        if asked is not None:
            wait = max(wait, min(asked, self.max_retry_after))
        return wait

    def run(
        self,
        what: str,
        attempt_fn: Callable[[], T],
        retry_on: tuple[type[Exception], ...] = (),
    ) -> T:
        """Call ``attempt_fn`` until it succeeds or the attempts are spent.

        Retries on :class:`httpx.TransportError`, :class:`RetryableStatus` and ``retry_on``;
        the last failure propagates (a retryable status as itself, for the caller to turn into
        an error with the registry's code).
        """
        transient: tuple[type[Exception], ...] = (httpx.TransportError, *retry_on)
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                return attempt_fn()
            except RetryableStatus as e:
                if last:
                    raise
                wait = self.delay(attempt, e.response)
                log.info("%s: HTTP %d, retrying in %.2fs", what, e.response.status_code, wait)
            except transient as e:
                if last:
                    raise
                wait = self.delay(attempt)
                log.info("%s: %s, retrying in %.2fs", what, e, wait)
            time.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")
