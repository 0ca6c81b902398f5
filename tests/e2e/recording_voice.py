"""A voice client for tests: joins through the bot's gateway as discord.py's `VoiceClient`
does, but opens no voice connection; what the bot plays is read and kept.

Pass it to the bot (`MassageBot(voice_client_class=RecordingVoice)`), which hands it to
`channel.connect(cls=...)`. Like `discord.VoiceClient`, `play` reads the `AudioSource` in
20 ms frames on a thread of its own (as fast as it can, not in real time) and calls `after`
from that thread; `stop` cuts the piece playing short. Tests then ask what was played
(`pieces`: each one's audio, length and moments, whether it was cut short) and whether
anything played between two moments (`played_between`). After `hold`, each piece waits
after its first frame until `release` (or `stop`): a test acts while something plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.speech import seconds_of

FRAME_BYTES = discord.opus.Encoder.FRAME_SIZE  # 20 ms of 48 kHz 16-bit stereo


@dataclass(eq=False)
class Piece:
    """One `play` call: the frames read from its source, and when."""

    frames: list[bytes] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # None while it plays
    stopped: bool = False  # cut short by `stop`

    @property
    def pcm(self) -> bytes:
        return b"".join(self.frames)

    @property
    def seconds(self) -> float:
        """How long the audio read plays."""
        return seconds_of(self.pcm)

    def same_audio(self, pcm: bytes) -> bool:
        """Whether this is `pcm`, played whole (its last frame padded with silence)."""
        whole = pcm + bytes(-len(pcm) % FRAME_BYTES)
        return not self.stopped and self.pcm == whole


class RecordingVoice(discord.VoiceProtocol):
    """A voice protocol that records what is played instead of sending it."""

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable) -> None:
        super().__init__(client, channel)
        self.states: list[dict[str, Any]] = []  # VOICE_STATE_UPDATEs of the bot
        self.servers: list[dict[str, Any]] = []  # VOICE_SERVER_UPDATEs
        self.pieces: list[Piece] = []
        self.connected = False
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._playing: Piece | None = None
        self._halt = threading.Event()  # set by `stop`: the piece playing ends now
        self._gate = threading.Event()  # cleared by `hold`: a piece waits after its frame
        self._gate.set()

    @property
    def guild(self) -> discord.Guild:
        assert isinstance(self.channel, discord.VoiceChannel | discord.StageChannel)
        return self.channel.guild

    # Joining and leaving, through the bot's gateway ------------------------------------------

    async def on_voice_state_update(self, data: Any, /) -> None:
        self.states.append(dict(data))
        if data["channel_id"] is None:  # left, or disconnected by a moderator
            self.connected = False
            self.stop()
            self.cleanup()
        self._notify()

    async def on_voice_server_update(self, data: Any, /) -> None:
        self.servers.append(dict(data))
        self._notify()

    async def connect(
        self, *, timeout: float, reconnect: bool, self_deaf: bool = False, self_mute: bool = False
    ) -> None:
        await self.guild.change_voice_state(
            channel=self.channel, self_mute=self_mute, self_deaf=self_deaf
        )
        await self.until(lambda: self.states and self.servers, timeout)
        self.connected = True

    async def disconnect(self, *, force: bool = False) -> None:
        self.stop()
        if self.connected:
            await self.guild.change_voice_state(channel=None)
            await self.until(lambda: not self.connected, 2.0)
        self.cleanup()

    def is_connected(self) -> bool:
        return self.connected

    # Playing ---------------------------------------------------------------------------------

    def play(
        self, source: discord.AudioSource, *, after: Callable[[Exception | None], Any] | None = None
    ) -> None:
        """Read `source` on a thread, as `discord.VoiceClient.play` does."""
        if not self.connected:
            raise discord.ClientException("Not connected to voice.")
        if self.is_playing():
            raise discord.ClientException("Already playing audio.")
        piece = Piece()
        self.pieces.append(piece)
        self._playing = piece
        self._halt = threading.Event()
        threading.Thread(
            target=self._read, args=(piece, source, self._halt, after), daemon=True
        ).start()
        self._notify()

    def _read(
        self, piece: Piece, source: discord.AudioSource, halt: threading.Event,
        after: Callable[[Exception | None], Any] | None,
    ) -> None:  # fmt: skip
        error: Exception | None = None
        try:
            while not halt.is_set():
                frame = source.read()
                if not frame:
                    break
                piece.frames.append(frame)
                while not self._gate.wait(0.01) and not halt.is_set():
                    pass
        except Exception as problem:  # handed to `after`, as discord.py's player does
            error = problem
        finally:
            piece.stopped = halt.is_set()
            piece.ended = time.monotonic()
            source.cleanup()
            if after is not None:
                after(error)
            with contextlib.suppress(RuntimeError):  # the test's loop has closed
                self._loop.call_soon_threadsafe(self._finished, piece)

    def _finished(self, piece: Piece) -> None:
        if self._playing is piece:
            self._playing = None
        self._notify()

    def is_playing(self) -> bool:
        """Playing until the source is read out, before `after` is called (as discord.py)."""
        return self._playing is not None and self._playing.ended is None

    def stop(self) -> None:
        """Cut the piece playing short (its `after` is called, as on discord.py)."""
        self._halt.set()
        self._playing = None

    def hold(self) -> None:
        """From now on a piece waits after its first frame, until `release` or `stop`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    # What tests ask --------------------------------------------------------------------------

    def played_between(self, start: float, end: float) -> list[Piece]:
        """The pieces that played at some moment between `start` and `end` (monotonic)."""
        return [p for p in self.pieces if p.started < end and (p.ended or end) > start]

    async def until(self, done: Callable[[], Any], timeout: float = 5.0) -> None:
        """Wait until `done()` is true (checked whenever something changes)."""
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def pieces_done(self, count: int, timeout: float = 10.0) -> list[Piece]:
        """Wait until at least `count` pieces have finished playing; all of them, in order."""
        await self.until(lambda: sum(p.ended is not None for p in self.pieces) >= count, timeout)
        return self.pieces

    def _notify(self) -> None:
        self._changed.set()
