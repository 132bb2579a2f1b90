"""The callbacks an object calls after each of its changes (a job's, a sweep's).

Views add and remove their callbacks from the kernel thread; the runner thread calls them after
every status event. The callbacks are kept in a tuple that adding and removing replace under a
lock, so calling them takes no lock and no copy: it runs once per event of every job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Listeners"]

Callback = TypeVar("Callback", bound=Callable[..., Any])


class Listeners(Generic[Callback]):
    """An ordered set of callbacks; safe to change from any thread while it is iterated."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: tuple[Callback, ...] = ()

    def add(self, callback: Callback) -> None:
        """Call ``callback`` after each change from now on."""
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

    def remove(self, callback: Callback) -> None:
        """Stop calling ``callback``; does nothing if it is not there."""
        with self._lock:
            callbacks = list(self._callbacks)
            if callback in callbacks:
                callbacks.remove(callback)
                self._callbacks = tuple(callbacks)

    def __iter__(self) -> Iterator[Callback]:
        """The callbacks there are now; changes made meanwhile apply from the next change."""
        return iter(self._callbacks)
