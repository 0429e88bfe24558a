"""Small, valid WAV files for simulated recordings, made with the stdlib ``wave`` module."""

from __future__ import annotations

import functools
import io
import math
import struct
import wave

__all__ = ["MAX_AUDIO_SECONDS", "SAMPLE_RATE", "make_wav"]

SAMPLE_RATE = 8000
"""Telephone quality: 8 kHz, mono, 16-bit."""
MAX_AUDIO_SECONDS = 5
"""Files are capped at this length so a long simulated call never makes a large download."""


@functools.cache
def _one_second() -> bytes:
    # A quiet 440 Hz tone: audibly "something", and cheap to repeat for any length.
    samples = (
        int(3000 * math.sin(2 * math.pi * 440 * i / SAMPLE_RATE)) for i in range(SAMPLE_RATE)
    )
    return struct.pack(f"<{SAMPLE_RATE}h", *samples)


def make_wav(seconds: float) -> bytes:
    """A mono 8 kHz 16-bit WAV of ``seconds`` (at least 1, at most :data:`MAX_AUDIO_SECONDS`)."""
    length = max(1.0, min(float(seconds), float(MAX_AUDIO_SECONDS)))
    whole, part = divmod(length, 1.0)
    frames = _one_second() * int(whole) + _one_second()[: int(part * SAMPLE_RATE) * 2]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(frames)
    return buffer.getvalue()
