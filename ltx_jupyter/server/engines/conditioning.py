"""The files an input conditions the clip on, and how they show in it.

:func:`conditions_of` reads them from whichever fields the endpoint has: ``image_url`` (the
first frame), ``end_image_url`` (the last), ``video_url`` or ``video.video_url`` (the first
frames), and the conditioning items of ``images[]`` and ``videos[]`` (each at its
``start_frame_num``), each with its strength (``image_strength``, ``end_image_strength``,
``strength``). Files are read without the network: a ``data:`` URI, or a file this server
stores; anything else (or bytes PyAV cannot decode) stands for a flat colour derived from the
URL, so it still shows.

:class:`Blend` lays them over drawn frames: an image weighs its strength at its frame and fades
over a quarter of the clip on either side; a video's frames are laid from its start frame (over
at most half the clip), then fade the same way. At strength 1 the first frame IS the image.
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import hashlib
import io
import math
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..._schema import is_integer, is_number

__all__ = ["Blend", "Condition", "Source", "conditions_of", "data_uri_bytes", "read_source"]

Kind = Literal["image", "video"]

#: Where an end image sits: the last frame, whatever the clip's length.
LAST_FRAME = -1


@dataclass(frozen=True)
class Source:
    """One input file: its bytes and its first frame (RGB uint8; both None when it could not
    be read), and the URL it came from. Frames are decoded again, fitted to the clip's size, as
    they are needed, so a large video is never held whole."""

    url: str
    data: bytes | None = None
    first: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of its frames, or None when it could not be read."""
        if self.first is None:
            return None
        height, width = self.first.shape[:2]
        return (int(width), int(height))

    def colour(self) -> tuple[float, float, float]:
        """Its mean colour (0-1); for a file that could not be read, one derived from its URL."""
        if self.first is not None:
            rgb = self.first.reshape(-1, 3).mean(axis=0) / 255.0
            return (float(rgb[0]), float(rgb[1]), float(rgb[2]))
        digest = hashlib.sha256(self.url.encode()).digest()
        rgb = colorsys.hsv_to_rgb(digest[0] / 255, 0.5 + digest[1] / 510, 0.5 + digest[2] / 510)
        return (float(rgb[0]), float(rgb[1]), float(rgb[2]))

    def fitted(self, width: int, height: int, count: int) -> list[np.ndarray]:
        """Its first ``count`` frames (at least one) cropped to the clip's shape and scaled to
        ``width`` x ``height``."""
        if self.data is None or self.first is None:
            flat = np.array(self.colour(), dtype=np.float32) * 255 + 0.5
            return [np.broadcast_to(flat.astype(np.uint8), (height, width, 3))]
        if count <= 1:
            return [_cover(self.first, width, height)]
        fitted = [_cover(frame, width, height) for frame in _frames(self.data, count)]
        return fitted or [_cover(self.first, width, height)]


