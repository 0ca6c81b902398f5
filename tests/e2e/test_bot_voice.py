"""The spoken guide on Discord: `/massage start ... voice:true` in a voice or stage channel.

The bot joins through its gateway (op 4) and plays into `RecordingVoice`, which keeps what
it played: the tests check what was said (by comparing with espeak-ng's audio of the words
expected), in which order, for how long, and that nothing played while the session was
paused. The bot's clock is the tests' `FakeClock`: cues and steps come when the test moves
it and wakes the bot's timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest

from bot import speech
from bot.client import MassageBot
from bot.guide import CUE_WORDS, announcement, farewell, pressure_advice
from bot.sessions import SessionView
from cogs.voice import NOT_IN_VOICE, VOICE_EXTRA
from tests.conftest import require
from tests.e2e.fake_discord import (
    GUILD_STAGE_VOICE,
    GUILD_VOICE,
    MUTE_MEMBERS,
    Channel,
    FakeDiscord,
    Interaction,
    VoiceRequest,
)
from tests.e2e.massage_world import ephemeral_text, press, slash, step_of, text_of
from tests.e2e.recording_voice import RecordingVoice

STEP_SECONDS = 150


@pytest.fixture
def rooms(fake: FakeDiscord) -> tuple[Channel, Channel]:
    """A voice channel and a stage in Wellness (before the bot logs in)."""
    wellness = fake.guild("Wellness")
    return (fake.add_channel(wellness, "Quiet room", type=GUILD_VOICE),
            fake.add_channel(wellness, "Stage", type=GUILD_STAGE_VOICE))  # fmt: skip


@pytest.fixture
def room(rooms: tuple[Channel, Channel]) -> Channel:
    return rooms[0]


@pytest.fixture
async def bot(fake: FakeDiscord, rooms: tuple[Channel, Channel], make_bot: Any) -> AsyncIterator[
    MassageBot
]:
    """The bot, speaking into `RecordingVoice`."""
    massage_bot = make_bot(voice_client_class=RecordingVoice)
    async with fake.run(massage_bot):
        yield massage_bot


async def start_aloud(fake: FakeDiscord, user_name: str = "alice", **options: Any) -> Interaction:
    """`/massage start routine:tiny voice:true` in #general."""
    general = fake.guild("Wellness").channel("general")
    return await slash(fake, fake.user(user_name), general, "massage", "start", routine="tiny",
                       voice=True, **options)  # fmt: skip


async def voice_of(fake: FakeDiscord, bot: MassageBot) -> RecordingVoice:
    """The recording voice client the bot connected in Wellness (waiting for it)."""
    guild = bot.get_guild(fake.guild("Wellness").id)
    assert guild is not None
    for _ in range(200):
        if isinstance(guild.voice_client, RecordingVoice) and guild.voice_client.connected:
            return guild.voice_client
        await asyncio.sleep(0.025)
    raise AssertionError("the bot did not join a voice channel")


def session_of(fake: FakeDiscord, bot: MassageBot, user_name: str = "alice") -> SessionView:
    general = fake.guild("Wellness").channel("general")
    view = bot.engine.find(str(general.id), str(fake.user(user_name).id))
    assert view is not None
    return view


async def said(bot: MassageBot, voice: RecordingVoice, count: int, *texts: str) -> list[str]:
    """What the first `count` pieces played were, once played: "chime", one of `texts` (the
    same audio as espeak-ng makes of it), or "?"."""
    pieces = await voice.pieces_done(count)
    audio = {text: await bot.voice_guides.speech.audio(text) for text in texts}
    audio["chime"] = speech.chime()
    return [next((name for name, pcm in audio.items() if piece.same_audio(pcm)), "?")
            for piece in pieces]  # fmt: skip


