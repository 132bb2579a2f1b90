"""The clip an endpoint's input asks for: its size and its frames, read from whichever fields
the endpoint has.

- Size: ``video_size`` (a preset name of :data:`~ltx_jupyter._pricing.SIZE_PRESETS`,
  ``{width, height}``, or ``auto``: the input image's or video's shape), else ``resolution``
  (``720p``: the short side) with ``aspect_ratio`` (``16:9``, ``9:16``, ``1:1``; ``auto``: the
  input's shape, else 16:9). An input with none of them asks for no particular size.
- Frames: ``num_frames``, else ``duration`` × the rate; the rate is ``fps`` or ``frame_rate``.

An engine may draw smaller and fewer frames than asked (:func:`fit_size`, :func:`fit_frames`);
it then reports what it drew.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..._pricing import SIZE_PRESETS
from ..._schema import is_integer, is_number

__all__ = [
    "AUTO_LONG_SIDE",
    "DEFAULT_ASPECT",
    "DEFAULT_RESOLUTION",
    "MIN_SIDE",
    "aspect_of",
    "fit_frames",
    "fit_size",
    "requested_frames",
    "requested_size",
    "resolution_of",
]

#: The short side when an input gives an aspect ratio but no resolution.
DEFAULT_RESOLUTION = 720
#: The shape when an input asks for ``auto`` and has no image or video to take it from.
DEFAULT_ASPECT = (16, 9)
#: The long side of a ``video_size`` of ``auto`` (the presets' long side).
AUTO_LONG_SIDE = 1024
#: The smallest side drawn (H.264 needs even sizes; tiny clips are not worth less).
MIN_SIDE = 16

_RESOLUTION = re.compile(r"^\s*(\d{2,5})\s*p\s*$", re.IGNORECASE)
_ASPECT = re.compile(r"^\s*(\d{1,4}(?:\.\d+)?)\s*[:/x]\s*(\d{1,4}(?:\.\d+)?)\s*$")


def resolution_of(value: Any) -> int | None:
    """The short side a ``resolution`` names (``"1080p"`` → 1080), or None if it names none."""
    match = _RESOLUTION.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def aspect_of(value: Any) -> tuple[float, float] | None:
    """The shape an ``aspect_ratio`` names (``"9:16"`` → (9, 16)), or None (``auto``, or
    something else)."""
    match = _ASPECT.match(value) if isinstance(value, str) else None
    if not match:
        return None
    width, height = float(match.group(1)), float(match.group(2))
    return (width, height) if width > 0 and height > 0 else None


def requested_size(
    data: Mapping[str, Any], source: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """The (width, height) the endpoint would produce for ``data``, or None when the input says
    nothing about size. ``source`` is the size of the input image or video, for ``auto``."""
    video_size = data.get("video_size")
    if isinstance(video_size, Mapping):
        width, height = video_size.get("width"), video_size.get("height")
        if is_number(width) and is_number(height) and width > 0 and height > 0:
            return (int(width), int(height))
    elif isinstance(video_size, str):
        if video_size in SIZE_PRESETS:
            return SIZE_PRESETS[video_size]
        shape = source or DEFAULT_ASPECT
        return _long_side(shape, AUTO_LONG_SIDE)
    resolution = data.get("resolution")
    aspect = data.get("aspect_ratio")
    if resolution is None and aspect is None:
        return None
    short = resolution_of(resolution) or DEFAULT_RESOLUTION
    shape = aspect_of(aspect) or source or DEFAULT_ASPECT
    return _short_side(shape, short)


def _long_side(shape: tuple[float, float], side: int) -> tuple[int, int]:
    width, height = shape
    scale = side / max(width, height)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _short_side(shape: tuple[float, float], side: int) -> tuple[int, int]:
    width, height = shape
    scale = side / min(width, height)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _even(value: float) -> int:
    return max(MIN_SIDE, 2 * round(value / 2))


def fit_size(size: tuple[int, int], scale: float, max_side: int) -> tuple[int, int]:
    """The size drawn for a requested ``size``: ``scale`` times it, its long side at most
    ``max_side``, each side even and at least :data:`MIN_SIDE`."""
    width, height = size[0] * scale, size[1] * scale
    longest = max(width, height)
    if longest > max_side:
        width, height = width * max_side / longest, height * max_side / longest
    return (min(_even(width), max_side), min(_even(height), max_side))


def requested_frames(
    data: Mapping[str, Any], default_frames: int, default_fps: float
) -> tuple[int, float]:
    """(frames, fps) the input asks for: ``num_frames``, else ``duration`` × the rate, else
    ``default_frames``; the rate is ``fps`` or ``frame_rate``, else ``default_fps``."""
    fps = data.get("fps")
    if fps is None:
        fps = data.get("frame_rate")
    rate = float(fps) if is_number(fps) and fps > 0 else default_fps
    frames = data.get("num_frames")
    if is_integer(frames) and frames > 0:
        return frames, rate
    duration = data.get("duration")
    if is_number(duration) and duration > 0:
        return max(1, round(duration * rate)), rate
    return default_frames, rate


def fit_frames(frames: int, fps: float, max_frames: int) -> tuple[int, float]:
    """(frames, fps) drawn for a request of ``frames`` at ``fps``: at most ``max_frames``; a
    longer clip keeps its duration at a lower rate."""
    if frames <= max_frames:
        return frames, fps
    return max_frames, fps * max_frames / frames
