"""Encode frames (and a sound track) to an MP4 that browsers play: H.264 yuv420p, AAC, with
``+faststart``, deterministic.

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

__all__ = ["AUDIO_SAMPLE_RATE", "write_mp4"]

#: libx264 settings that make the bytes reproducible for the same frames: one thread, and no
#: macroblock-tree rate control (with it, the same frames encoded in a busy process came out
#: different now and then, short clips and small sizes most often).
_CODEC_OPTIONS = {"threads": "1", "preset": "veryfast", "crf": "20", "x264-params": "mbtree=0"}
#: The sound track's sample rate (Hz), the one browsers and AAC handle everywhere.
AUDIO_SAMPLE_RATE = 48_000
_AUDIO_BIT_RATE = 96_000
#: Samples per AAC frame: the encoder takes its input in blocks of this size.
_AUDIO_BLOCK = 1024


def write_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike[str],
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int = AUDIO_SAMPLE_RATE,
) -> int:
    """Write RGB frames (each ``H x W x 3`` uint8, even sizes) to ``path``; return the file size.

    ``audio``, when given, is a mono sound track (float samples from -1 to 1 at
    ``sample_rate``), encoded as AAC and interleaved with the frames; without it the file has
    no audio stream. The file is written next to ``path`` and renamed into place, so a reader
    never sees a half-written video. The same frames, fps and audio always give the same bytes.
    """
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    rate = Fraction(fps).limit_denominator(1001)
    samples = None if audio is None else _mono_samples(audio)
    count = 0
    sent = 0  # audio samples encoded so far
    container = av.open(
        str(partial),
        mode="w",
        format="mp4",
        options={"movflags": "+faststart", "fflags": "+bitexact"},
    )
    try:
        stream = None
        sound = None
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
                if samples is not None:
                    sound = _audio_stream(container, sample_rate)
            elif (width, height) != (stream.width, stream.height):
                raise ValueError("all frames must have the same size")
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = count
            container.mux(stream.encode(frame))
            count += 1
            if sound is not None and samples is not None:
                # The sound up to the end of this frame: audio and video interleave.
                until = min(len(samples), round(count / rate * sample_rate))
                sent = _encode_audio(container, sound, samples, sent, until, sample_rate)
        if stream is None:
            raise ValueError("no frames to encode")
        container.mux(stream.encode(None))
        if sound is not None and samples is not None:
            _encode_audio(container, sound, samples, sent, len(samples), sample_rate)
            container.mux(sound.encode(None))
        container.close()
    except BaseException:
        container.close()
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target.stat().st_size


def _mono_samples(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1 or not len(samples):
        raise ValueError(f"audio must be a non-empty 1-D array of samples, got {samples.shape}")
    return np.clip(samples, -1.0, 1.0)


def _audio_stream(container: av.container.OutputContainer, sample_rate: int) -> av.AudioStream:
    sound = container.add_stream("aac", rate=sample_rate)
    sound.codec_context.layout = "mono"
    sound.codec_context.format = "fltp"
    sound.codec_context.bit_rate = _AUDIO_BIT_RATE
    sound.codec_context.flags |= Flags.bitexact
    return sound


def _encode_audio(
    container: av.container.OutputContainer,
    sound: av.AudioStream,
    samples: np.ndarray,
    start: int,
    until: int,
    sample_rate: int,
) -> int:
    """Encode ``samples[start:until]`` in whole blocks (the last, partial one only at the end);
    return where encoding stopped."""
    while start < until and (until - start >= _AUDIO_BLOCK or until == len(samples)):
        block = samples[start : start + _AUDIO_BLOCK]
        frame = av.AudioFrame.from_ndarray(block[None, :], format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(sound.encode(frame))
        start += len(block)
    return start