async def private_followup(interaction: Interaction) -> str:
    """The private follow-up the bot sent after answering `interaction` (waiting for it)."""
    for _ in range(200):
        if interaction.followups:
            assert interaction.followups[0].ephemeral
            return text_of(interaction.followups[0])
        await asyncio.sleep(0.025)
    raise AssertionError("no follow-up came")


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until `check()` is true."""
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}")


async def no_voice_guides(bot: MassageBot) -> None:
    """Wait until the store remembers no session guided aloud."""
    assert bot.store is not None
    for _ in range(200):
        if not await bot.store.voice_guides():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"still guided aloud: {await bot.store.voice_guides()}")


async def quiet(voice: RecordingVoice, seconds: float = 0.3) -> int:
    """Let the bot act for a moment; the number of pieces played or playing by then."""
    await asyncio.sleep(seconds)
    return len(voice.pieces)


def leaving(fake: FakeDiscord, since: int) -> list[VoiceRequest]:
    return [r for r in fake.voice_requests[since:] if r.leaving]


async def test_a_session_spoken_aloud_from_start_to_stop(
    fake: FakeDiscord, bot: MassageBot, room: Channel, clock: Any
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    await fake.join_voice(alice, room)
    started = await start_aloud(fake, partner=bob)
    joined = await fake.wait_for_voice_request()
    assert (joined.channel_id, joined.self_deaf, joined.answered) == (room.id, True, True)
    voice = await voice_of(fake, bot)
    view = session_of(fake, bot)
    step_1 = announcement(view)
    assert await said(bot, voice, 2, step_1) == ["chime", step_1]
    assert 0.3 < voice.pieces[0].seconds < 0.6 and voice.pieces[1].seconds > 1.0
    assert voice.pieces[0].ended is not None and voice.pieces[0].ended <= voice.pieces[1].started
    assert bot.store is not None
    assert await bot.store.voice_guides() == {view.id: str(room.id)}

    halfway, ten = CUE_WORDS["halfway"], CUE_WORDS["ten_seconds"]
    clock.advance(STEP_SECONDS / 2)
    bot.wake_timer()
    assert (await said(bot, voice, 3, halfway))[2] == halfway
    clock.advance(STEP_SECONDS / 2 - 10)
    bot.wake_timer()
    assert (await said(bot, voice, 4, ten))[3] == ten
    clock.advance(10)  # the step's time is up: step 2
    bot.wake_timer()
    step_2 = announcement(bot.engine.get(view.id))  # type: ignore[arg-type]
    assert step_2.startswith("Step 2 of 4")
    assert (await said(bot, voice, 6, step_2))[4:] == ["chime", step_2]

    message = started.original
    assert message is not None
    await press(fake, bob, message, "Accept")
    await press(fake, bob, message, "More pressure")  # the receiver asks: said aloud
    advice = pressure_advice(True, bot.engine.get(view.id).step.more_pressure)  # type: ignore[union-attr]
    assert (await said(bot, voice, 7, advice))[6] == advice
    await press(fake, alice, message, "Less pressure")  # the giver's own: private, not said
    assert await quiet(voice) == 7

    voice.hold()  # the next piece stays playing: pause while it plays
    await press(fake, alice, message, "Next")
    await voice.until(lambda: len(voice.pieces) == 8)
    await press(fake, alice, message, "Pause")
    await voice.until(lambda: voice.pieces[7].ended is not None)
    voice.release()
    assert voice.pieces[7].stopped  # the chime was cut short; step 3's words never came
    paused_at = time.monotonic()
    clock.advance(1000)  # past every cue and the step's end: a paused step waits
    bot.wake_timer()
    assert await quiet(voice) == 8 and voice.played_between(paused_at, time.monotonic()) == []

    await press(fake, alice, message, "Resume")
    step_3 = announcement(bot.engine.get(view.id))  # type: ignore[arg-type]
    assert step_3.startswith("Step 3 of 4") and step_of(message) == 3
    assert (await said(bot, voice, 10, step_3))[8:] == ["chime", step_3]

    since = len(fake.voice_requests)
    await press(fake, alice, message, "Stop")
    left = await fake.wait_for_voice_request(since=since)
    assert left.leaving and left.answered
    ended = await bot.engine.update_for(view.id)
    assert ended is not None and ended.summary is not None
    goodbye = farewell(ended.summary)
    assert goodbye.startswith("The session has ended, after 2 of 4 steps")
    assert (await said(bot, voice, 11, goodbye))[10] == goodbye
    assert voice.pieces[10].ended is not None and voice.pieces[10].ended <= left.received
    await no_voice_guides(bot)
    assert bot.get_guild(fake.guild("Wellness").id).voice_client is None  # type: ignore[union-attr]


async def test_next_cuts_short_the_step_being_read(
    fake: FakeDiscord, bot: MassageBot, room: Channel
) -> None:
    alice = fake.user("alice")
    await fake.join_voice(alice, room)
    started = await start_aloud(fake)
    assert started.original is not None
    voice = await voice_of(fake, bot)
    await voice.pieces_done(2)  # the chime and step 1's words
    voice.hold()  # what plays next stays playing
    await press(fake, alice, started.original, "Back")  # step 1 again: read anew
    await voice.until(lambda: len(voice.pieces) == 3)
    await press(fake, alice, started.original, "Next")
    await voice.until(lambda: voice.pieces[2].ended is not None)
    voice.release()
    assert voice.pieces[2].stopped  # step 1 is not read on over step 2
    step_2 = announcement(session_of(fake, bot))
    assert (await said(bot, voice, 5, step_2))[3:] == ["chime", step_2]


async def test_an_unforeseen_failure_to_join_leaves_the_server_free(
    fake: FakeDiscord, bot: MassageBot, room: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fake.join_voice(fake.user("alice"), room)
    connect = discord.VoiceChannel.connect

    async def broken(self: discord.VoiceChannel, **options: Any) -> Any:
        raise RuntimeError("the voice library broke")

    monkeypatch.setattr(discord.VoiceChannel, "connect", broken)
    await start_aloud(fake)  # the apology, logged
    (first,) = bot.engine.active_sessions()
    await bot.engine.stop(first.id, first.host)
    monkeypatch.setattr(discord.VoiceChannel, "connect", connect)
    await start_aloud(fake)
    await voice_of(fake, bot)  # joined: the server was not left marked busy


async def test_voice_needs_the_person_in_a_voice_channel(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    refused = await start_aloud(fake)
    assert ephemeral_text(refused) == NOT_IN_VOICE
    assert bot.engine.active_sessions() == [] and fake.voice_requests == []


async def test_without_the_voice_extra_a_clear_line(
    fake: FakeDiscord, rooms: tuple[Channel, Channel], make_bot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(discord.voice_client, "has_nacl", False)  # as without PyNaCl
    bot = make_bot()  # discord.py's own VoiceClient
    await fake.join_voice(fake.user("alice"), rooms[0])
    async with fake.run(bot):
        refused = await start_aloud(fake)
        assert ephemeral_text(refused) == VOICE_EXTRA
        assert "pip install 'massage-bot[voice]'" in VOICE_EXTRA
        assert bot.engine.active_sessions() == [] and fake.voice_requests == []


async def test_the_bot_leaves_when_the_channel_empties(
    fake: FakeDiscord, bot: MassageBot, room: Channel
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    await fake.join_voice(alice, room)
    await fake.join_voice(bob, room)
    await start_aloud(fake)
    voice = await voice_of(fake, bot)
    await voice.pieces_done(2)
    since = len(fake.voice_requests)
    await fake.leave_voice(bob)  # alice is still listening
    assert await quiet(voice) == 2 and leaving(fake, since) == []
    await fake.leave_voice(alice)
    assert (await fake.wait_for_voice_request(since=since)).leaving
    await no_voice_guides(bot)
    assert session_of(fake, bot).state == "running"  # the session goes on in text


@pytest.mark.parametrize("moved", [False, True], ids=["disconnected", "moved"])
async def test_a_moderator_moving_or_disconnecting_the_bot_ends_the_voice_guide(
    fake: FakeDiscord, bot: MassageBot, rooms: tuple[Channel, Channel], clock: Any, moved: bool
) -> None:
    await fake.join_voice(fake.user("alice"), rooms[0])
    await start_aloud(fake)
    voice = await voice_of(fake, bot)
    await voice.pieces_done(2)
    since = len(fake.voice_requests)
    if moved:
        await fake.join_voice(fake.bot, rooms[1])
        assert (await fake.wait_for_voice_request(since=since)).leaving  # it leaves the stage
    else:
        await fake.leave_voice(fake.bot)
        await voice.until(lambda: not voice.connected)
        assert leaving(fake, since) == []  # already out: nothing to ask
    await no_voice_guides(bot)
    clock.advance(STEP_SECONDS)
    bot.wake_timer()  # step 2 comes, in text only
    assert await quiet(voice) == 2
    assert session_of(fake, bot).step_index == 1


async def test_one_voice_channel_per_server(
    fake: FakeDiscord, bot: MassageBot, rooms: tuple[Channel, Channel]
) -> None:
    await fake.join_voice(fake.user("alice"), rooms[0])
    await fake.join_voice(fake.user("carol"), rooms[1])
    await start_aloud(fake)
    await voice_of(fake, bot)
    refused = await start_aloud(fake, "carol")
    assert "in one voice channel per server" in ephemeral_text(refused)
    assert len(fake.voice_requests) == 1 and len(bot.engine.active_sessions()) == 1


async def test_the_bot_needs_connect_and_speak(
    fake: FakeDiscord, bot: MassageBot, room: Channel
) -> None:
    await fake.set_permissions(room, fake.bot, deny=discord.Permissions(connect=True, speak=True))
    await fake.join_voice(fake.user("alice"), room)
    refused = await start_aloud(fake)
    assert ephemeral_text(refused) == (
        f"To speak in <#{room.id}> I need the Connect and Speak permissions there."
    )
    assert fake.voice_requests == []


async def test_a_full_channel_is_said_so(
    fake: FakeDiscord, rooms: tuple[Channel, Channel], make_bot: Any
) -> None:
    small = fake.add_channel(fake.guild("Wellness"), "Duo", type=GUILD_VOICE, user_limit=2)
    await fake.join_voice(fake.user("alice"), small)
    await fake.join_voice(fake.user("bob"), small)
    async with fake.run(make_bot(voice_client_class=RecordingVoice)):
        refused = await start_aloud(fake)
        assert ephemeral_text(refused) == f"<#{small.id}> is full, so I can't join it to speak."
        assert fake.voice_requests == []


async def test_on_a_stage_the_bot_becomes_a_speaker_or_asks_to(
    fake: FakeDiscord, bot: MassageBot, rooms: tuple[Channel, Channel]
) -> None:
    stage, wellness = rooms[1], fake.guild("Wellness")
    await fake.set_permissions(stage, fake.bot, allow=discord.Permissions(request_to_speak=True))
    await fake.join_voice(fake.user("alice"), stage)
    asked = await start_aloud(fake)
    voice = await voice_of(fake, bot)
    assert "a stage moderator needs to invite me up" in await private_followup(asked)
    state = wellness.voice_states[fake.bot.id]
    assert state.suppress and state.request_to_speak_timestamp is not None
    await voice.pieces_done(2)  # it speaks, for when it is invited up

    await slash(fake, fake.user("alice"), wellness.channel("general"), "massage", "stop")
    await voice.until(lambda: not voice.connected)
    await fake.set_permissions(stage, fake.bot, allow=MUTE_MEMBERS)  # a stage moderator
    stepped_up = await start_aloud(fake)
    await voice_of(fake, bot)
    await eventually(lambda: not wellness.voice_states[fake.bot.id].suppress, "a speaker")
    assert stepped_up.followups == []  # nothing to tell


async def test_a_restarted_bot_rejoins_and_says_where_the_session_is(
    fake: FakeDiscord, rooms: tuple[Channel, Channel], make_bot: Any, clock: Any
) -> None:
    room = rooms[0]
    await fake.join_voice(fake.user("alice"), room)
    first = make_bot(voice_client_class=RecordingVoice)
    async with fake.run(first):
        await start_aloud(fake)
        await (await voice_of(fake, first)).pieces_done(2)
        session_id = session_of(fake, first).id
    assert fake.voice_requests[-1].leaving  # discord.py leaves voice as it closes
    clock.advance(STEP_SECONDS + 20)  # down for a while: step 2 by now
    since = len(fake.voice_requests)
    restarted = make_bot(voice_client_class=RecordingVoice)
    async with fake.run(restarted):
        rejoined = await fake.wait_for_voice_request(since=since)
        assert (rejoined.channel_id, rejoined.answered) == (room.id, True)
        voice = await voice_of(fake, restarted)
        step_2 = announcement(restarted.engine.get(session_id))  # type: ignore[arg-type]
        assert step_2.startswith("Step 2 of 4")
        assert await said(restarted, voice, 2, step_2) == ["chime", step_2]
        assert restarted.store is not None
        assert await restarted.store.voice_guides() == {session_id: str(room.id)}


async def test_a_restarted_bot_forgets_a_channel_nobody_is_in(
    fake: FakeDiscord, rooms: tuple[Channel, Channel], make_bot: Any
) -> None:
    alice = fake.user("alice")
    await fake.join_voice(alice, rooms[0])
    first = make_bot(voice_client_class=RecordingVoice)
    async with fake.run(first):
        await start_aloud(fake)
        await (await voice_of(fake, first)).pieces_done(2)
    await fake.leave_voice(alice)  # while the bot was down
    since = len(fake.voice_requests)
    restarted = make_bot(voice_client_class=RecordingVoice)
    async with fake.run(restarted):
        await no_voice_guides(restarted)
        assert fake.voice_requests[since:] == []
        assert session_of(fake, restarted).state == "running"


async def test_without_espeak_the_chime_still_plays_and_the_session_goes_on(
    fake: FakeDiscord, bot: MassageBot, room: Channel, clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def broken(text: str, voice: str = "en") -> bytes:
        raise speech.SpeechUnavailable("espeak-ng is not installed (Debian: apt install espeak-ng)")

    monkeypatch.setattr(speech, "speak", broken)
    await fake.join_voice(fake.user("alice"), room)
    await start_aloud(fake)
    voice = await voice_of(fake, bot)
    assert await said(bot, voice, 1) == ["chime"]
    clock.advance(STEP_SECONDS)
    bot.wake_timer()
    assert await said(bot, voice, 2) == ["chime", "chime"]
    assert session_of(fake, bot).step_index == 1


async def test_the_audio_played_encodes_to_opus(
    fake: FakeDiscord, bot: MassageBot, room: Channel
) -> None:
    require(discord.opus.is_loaded() or discord.opus._load_default(), "libopus",
            "apt install libopus0")  # fmt: skip
    await fake.join_voice(fake.user("alice"), room)
    await start_aloud(fake)
    voice = await voice_of(fake, bot)
    encoder = discord.opus.Encoder()
    for piece in await voice.pieces_done(2):
        assert all(len(frame) == encoder.FRAME_SIZE for frame in piece.frames)
        packets = [encoder.encode(frame, encoder.SAMPLES_PER_FRAME) for frame in piece.frames]
        assert all(0 < len(packet) < 1275 for packet in packets)
