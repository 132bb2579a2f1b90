"""The retry policy: which failures are retried, for which calls, and how long to wait.

The rule for submits, the only calls that can cost money twice: a submit is retried only when
the server cannot have queued it. That is when the connection was never made (connect error or
connect timeout: no byte of the request left this machine), or when the answer is an explicit
refusal sent before queueing: 408 (the request did not arrive whole), 429 (rate limited) and
503 (unavailable). A read error, a read timeout, a 502/504 or a 500 after the request was sent
may hide a queued request, so those are raised with the error instead of sending it again.
Reads (status, result) and cancel are idempotent and are retried on every transient failure.

A server's ``Retry-After`` is honoured; one longer than ``max_retry_after`` is not waited for:
the error is raised at once, with the wait the server asked for. No other 4xx is retried: 401,
402 and 403 (a refused key, a used-up or locked account) cannot get better by asking again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

__all__ = ["CallKind", "RetryPolicy"]

CallKind = Literal["submit", "read", "status", "cancel", "upload"]

_TRANSIENT_STATUS = frozenset({408, 409, 429, 502, 503, 504})
_SUBMIT_SAFE_STATUS = frozenset({408, 429, 503})
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
_TRANSPORT_ERRORS = (httpx.TransportError,)
# The jitter's own generator: drawing from the global one would shift the sequence of a user
# who seeded ``random`` in the notebook whenever a job retries in the background.
_JITTER = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff with a cap.

    The n-th retry waits ``min(base * 2**(n-1), cap)`` seconds times a jitter factor in
    ``[1 - jitter, 1 + jitter]``, or the server's ``Retry-After`` when it sent one (no retry at
    all when that is longer than ``max_retry_after``).
    """

    max_attempts: int = 8
    base: float = 0.1
    cap: float = 10.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        delay = min(self.base * 2 ** max(attempt - 1, 0), self.cap)
        return delay * _JITTER.uniform(1 - self.jitter, 1 + self.jitter)

    def retries_status(self, kind: CallKind, status_code: int) -> bool:
        """Whether an HTTP answer with this status is retried for this kind of call."""
        if kind == "submit":
            return status_code in _SUBMIT_SAFE_STATUS
        if kind == "status" and status_code == 500:
            return True
        return status_code in _TRANSIENT_STATUS

    def retries_error(self, kind: CallKind, error: BaseException) -> bool:
        """Whether a transport error is retried for this kind of call."""
        if kind == "submit":
            return isinstance(error, _NOT_SENT_ERRORS)
        return isinstance(error, _TRANSPORT_ERRORS)

    def delay_for(self, attempt: int, response: httpx.Response | None = None) -> float | None:
        """The wait before the next attempt, honouring ``Retry-After`` on the response; None
        (do not retry) when the server asks for longer than ``max_retry_after``."""
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)
