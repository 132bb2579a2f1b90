"""Lookups that failed a moment ago: fal's pricing API or an endpoint's schema URL that could
not be reached.

Every job asks for its endpoint's prices and schema; without this, each one would wait out the
same timeout again while the address stays unreachable. The failed lookup's answer (the table's
prices, a cached document, a warning) stands in for :data:`RETRY_AFTER` seconds instead. A
refresh the user asks for (``%ltx endpoints --refresh``) asks again at once, and any lookup that
succeeds clears the failure.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

__all__ = ["RETRY_AFTER", "RecentFailures"]

#: Seconds a failed lookup's answer stands in before the address is asked again.
RETRY_AFTER = 600.0

Key = TypeVar("Key")
Answer = TypeVar("Answer")


class RecentFailures(Generic[Key, Answer]):
    """The answers of failed lookups by address, each kept for ``retry_after`` seconds."""

    def __init__(self, retry_after: float = RETRY_AFTER) -> None:
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._failed: dict[Key, tuple[float, Answer]] = {}

    def remember(self, key: Key, answer: Answer) -> None:
        """``key`` failed now; ``answer`` is what was answered instead."""
        with self._lock:
            self._failed[key] = (time.monotonic(), answer)

    def recall(self, key: Key) -> Answer | None:
        """The answer of a failure of ``key`` less than ``retry_after`` seconds ago, if any."""
        with self._lock:
            known = self._failed.get(key)
            if known is None:
                return None
            if time.monotonic() - known[0] >= self.retry_after:
                del self._failed[key]
                return None
            return known[1]

    def forget(self, key: Key) -> None:
        """``key`` answered: ask it again next time."""
        with self._lock:
            self._failed.pop(key, None)

    def clear(self) -> None:
        """Ask every address again next time (the user asked for a refresh)."""
        with self._lock:
            self._failed.clear()
