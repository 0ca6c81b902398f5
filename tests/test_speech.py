"""The spoken guide's audio: espeak-ng's voice and a chime, as discord.py plays it."""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest

from bot import speech
from bot.speech import BYTES_PER_SECOND, SpeechCache, SpeechUnavailable, chime, seconds_of, speak
from tests.conftest import require


@pytest.fixture
def espeak() -> None:
    require(shutil.which("espeak-ng") is not None, "espeak-ng", "apt install espeak-ng")


def loudness(pcm: bytes) -> float:
    return float(np.abs(np.frombuffer(pcm, dtype="<i2")).mean())


def test_a_step_is_spoken_at_a_sensible_length(espeak: None) -> None:
    short, long = speak("Rocking light fist."), speak("Rocking light fist. " * 6)
    assert len(short) % 4 == 0  # whole 16-bit stereo frames
    assert 0.5 < seconds_of(short) < 3.0 < seconds_of(long) < 12.0
    assert loudness(short) > 100  # not silence


def test_the_chime_is_short_and_soft() -> None:
    sound = chime()
    assert 0.3 < seconds_of(sound) < 0.6
    samples = np.frombuffer(sound, dtype="<i2")
    assert 0 < np.abs(samples).max() < 0.4 * 32768


async def test_each_text_is_made_once_off_the_event_loop(
    espeak: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []

    def counting(text: str, voice: str = "en") -> bytes:
        made.append(text)
        return speak(text, voice)

    monkeypatch.setattr(speech, "speak", counting)
    cache = SpeechCache()
    first, again = await cache.audio("Next step."), await cache.audio("Next step.")
    assert first == again and made == ["Next step."]
    assert seconds_of(first) * BYTES_PER_SECOND == len(first)


def test_without_espeak_the_reason_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SpeechUnavailable, match="apt install espeak-ng"):
        speak("hello")


def test_espeak_timing_out_is_unavailable_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    def hanging(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired("espeak-ng", 60)

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/espeak-ng")
    monkeypatch.setattr(subprocess, "run", hanging)
    with pytest.raises(SpeechUnavailable, match="could not speak"):
        speak("hello")


@pytest.mark.parametrize("written", [b"", b"RIFF\x00\x00", "short"])
def test_a_broken_or_cut_short_wav_is_unavailable_speech(
    monkeypatch: pytest.MonkeyPatch, written: bytes | str
) -> None:
    """What espeak-ng leaves on a full disk: an empty file, a broken header, or a start."""

    def writing(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        path = command[command.index("-w") + 1]
        if written == "short":  # a tenth of a second of a long text
            with wave.open(path, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(22_050)
                out.writeframes(bytes(4_410))
        else:
            with open(path, "wb") as out:
                out.write(written)  # type: ignore[arg-type]
        return subprocess.CompletedProcess(command, 0, b"", b"")

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/espeak-ng")
    monkeypatch.setattr(subprocess, "run", writing)
    with pytest.raises(SpeechUnavailable):
        speak("Rock your fist gently between the spine and the shoulder blade, slowly.")


async def test_the_cache_keeps_to_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech, "speak", lambda text, voice="en": bytes(len(text) * 4))
    monkeypatch.setattr(speech, "CACHED_BYTES", 1_000)
    cache = SpeechCache()
    for n in range(10):
        await cache.audio(f"{n}" * 100)  # 400 bytes each
    assert sum(map(len, cache._audio.values())) <= 1_000 and "9" * 100 in cache._audio
