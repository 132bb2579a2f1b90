"""Step progress read from a log line: ``(done, total)`` or ``None``.

Only a few unambiguous shapes count, so that counts of other things (``Loading model 1/3
shards``) are not taken for denoising steps:

- tqdm with a bar: `` 40%|████      | 12/30 [00:05<00:07, 2.34it/s]``
- tqdm without a bar, recognised by its time bracket: ``12/30 [00:05<00:07, 2.34it/s]``
- ``step 12/30``, ``Step 12 of 30``, ``steps: 12/30`` (any case)

A line with several matches (a bar redrawn with carriage returns) gives the last one.
"""

from __future__ import annotations

import re

__all__ = ["parse_progress"]

# One pattern, one alternative per shape, so that a line is scanned once.
_PROGRESS = re.compile(
    # tqdm's "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"
    r"\d{1,3}%\|[^|\r\n]*\|\s*(\d{1,9})/(\d{1,9})\b"
    # tqdm's "{n_fmt}/{total_fmt} [{elapsed}<{remaining}"; remaining is "?" at first
    r"|\b(\d{1,9})/(\d{1,9})\s*\[\s*(?:\d+d,\s*)?[\d:]+<(?:[\d:]+|\?)"
    r"|(?i:\bsteps?\s*:?\s*(\d{1,9})\s*(?:/|\bof\b)\s*(\d{1,9})\b)"
)


def parse_progress(message: str) -> tuple[int, int] | None:
    """The ``(done, total)`` step count in ``message``, or ``None`` if it reports no steps.

    Impossible counts (``total`` of 0, ``done`` above ``total``) give ``None``.
    """
    if "/" not in message and "of" not in message.lower():
        return None  # every shape has one or the other
    best: tuple[int, int] | None = None  # the last valid match
    for match in _PROGRESS.finditer(message):
        numbers = [group for group in match.groups() if group is not None]
        done, total = int(numbers[0]), int(numbers[1])
        if total > 0 and done <= total:
            best = (done, total)
    return best