def _cover(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` cropped around its centre to the aspect of ``width`` x ``height``, then scaled
    to that size (nearest pixel: a preview needs no filtering, and it is exact)."""
    source_height, source_width = frame.shape[:2]
    if source_width * height > source_height * width:
        crop_width, crop_height = max(1, round(source_height * width / height)), source_height
    else:
        crop_width, crop_height = source_width, max(1, round(source_width * height / width))
    left, top = (source_width - crop_width) // 2, (source_height - crop_height) // 2
    rows = top + ((np.arange(height) + 0.5) * crop_height / height).astype(np.intp)
    cols = left + ((np.arange(width) + 0.5) * crop_width / width).astype(np.intp)
    return np.ascontiguousarray(frame[rows[:, None], cols[None, :]])


@dataclass(frozen=True)
class Condition:
    """A file laid over the clip: an image at frame ``at`` (requested frames;
    :data:`LAST_FRAME` for the last), or a video's frames from ``at``."""

    source: Source
    kind: Kind
    at: int
    strength: float


def read_source(url: str, read_local_file: Callable[[str], bytes | None]) -> Source:
    """The file behind ``url`` (a data: URI, or a file the server stores), with its first frame
    decoded; a :class:`Source` without frames when it cannot be read."""
    data = data_uri_bytes(url) if url.lower().startswith("data:") else read_local_file(url)
    frames = list(_frames(data, 1)) if data else []
    return Source(url, data, frames[0]) if frames else Source(url)


def data_uri_bytes(uri: str) -> bytes | None:
    """The bytes a ``data:`` URI holds (base64 or percent-encoded), or None if malformed."""
    header, _, payload = uri.partition(",")
    try:
        if header.lower().endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return None


def _frames(data: bytes, limit: int) -> Iterator[np.ndarray]:
    """Up to ``limit`` decoded frames of an image or video (none when PyAV cannot read it)."""
    import av

    count = 0
    try:
        with av.open(io.BytesIO(data)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
                count += 1
                if count >= limit:
                    return
    except Exception:  # PyAV raises many kinds; a file it cannot read is a flat colour
        return


def _strength(value: Any) -> float:
    return float(min(1.0, max(0.0, value))) if is_number(value) else 1.0


def _start(value: Any) -> int:
    return int(value) if is_integer(value) and value >= 0 else 0


def conditions_of(data: Mapping[str, Any], read: Callable[[str], Source]) -> list[Condition]:
    """The files ``data`` conditions the clip on, in the order they are laid (later ones on
    top): videos, conditioning images, then the first and last images. ``read(url)`` reads
    one file."""
    found: list[Condition] = []

    def add(url: Any, kind: Kind, at: int, strength: Any) -> None:
        if isinstance(url, str) and url:
            found.append(Condition(read(url), kind, at, _strength(strength)))

    add(data.get("video_url"), "video", 0, 1.0)
    video = data.get("video")
    if isinstance(video, Mapping):
        add(
            video.get("video_url"),
            "video",
            _start(video.get("start_frame_num")),
            video.get("strength"),
        )
    for key, kind in (("videos", "video"), ("images", "image")):
        items = data.get(key)
        for item in items if isinstance(items, Sequence) and not isinstance(items, str) else ():
            if isinstance(item, Mapping):
                url = item.get("video_url" if kind == "video" else "image_url")
                add(url, kind, _start(item.get("start_frame_num")), item.get("strength"))
    add(data.get("image_url"), "image", 0, data.get("image_strength"))
    add(data.get("end_image_url"), "image", LAST_FRAME, data.get("end_image_strength"))
    return found


@dataclass(frozen=True)
class _Layer:
    frames: list[np.ndarray]
    start: int
    strength: float


class Blend:
    """Lays ``conditions`` over a clip of ``num_frames`` drawn frames of ``width`` x
    ``height`` (``requested_frames``: the length the input asked for, which frame numbers
    refer to)."""

    def __init__(
        self,
        conditions: Sequence[Condition],
        width: int,
        height: int,
        num_frames: int,
        requested_frames: int,
    ) -> None:
        self.fade = max(1, num_frames // 4)
        self.layers: list[_Layer] = []
        last = num_frames - 1
        for condition in conditions:
            if condition.strength <= 0:
                continue
            if condition.at == LAST_FRAME:
                start = last
            else:
                start = min(last, round(condition.at * num_frames / max(requested_frames, 1)))
            count = 1
            if condition.kind == "video":
                count = max(1, min(math.ceil(num_frames / 2), num_frames - start))
            frames = condition.source.fitted(width, height, count)
            self.layers.append(_Layer(frames, start, condition.strength))

    def __bool__(self) -> bool:
        return bool(self.layers)

    def weight(self, layer: _Layer, index: int) -> float:
        """How much ``layer`` shows in frame ``index``."""
        end = layer.start + len(layer.frames) - 1
        distance = layer.start - index if index < layer.start else max(0, index - end)
        return layer.strength * max(0.0, 1.0 - distance / self.fade)

    def apply(self, frame: np.ndarray, index: int) -> np.ndarray:
        """Frame ``index`` with the conditions laid over it."""
        out: np.ndarray | None = None
        for layer in self.layers:
            weight = self.weight(layer, index)
            if weight <= 0:
                continue
            if out is None:
                out = frame.astype(np.float32)
            source = layer.frames[min(max(index - layer.start, 0), len(layer.frames) - 1)]
            out += (source.astype(np.float32) - out) * weight
        if out is None:
            return frame
        return (out + 0.5).clip(0, 255).astype(np.uint8)
