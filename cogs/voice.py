"""The spoken guide: a session's steps read aloud in a voice or stage channel.

`VoiceGuides` (owned by the bot, like `SessionMessages`) hears from the engine every change
of the sessions it guides aloud and speaks: a chime and the step's words as a step starts,
the halfway and ten-second cues on the session's clock, the giver's advice when the
receiver asks for more or less pressure, and a farewell as the session ends. The audio comes
from `SpeechCache` (espeak-ng, in a thread, once per text) and is played one utterance after
another, never one over another, through the voice client (discord.py's `VoiceClient`
encodes it to Opus); a pause stops what is playing and drops what was waiting. The guide
leaves when the session ends, when no one but the bot is left in the channel, or when a
moderator moves or disconnects it. One voice channel per server, as Discord allows. The
store remembers the guides, so a restarted bot joins their channels again. A failure
(Discord, espeak-ng) is logged, and the session goes on in text.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import aiohttp
import discord
from discord import opus, voice_client, voice_state

from bot.guide import TIME_UP, Cue, announcement, cues, due_cue, farewell, pressure_advice
from bot.sessions import SessionView, StoreError, Update
from bot.speech import SpeechCache, SpeechUnavailable, chime, seconds_of

if TYPE_CHECKING:
    from bot.client import MassageBot

log = logging.getLogger(__name__)

VocalChannel = discord.VoiceChannel | discord.StageChannel
CONNECT_SECONDS = 10.0
PLAY_SLACK_SECONDS = 5.0  # past an utterance's length, give up waiting for it to end
CUE_MAX_SLEEP = 300.0  # look again at least this often, in case the wall clock jumped
FRAME_BYTES = opus.Encoder.FRAME_SIZE  # discord.py plays 20 ms frames of 48 kHz stereo
ANNOUNCED = frozenset({"started", "restored", "step", "resumed"})  # kinds that say the step
NOT_IN_VOICE = (
    "To hear the steps spoken, join a voice or stage channel of this server, then start again."
)
VOICE_EXTRA = (
    "Speaking aloud needs the voice extra: pip install 'massage-bot[voice]' (PyNaCl and "
    "davey) and libopus (apt install libopus0)."
)
CHANNEL_PERMISSIONS = {"view_channel": "View Channel", "connect": "Connect", "speak": "Speak"}
STAGE_PERMISSIONS = {"view_channel": "View Channel", "connect": "Connect"}
ASKED_TO_SPEAK = (
    "I asked to speak on {stage}: a stage moderator needs to invite me up to the speakers "
    "before you can hear me."
)
NOT_A_SPEAKER = (
    "I joined {stage} but could not make myself a speaker: a stage moderator needs to invite "
    "me up before you can hear me."
)


class VoiceError(Exception):
    """The guide cannot speak there; the message is one line for the person."""


class Player(Protocol):
    """What the guide uses of a voice client: discord.py's `VoiceClient`, or a test's."""

    def play(
        self, source: discord.AudioSource, *, after: Callable[[Exception | None], Any]
    ) -> None: ...

    def stop(self) -> None: ...

    def is_connected(self) -> bool: ...

    async def disconnect(self, *, force: bool = False) -> None: ...


def voice_extra_missing(voice_client_class: type[discord.VoiceProtocol]) -> bool:
    """Whether discord.py's voice client lacks what it needs here (PyNaCl, davey, libopus).
    Another voice protocol (a test's) sends nothing and needs none of them."""
    if not issubclass(voice_client_class, discord.VoiceClient):
        return False
    if not opus.is_loaded():
        opus._load_default()
    return not (voice_client.has_nacl and voice_state.has_dave and opus.is_loaded())


def channel_of(person: discord.abc.User) -> VocalChannel | None:
    """The voice or stage channel `person` is in (a member of the server of the interaction)."""
    state = getattr(person, "voice", None)  # a user in a direct message has none
    channel = state.channel if state is not None else None
    return channel if isinstance(channel, VocalChannel) else None


@dataclass(frozen=True, slots=True)
class _Utterance:
    text: str
    chime: bool  # the chime instead of words
    epoch: int  # the guide's epoch when it was queued: dropped once that has moved on


@dataclass(eq=False)
class _Guide:
    """One session spoken in one channel: what is queued to be said, and the cues to come."""

    session_id: str
    channel: VocalChannel
    voice: Player
    view: SessionView
    cues: list[Cue] = field(default_factory=list)
    queue: deque[_Utterance] = field(default_factory=deque)
    queued: asyncio.Event = field(default_factory=asyncio.Event)
    epoch: int = 0
    ending: bool = False  # the farewell is queued: leave once the queue is said
    speaker: asyncio.Task[None] | None = None

    def say(self, text: str, *, chime: bool = False) -> None:
        self.queue.append(_Utterance(text, chime, self.epoch))
        self.queued.set()

    def drop_queued(self) -> None:
        """Forget what waits to be said (what plays now ends by itself)."""
        self.epoch += 1
        self.queue.clear()

    def hush(self) -> None:
        """Stop what plays now too."""
        self.drop_queued()
        self.voice.stop()


class VoiceGuides:
    """Every session this process guides aloud, one per server."""

    def __init__(
        self, bot: MassageBot, voice_client_class: type[discord.VoiceProtocol] = discord.VoiceClient
    ) -> None:
        self.bot = bot
        self.voice_client_class = voice_client_class
        self.speech = SpeechCache()
        self._chime = chime()
        self._guides: dict[str, _Guide] = {}  # by session
        self._servers: dict[int, str] = {}  # guild id: the session guided (or joining) there
        self._tasks: list[asyncio.Task[None]] = []
        self._waker: asyncio.Event | None = None
        self._closed = False

    async def start(self) -> None:
        """Once the engine has restored its sessions: hear their changes, time the cues, and
        join again the channels of the sessions guided aloud before a restart."""
        self._waker = self.bot.waker()
        self.bot.engine.subscribe(self.on_update)
        self._tasks = [
            asyncio.create_task(self._run_cues(), name="massage-voice-cues"),
            asyncio.create_task(self._rejoin(), name="massage-voice-rejoin"),
        ]

    async def close(self) -> None:
        """Stop speaking (before discord.py leaves the voice channels as it closes); the store
        keeps the guides, for the next start."""
        if self._closed:
            return
        self._closed = True
        if self._waker is not None:
            self.bot.engine.unsubscribe(self.on_update)
        tasks = [*self._tasks, *(g.speaker for g in self._guides.values() if g.speaker)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for guide in self._guides.values():
            guide.voice.stop()

    # Joining ----------------------------------------------------------------------------

    def refusal(self, channel: VocalChannel | None) -> str | None:
        """Why the guide cannot speak in `channel` now, for the person (None: it can)."""
        if channel is None:
            return NOT_IN_VOICE
        if channel.guild.id in self._servers and not voice_extra_missing(self.voice_client_class):
            return (
                "I'm already speaking another session aloud in this server (Discord lets me be "
                "in one voice channel per server), so I can't speak this one too."
            )
        return self.channel_problem(channel)

    def channel_problem(self, channel: VocalChannel) -> str | None:
        """What keeps the guide from speaking in `channel` at all: the voice extra, a
        permission, a full channel (None: nothing)."""
        if voice_extra_missing(self.voice_client_class):
            return VOICE_EXTRA
        guild = channel.guild
        granted = channel.permissions_for(guild.me)
        stage = isinstance(channel, discord.StageChannel)
        needed = STAGE_PERMISSIONS if stage else CHANNEL_PERMISSIONS
        missing = [name for flag, name in needed.items() if not getattr(granted, flag)]
        if stage and not (granted.mute_members or granted.request_to_speak):
            missing.append("Request to Speak")
        if len(missing) == 1:
            return f"To speak in {channel.mention} I need the {missing[0]} permission there."
        if missing:
            names = f"{', '.join(missing[:-1])} and {missing[-1]}"
            return f"To speak in {channel.mention} I need the {names} permissions there."
        if channel.user_limit and len(channel.voice_states) >= channel.user_limit:
            return f"{channel.mention} is full, so I can't join it to speak."
        return None

    async def guide_aloud(self, interaction: discord.Interaction, session_id: str) -> None:
        """After `/massage start ... voice:true`: speak the session in the channel its starter
        is in, telling them privately when that cannot be done."""
        try:
            note = await self.guide(session_id, channel_of(interaction.user))
        except VoiceError as error:
            note = str(error)
        if note is not None:
            await self.bot.tell(interaction, note)

    async def guide(self, session_id: str, channel: VocalChannel | None) -> str | None:
        """Join `channel` and speak session `session_id` there from now on.

        Raises `VoiceError` when it cannot; returns a line for the person when it joined but
        cannot be heard yet (a stage that needs a moderator to invite it up), else None.
        """
        problem = self.refusal(channel)
        if problem is not None:
            raise VoiceError(problem)
        assert channel is not None
        guild = channel.guild
        self._servers[guild.id] = session_id
        try:
            voice = cast(Player, await channel.connect(
                cls=self.voice_client_class, self_deaf=True, timeout=CONNECT_SECONDS
            ))
        except BaseException as error:
            if guild.voice_client is not None:  # half joined: leave
                await self._disconnect(session_id, cast(Player, guild.voice_client))
            self._servers.pop(guild.id, None)
            if not isinstance(error, TimeoutError | discord.DiscordException |
                              aiohttp.ClientError | OSError):  # fmt: skip
                raise  # unforeseen: the error boundary logs it
            log.warning("session %s: could not join voice channel %s: %r", session_id,
                        channel.id, error)  # fmt: skip
            raise VoiceError(
                f"I could not join {channel.mention}, so this session goes on in text only."
            ) from error
        view = self.bot.engine.get(session_id)
        if view is None:  # it ended meanwhile
            await self._disconnect(session_id, voice)
            del self._servers[guild.id]
            return None
        guide = _Guide(session_id, channel, voice, view)
        self._guides[session_id] = guide
        self._follow(guide, Update("restored", view))  # the step as it stands
        note = None
        if isinstance(channel, discord.StageChannel):
            note = await self._take_the_stage(channel)
        if self._guides.get(session_id) is not guide:
            return note  # a moderator moved or disconnected it meanwhile
        try:
            await self.bot.engine.store.set_voice_guide(session_id, str(guild.id), str(channel.id))
        except StoreError as error:  # it speaks; only a restart would not bring it back
            log.warning("session %s: could not remember its voice channel: %s", session_id, error)
        guide.speaker = asyncio.create_task(self._speak(guide), name=f"massage-voice-{session_id}")
        guide.speaker.add_done_callback(lambda task: self._speaker_done(guide, task))
        return note

    async def _take_the_stage(self, stage: discord.StageChannel) -> str | None:
        """On a stage the bot joins the audience: become a speaker (a stage moderator may),
        or ask to speak (a line for the person: a moderator must invite it up)."""
        me = stage.guild.me
        try:
            if stage.permissions_for(me).mute_members:
                await me.edit(suppress=False)
                return None
            await me.request_to_speak()
            return ASKED_TO_SPEAK.format(stage=stage.mention)
        except (discord.HTTPException, discord.ClientException, aiohttp.ClientError) as error:
            log.warning("could not speak on stage %s: %s", stage.id, error)
            return NOT_A_SPEAKER.format(stage=stage.mention)

    async def _rejoin(self) -> None:
        """Join again the channels of the sessions guided aloud before a restart, once the
        gateway has brought the servers (a session that ended, or a channel nobody is in
        any more, is forgotten)."""
        await self.bot.wait_until_ready()
        store = self.bot.engine.store
        try:
            guided = await store.voice_guides(self.bot.owned_shards)
        except StoreError as error:
            log.warning("could not read the sessions guided aloud: %s", error)
            return
        for session_id, channel_id in guided.items():
            channel = self.bot.get_channel(int(channel_id))
            note = "it has ended, its channel is gone, or nobody is in it"
            running = self.bot.engine.get(session_id) is not None
            if running and isinstance(channel, VocalChannel) and self._people_in(channel):
                try:
                    await self.guide(session_id, channel)
                    continue
                except VoiceError as error:
                    note = str(error)
            log.info("session %s is no longer guided aloud: %s", session_id, note)
            with contextlib.suppress(StoreError):
                await store.forget_voice_guide(session_id)

    # What the sessions do ------------------------------------------------------------------

    def on_update(self, update: Update) -> None:
        """The engine's listener: a session changed (a command, the timer, a restore)."""
        view = update.session
        guide = self._guides.get(view.id) if view is not None else None
        if guide is None or guide.ending:
            return
        self._follow(guide, update)
        if self._waker is not None:
            self._waker.set()  # the cues may have changed

    def _follow(self, guide: _Guide, update: Update) -> None:
        """What to say, and which cues to plan, after `update`."""
        view = update.session
        assert view is not None
        guide.view = view
        if update.summary is not None:
            guide.drop_queued()
            guide.cues, guide.ending = [], True
            guide.say(farewell(update.summary))
            return
        if view.state == "paused":  # nothing plays while paused
            guide.hush()
            guide.cues = []
            return
        if view.state == "time_up" and update.kind in ("time_up", "restored"):
            guide.drop_queued()
            guide.say(TIME_UP)
        elif update.kind in ANNOUNCED:
            guide.hush()  # the step before is not read on over the new one
            guide.say("", chime=True)
            guide.say(announcement(view))
        guide.cues = cues(view, self.bot.clock())

    def advise(self, session_id: str, advice: str, *, more: bool) -> None:
        """The receiver asked for more or less pressure: say the step's advice for the giver
        (after what is being said; not while paused)."""
        guide = self._guides.get(session_id)
        if guide is not None and not guide.ending and guide.view.state != "paused":
            guide.say(pressure_advice(more, advice))

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Leave a channel nobody else is in any more; forget a guide a moderator moved or
        disconnected."""
        session_id = self._servers.get(member.guild.id)
        guide = self._guides.get(session_id) if session_id is not None else None
        if guide is None or self._closed:
            return
        me = self.bot.user
        if me is not None and member.id == me.id:
            if after.channel is None or after.channel.id != guide.channel.id:
                log.info("session %s: a moderator moved or disconnected me from voice", session_id)
                await self._leave(guide, disconnect=after.channel is not None)
            return
        left = before.channel is not None and before.channel.id == guide.channel.id
        if left and not self._people_in(guide.channel):
            await self._leave(guide)

    def _people_in(self, channel: VocalChannel) -> bool:
        """Whether anyone but the bot is in `channel`."""
        me = self.bot.user
        return any(me is None or user_id != me.id for user_id in channel.voice_states)

    # Speaking ----------------------------------------------------------------------------

    async def _speak(self, guide: _Guide) -> None:
        """Say what is queued, one utterance after another; after the farewell, leave."""
        while guide.queue or not guide.ending:
            if not guide.queue:
                guide.queued.clear()
                await guide.queued.wait()
                continue
            utterance = guide.queue.popleft()
            try:
                pcm = self._chime if utterance.chime else await self.speech.audio(utterance.text)
            except SpeechUnavailable as error:
                log.warning("session %s: could not speak: %s", guide.session_id, error)
                continue
            if utterance.epoch == guide.epoch:  # not dropped while it was being made
                await self._play(guide, pcm)
        await self._leave(guide)

    def _speaker_done(self, guide: _Guide, task: asyncio.Task[None]) -> None:
        """A speaker that failed unexpectedly is logged, and its guide leaves."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("session %s: the spoken guide failed", guide.session_id,
                  exc_info=task.exception())  # fmt: skip
        self.bot.in_background(self._leave(guide))

    async def _play(self, guide: _Guide, pcm: bytes) -> None:
        """Play `pcm` and wait until it has played (or was stopped)."""
        loop, finished = asyncio.get_running_loop(), asyncio.Event()

        def after(error: Exception | None) -> None:  # called on the player's thread
            if error is not None:
                log.warning("session %s: playing failed: %r", guide.session_id, error)
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(finished.set)

        whole_frames = pcm + bytes(-len(pcm) % FRAME_BYTES)  # PCMAudio drops a partial frame
        try:
            guide.voice.play(discord.PCMAudio(io.BytesIO(whole_frames)), after=after)
        except discord.DiscordException as error:  # not connected, or no libopus
            log.warning("session %s: could not play: %r", guide.session_id, error)
            return
        try:
            async with asyncio.timeout(seconds_of(whole_frames) + PLAY_SLACK_SECONDS):
                await finished.wait()
        except TimeoutError:
            log.warning("session %s: an utterance did not end in time", guide.session_id)
            guide.voice.stop()

    async def _run_cues(self) -> None:
        """Queue each guide's cues at their moments of the session's clock."""
        assert self._waker is not None
        while True:
            now = self.bot.clock()
            for guide in self._guides.values():
                cue, guide.cues = due_cue(guide.cues, guide.view, now)
                if cue is not None:
                    guide.say(cue.words)
            upcoming = min((c.at for g in self._guides.values() for c in g.cues), default=None)
            delay = CUE_MAX_SLEEP if upcoming is None else min(upcoming - now, CUE_MAX_SLEEP)
            await self.bot.sleep_until_woken(self._waker, delay)

    # Leaving -----------------------------------------------------------------------------

    async def _leave(self, guide: _Guide, *, disconnect: bool = True) -> None:
        """Stop guiding the session aloud: leave the channel (unless already out of it) and
        forget the guide, here and in the store."""
        if self._guides.get(guide.session_id) is not guide:
            return  # left already
        del self._guides[guide.session_id]
        guide.ending = True
        guide.hush()
        if guide.speaker is not None and guide.speaker is not asyncio.current_task():
            guide.speaker.cancel()
        if disconnect:
            await self._disconnect(guide.session_id, guide.voice)
        self._servers.pop(guide.channel.guild.id, None)
        try:
            await self.bot.engine.store.forget_voice_guide(guide.session_id)
        except StoreError as error:
            log.warning("session %s: could not forget its voice channel: %s", guide.session_id,
                        error)  # fmt: skip

    async def _disconnect(self, session_id: str, voice: Player) -> None:
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                await voice.disconnect(force=False)
        except (TimeoutError, discord.DiscordException, aiohttp.ClientError, OSError) as error:
            log.warning("session %s: could not leave voice cleanly: %r", session_id, error)
