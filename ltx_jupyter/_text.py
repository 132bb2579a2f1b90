"""Plain-text presentation: the one way text is shortened for a line, a caption or a message."""

from __future__ import annotations

import os

__all__ = ["counted", "shorten", "value_repr"]

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line (each run of whitespace becomes one space), at most ``limit``
    characters: a longer text is cut at ``limit - 1`` and ends with "…"."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return line[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def counted(count: int, noun: str) -> str:
    """``1 job``, ``3 jobs``: a count and its (regular) noun."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def value_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters (cut ones end with "…").

    A long string is cut before ``repr`` sees it, so a megabyte of prompt costs nothing here.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
    if value is None or isinstance(value, (str, int, float, list, tuple, dict, bytes)):
        text = repr(value)
    else:
        text = f"a {type(value).__name__}"  # an arbitrary object's repr may be anything
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS
