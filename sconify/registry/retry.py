"""Bounded retries with exponential backoff for transient registry failures (429, 5xx, I/O)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: ``attempts`` in all, delays doubling from ``base``."""

    attempts: int = 4
    base: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (honours a numeric ``Retry-After``)."""
        wait: float = min(self.max_delay, self.base * (2.0**attempt))
        if response is not None:
            after = response.headers.get("Retry-After", "")
            if after.isdigit():
                wait = min(self.max_delay, max(wait, float(after)))
        return wait

    def run(self, what: str, attempt_fn: Callable[[], T]) -> T:
        """Call ``attempt_fn`` until it succeeds or the attempts are spent.

        Retries on :class:`httpx.TransportError` and :class:`RetryableStatus`; the last failure
        propagates (a retryable status as its response, for the caller to turn into an error).
        """
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                return attempt_fn()
            except RetryableStatus as e:
                if last:
                    raise
                wait = self.delay(attempt, e.response)
                log.info("%s: HTTP %d, retrying in %.2fs", what, e.response.status_code, wait)
            except httpx.TransportError as e:
                if last:
                    raise
                wait = self.delay(attempt)
                log.info("%s: %s, retrying in %.2fs", what, e, wait)
            time.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")
