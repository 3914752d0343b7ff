"""The retry policy of ``aireg release-check``: exponential backoff on connection errors, timeouts and 503
(honouring ``Retry-After``), never on any other answer (a 4xx will not change by asking again).

A deliberate copy of ``clients/python/src/aireg_client/_retry.py`` (less its async loop): the pipeline client
is a separate distribution that never imports the service, and the service does not depend on the client.
Change both together; tests/clients/test_python_client.py checks that they agree.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

RETRY_STATUSES = frozenset({503})
# Worth asking again: the service was not reached, or did not answer in time. Not ``UnsupportedProtocol``
# or ``InvalidURL``: a wrong URL stays wrong.
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first, ``backoff * 2**(n-1)`` seconds before the n-th retry."""

    retries: int = 3
    backoff: float = 0.5
    max_delay: float = 30.0  # also caps a ``Retry-After`` (a deploy job should not wait for an hour)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_delay < 0:
            raise ValueError("retries, backoff and max_delay must not be negative")

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wait = self.backoff * 2.0 ** (attempt - 1)
        after = retry_after(response) if response is not None else None
        if after is not None:
            wait = after
        return min(wait, self.max_delay)

    def should_retry(self, attempt: int, outcome: httpx.Response | BaseException) -> bool:
        """Whether to try again after attempt number ``attempt`` ended with this answer or error."""
        if attempt > self.retries:
            return False
        if isinstance(outcome, httpx.Response):
            return outcome.status_code in RETRY_STATUSES
        return isinstance(outcome, RETRY_ERRORS)


def retry_after(response: httpx.Response) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
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
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def send_with_retries(
    send: Callable[[], httpx.Response], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> tuple[httpx.Response, int]:
    """Call ``send`` until it answers something not worth retrying; returns the answer and the attempts made.

    Re-raises the last connection error or timeout once the retries are spent."""
    attempt = 0
    while True:
        attempt += 1
        try:
            response = send()
        except RETRY_ERRORS as exc:
            if not policy.should_retry(attempt, exc):
                raise
            sleep(policy.delay(attempt))
            continue
        if not policy.should_retry(attempt, response):
            return response, attempt
        response.close()
        sleep(policy.delay(attempt, response))
