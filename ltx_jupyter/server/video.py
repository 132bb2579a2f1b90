"""Encode frames to an H.264 MP4 that browsers play: yuv420p, ``+faststart``, deterministic.

Every engine writes its clip with :func:`write_mp4`, so all outputs share one encoder setup.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.codec.context import Flags

__all__ = ["write_mp4"]

#: libx264 settings: one thread makes the bytes reproducible for the same frames.
_CODEC_OPTIONS = {"threads": "1", "preset": "veryfast", "crf": "20"}


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float) -> int:
    """Write RGB frames (each ``H x W x 3`` uint8, even sizes) to ``path``; return the file size.

    The file is written next to ``path`` and renamed into place, so a reader never sees a
    half-written video. The same frames and fps always give the same bytes.
    """
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    container = av.open(
        str(partial),
        mode="w",
        format="mp4",
        options={"movflags": "+faststart", "fflags": "+bitexact"},
    )
    try:
        stream = None
        for frame_array in frames:
            array = np.ascontiguousarray(frame_array, dtype=np.uint8)
            if array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"frames must be H x W x 3 arrays, got shape {array.shape}")
            height, width = array.shape[:2]
            if stream is None:
                if width % 2 or height % 2:
                    raise ValueError(f"frame size must be even, got {width}x{height}")
                stream = container.add_stream("libx264", rate=rate, options=_CODEC_OPTIONS)
                stream.width = width
                stream.height = height
                stream.pix_fmt = "yuv420p"
                stream.codec_context.flags |= Flags.bitexact
            elif (width, height) != (stream.width, stream.height):
                raise ValueError("all frames must have the same size")
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = count
            container.mux(stream.encode(frame))
            count += 1
        if stream is None:
            raise ValueError("no frames to encode")
        container.mux(stream.encode(None))
        container.close()
    except BaseException:
        container.close()
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target.stat().st_size
