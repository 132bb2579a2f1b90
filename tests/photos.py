"""Real image files for the upload tests and benchmark: a phone-sized JPEG made with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

__all__ = ["PHOTO_BYTES", "write_photo"]

#: The size of a large phone photo, which the upload tests and benchmark send.
PHOTO_BYTES = 20_000_000


def write_photo(path: Path, width: int = 4096, height: int = 3072, seed: int = 0) -> Path:
    """Write a real JPEG (baseline, 4:4:4, top quality) of a gradient under heavy grain to
    ``path``: 4096x3072 gives just over 20 MB, as a 12-megapixel phone photo at full quality
    can be. The same arguments always give the same bytes."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    shape = (height, width)
    base = np.stack(
        [np.broadcast_to(x, shape), np.broadcast_to(y, shape), np.broadcast_to((x + y) / 2, shape)],
        axis=-1,
    )
    grain = rng.integers(0, 150, size=(height, width, 3), dtype=np.uint8)
    pixels = np.clip(base + grain, 0, 255).astype(np.uint8)
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuvj444p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"qmin": "2", "qmax": "2"}
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuvj444p")
    packets = [*codec.encode(frame), *codec.encode(None)]
    path.write_bytes(b"".join(bytes(packet) for packet in packets))
    return path
