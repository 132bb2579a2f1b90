"""Helpers for widgets of any kind, shared by the panel, its controls and the gallery: closing
a tree of widgets, and handing a ``%%ltx`` cell on to the notebook."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

__all__ = ["close_tree", "offer_cell"]


def close_tree(widget: widgets.Widget, skip: tuple[widgets.Widget, ...] = ()) -> None:
    """Close ``widget`` and every widget inside it, except those in ``skip`` (and theirs)."""
    for child in getattr(widget, "children", ()):
        if child not in skip:
            close_tree(child, skip)
    # Widget.close itself: a container's own close may do more (the panel stops its jobs).
    widgets.Widget.close(widget)


def offer_cell(text: str, shown_in: widgets.Textarea, shell: Any = None) -> None:
    """Show ``text`` in ``shown_in`` and make it the next cell (of ``shell``, default the
    running IPython's): in a notebook a click reaches the next cell only with the next
    execution's reply, so the text stays in view until then."""
    shown_in.value = text
    shown_in.layout.display = None
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is not None:
        shell.set_next_input(text)
