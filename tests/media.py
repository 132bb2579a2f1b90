"""Small media for the tests: images and clips to send, and decoding what comes back."""

from __future__ import annotations

import base64
import io
import struct
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ltx_jupyter.server.video import write_mp4

RGB = tuple[int, int, int]


def png(rgb: RGB, width: int = 8, height: int = 8) -> bytes:
    """A PNG of one flat colour."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def clip(colours: Sequence[RGB], width: int = 32, height: int = 16, fps: float = 8) -> bytes:
    """An H.264 MP4 with one flat frame per colour."""
    frames = [np.full((height, width, 3), colour, dtype=np.uint8) for colour in colours]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        write_mp4(frames, path, fps)
        return path.read_bytes()


def data_uri(data: bytes, mime: str) -> str:
    """``data`` as a base64 data: URI."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def png_uri(rgb: RGB, width: int = 8, height: int = 8) -> str:
    """A data: URI of a flat PNG."""
    return data_uri(png(rgb, width, height), "image/png")


def clip_uri(colours: Sequence[RGB], width: int = 32, height: int = 16) -> str:
    """A data: URI of a clip with one flat frame per colour."""
    return data_uri(clip(colours, width, height), "video/mp4")


@dataclass(frozen=True)
class Decoded:
    """What a video file holds, read back with PyAV."""

    frames: np.ndarray  # (count, height, width, 3) RGB
    fps: float
    duration: float  # seconds of video
    codec: str
    audio_codec: str | None
    audio: np.ndarray | None  # mono samples
    sample_rate: int | None

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    def colour(self, index: int) -> np.ndarray:
        """The mean RGB colour of frame ``index``."""
        return self.frames[index].reshape(-1, 3).mean(axis=0)


def decode(data: bytes) -> Decoded:
    """Decode a whole MP4 (its video and, if any, its sound)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        codec = stream.codec_context.name
    audio = audio_codec = sample_rate = None
    with av.open(io.BytesIO(data)) as container:
        if container.streams.audio:
            sound = container.streams.audio[0]
            audio_codec, sample_rate = sound.codec_context.name, sound.sample_rate
            blocks = [f.to_ndarray() for f in container.decode(sound)]
            audio = np.concatenate(blocks, axis=1)[0] if blocks else np.zeros(0)
    return Decoded(frames, float(rate), duration, codec, audio_codec, audio, sample_rate)
