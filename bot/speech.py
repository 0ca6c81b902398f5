"""Speech for the spoken guide: espeak-ng's voice and a chime, as the raw audio that
discord.py's voice pipeline plays (PCM, 48 kHz, 16-bit, stereo) and encodes to Opus.

Nothing here imports discord or touches the event loop: `SpeechCache.audio` makes the
audio in a thread and keeps it per text, so a step's words are synthesised once.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import wave
from collections import OrderedDict
from pathlib import Path

import numpy as np

SAMPLE_RATE = 48_000
CHANNELS = 2
SAMPLE_BYTES = 2
BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * SAMPLE_BYTES
WORDS_PER_MINUTE = 155
SPEAK_TIMEOUT = 20.0  # seconds for espeak-ng (it speaks the longest step in well under one)
SHORTEST_SHARE = 0.3  # audio shorter than this share of the text's length was cut short
CACHED_BYTES = 64 * 1024 * 1024  # about 11 minutes of speech
CHIME_NOTES = ((659.25, 0.16), (880.0, 0.28))  # E5 then A5, seconds each
VOLUME = 0.35


class SpeechUnavailable(Exception):
    """The voice cannot be made here; the message says what to install."""


def seconds_of(pcm: bytes) -> float:
    """How long `pcm` plays."""
    return len(pcm) / BYTES_PER_SECOND


def silence(seconds: float) -> bytes:
    """`seconds` of silence."""
    frames = round(seconds * SAMPLE_RATE)
    return bytes(frames * CHANNELS * SAMPLE_BYTES)


def chime() -> bytes:
    """Two soft rising notes that say "listen: a new step"."""
    parts = []
    for frequency, seconds in CHIME_NOTES:
        times = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        fade = np.minimum(1.0, np.minimum(times, seconds - times) / 0.02)
        parts.append(np.sin(2 * np.pi * frequency * times) * fade * VOLUME)
    return _pcm(np.concatenate(parts))


def speak(text: str, voice: str = "en") -> bytes:
    """`text` read aloud by espeak-ng, as 48 kHz stereo PCM (`SpeechUnavailable` when it
    cannot be: no espeak-ng, a failure, or audio cut short, as on a full disk)."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise SpeechUnavailable("espeak-ng is not installed (Debian: apt install espeak-ng)")
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "speech.wav"
            done = subprocess.run(
                [program, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(path), "--stdin"],
                input=text.encode("utf-8"), capture_output=True, timeout=SPEAK_TIMEOUT,
                check=False,
            )  # fmt: skip
            if done.returncode != 0 or not path.exists():
                reason = done.stderr.decode("utf-8", "replace").strip()
                raise SpeechUnavailable(f"espeak-ng could not speak: {reason or done.returncode}")
            with wave.open(str(path), "rb") as reader:
                rate, width = reader.getframerate(), reader.getsampwidth()
                channels, raw = reader.getnchannels(), reader.readframes(reader.getnframes())
        if width != SAMPLE_BYTES:
            raise SpeechUnavailable(f"espeak-ng wrote {8 * width}-bit audio; 16-bit is expected")
        samples = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).mean(axis=1) / 32768.0
    except (OSError, EOFError, wave.Error, ValueError, subprocess.TimeoutExpired) as error:
        raise SpeechUnavailable(f"espeak-ng could not speak: {error!r}") from error
    spoken = samples.size / rate if rate else 0.0
    if spoken < SHORTEST_SHARE * len(text.split()) * 60 / WORDS_PER_MINUTE:
        raise SpeechUnavailable(f"espeak-ng's audio was cut short ({spoken:.2f} s)")
    return _pcm(_resampled(samples, rate))


def _resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono samples at `rate` as mono samples at 48 kHz (linear interpolation)."""
    if rate == SAMPLE_RATE or samples.size == 0:
        return samples
    count = round(samples.size * SAMPLE_RATE / rate)
    return np.interp(np.arange(count) * rate / SAMPLE_RATE, np.arange(samples.size), samples)


def _pcm(mono: np.ndarray) -> bytes:
    """Mono samples in -1..1 as 16-bit little-endian stereo."""
    clipped = np.clip(mono, -1.0, 1.0) * 32767
    return np.repeat(clipped.astype("<i2"), CHANNELS).tobytes()


class SpeechCache:
    """The audio of texts, made once each in a worker thread and kept (the most recently
    used, up to `CACHED_BYTES`), so the event loop never waits for espeak-ng."""

    def __init__(self, voice: str = "en") -> None:
        self.voice = voice
        self._audio: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0  # held in `_audio`
        self._making: dict[str, asyncio.Future[bytes]] = {}

    async def audio(self, text: str) -> bytes:
        """`text` spoken (raises `SpeechUnavailable`)."""
        if text in self._audio:
            self._audio.move_to_end(text)
            return self._audio[text]
        if text not in self._making:
            loop = asyncio.get_running_loop()
            self._making[text] = loop.run_in_executor(None, speak, text, self.voice)
        try:
            pcm = await asyncio.shield(self._making[text])
        finally:
            self._making.pop(text, None)
        if text not in self._audio:  # another waiter for the same text may have kept it
            self._audio[text] = pcm
            self._bytes += len(pcm)
        while self._bytes > CACHED_BYTES and len(self._audio) > 1:
            self._bytes -= len(self._audio.popitem(last=False)[1])
        return pcm
