"""The callbacks of a job or a sweep: changed from the kernel thread while the runner thread
calls them."""

from __future__ import annotations

from collections.abc import Callable

from ltx_jupyter._listeners import Listeners


def test_a_callback_that_removes_itself_while_called_does_not_skip_the_next() -> None:
    listeners: Listeners[Callable[[], None]] = Listeners()
    called: list[str] = []

    def once() -> None:
        called.append("once")
        listeners.remove(once)

    listeners.add(once)
    listeners.add(lambda: called.append("always"))
    for callback in listeners:
        callback()
    for callback in listeners:
        callback()
    assert called == ["once", "always", "always"]


def test_removing_one_of_two_equal_callbacks_keeps_the_other_and_unknown_ones_are_ignored() -> None:
    listeners: Listeners[Callable[[], None]] = Listeners()

    def callback() -> None:
        pass

    listeners.add(callback)
    listeners.add(callback)
    listeners.remove(callback)
    listeners.remove(lambda: None)
    assert list(listeners) == [callback]


def test_a_callback_added_while_the_callbacks_are_called_is_called_from_the_next_change() -> None:
    listeners: Listeners[Callable[[], None]] = Listeners()
    called: list[str] = []

    def late() -> None:
        called.append("late")

    def adds_late() -> None:
        called.append("first")
        listeners.add(late)

    listeners.add(adds_late)
    for callback in listeners:
        callback()
    assert called == ["first"]
    listeners.remove(adds_late)
    for callback in listeners:
        callback()
    assert called == ["first", "late"]
