"""Scheduled classes through the fake Discord: the server's scheduled event, the people
interested told once when it opens, late and missed classes, cancelling (by command, or
by deleting the event), and a class of many people."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import discord
import pytest

from bot.classes import CLASS_PARTICIPANT_LIMIT
from bot.client import UNSEEN_CHANNEL, MassageBot
from bot.guide import announcement
from cogs.live import EDIT_GAP_SECONDS
from cogs.render import PEOPLE_SHOWN
from tests.conftest import FakeClock
from tests.e2e.fake_discord import (
    CREATE_EVENTS,
    EVENT_ACTIVE,
    EVENT_CANCELED,
    EVENT_COMPLETED,
    EVENT_SCHEDULED,
    EXTERNAL,
    GUILD_VOICE,
    VOICE,
    Call,
    FakeDiscord,
    Message,
    ScheduledEvent,
)
from tests.e2e.massage_world import crowd, ephemeral_text, press, settled, slash, text_of
from tests.e2e.recording_voice import RecordingVoice

HOUR = 3600.0


@pytest.fixture
def clock() -> FakeClock:
    """Discord refuses events that start in the past: the tests' clock starts now."""
    return FakeClock(time.time())


@pytest.fixture(autouse=True)
def bot_may_create_events(fake: FakeDiscord) -> None:
    for name in ("Wellness", "Retreat"):
        guild = fake.guild(name)
        guild.role(fake.bot.name).permissions |= CREATE_EVENTS


def when(moment: float) -> dict[str, str]:
    """The day and time options for a class at `moment` (UTC, to the minute)."""
    at = dt.datetime.fromtimestamp(moment, dt.UTC)
    return {"day": f"{at:%Y-%m-%d}", "time": f"{at:%H:%M}", "zone": "UTC"}


def minute_of(moment: float) -> float:
    return moment - moment % 60


async def schedule(fake: FakeDiscord, user_name: str, moment: float, **options: Any) -> str:
    """Schedule a `tiny` class in Wellness's general channel; the private answer."""
    general = fake.guild("Wellness").channel("general")
    asked = await fake.slash(fake.user(user_name), general, "massage", "class", "schedule",
                             routine="tiny", **when(moment), **options)  # fmt: skip
    await asked.response()
    if asked.original is not None and asked.original.loading:
        await fake.wait_for_call("POST", rf"/webhooks/\d+/{asked.token}")
    answers = [asked.original, *asked.followups] if asked.original else asked.followups
    return text_of(answers[-1])


def the_event(fake: FakeDiscord) -> ScheduledEvent:
    (event,) = fake.scheduled_events(fake.guild("Wellness"))
    return event


async def until(check: Any, what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def posts_in(fake: FakeDiscord, channel_name: str, words: str) -> list[Message]:
    channel = fake.guild("Wellness").channel(channel_name)
    return [m for m in fake.messages.values()
            if m.channel is channel and words in m.content and not m.deleted]  # fmt: skip


async def opening_told(fake: FakeDiscord, bot: MassageBot, clock: FakeClock, at: float) -> Call:
    """Move the clock to `at` and wait for the message saying a class is starting."""
    start = len(fake.calls)
    clock.now = at
    bot.wake_timer()
    return await fake.wait_for_call(
        "POST", r"/channels/\d+/messages", since=start,
        where=lambda c: "is starting now" in (c.json.get("content") or ""),
    )  # fmt: skip


async def test_a_class_from_schedule_to_the_end(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    alice, bob, dana = fake.user("alice"), fake.user("bob"), fake.user("dana")
    general = fake.guild("Wellness").channel("general")
    starts = minute_of(clock() + HOUR)
    refused = await schedule(fake, "alice", starts)
    assert "Create Events permission" in refused and fake.scheduled_events(
        fake.guild("Wellness")
    ) == []
    too_soon = await schedule(fake, "dana", clock() - 120)
    assert "has passed" in too_soon

    made = await schedule(fake, "dana", starts)
    assert "Class scheduled" in made and f"<t:{int(starts)}:F>" in made
    event = the_event(fake)
    assert (event.name, event.entity_type, event.status) == (
        "Massage class: Tiny test routine", EXTERNAL, EVENT_SCHEDULED,
    )  # fmt: skip
    assert event.start.timestamp() == starts and event.location == "#general"
    listed = await slash(fake, alice, general, "massage", "class", "list")
    assert "Tiny test routine" in ephemeral_text(listed)
    assert f"led by <@{dana.id}>" in ephemeral_text(listed)
    for user in (alice, bob):
        await fake.mark_interested(event, user)

    told = await opening_told(fake, bot, clock, starts + 5)
    content = told.json["content"]
    assert f"<@{alice.id}>" in content and f"<@{bob.id}>" in content and "late" not in content
    assert set(map(int, told.json["allowed_mentions"]["users"])) == {alice.id, bob.id}
    assert "@everyone" not in content and not told.json["allowed_mentions"].get("parse")
    await until(lambda: event.status == EVENT_ACTIVE, "the event started")
    await settled(fake, bot)
    (session,) = bot.engine.active_sessions()
    assert session.host == str(dana.id) and session.participant_limit == CLASS_PARTICIPANT_LIMIT

    message = fake.messages[int((await bot.store.session_message(session.id)).message_id)]
    joined = await press(fake, alice, message, "Join")
    assert "You joined" in ephemeral_text(joined)
    await settled(fake, bot)
    assert f"2 of {CLASS_PARTICIPANT_LIMIT} in the group" in text_of(message)
    bot.wake_timer()
    await asyncio.sleep(0.1)
    assert len(posts_in(fake, "general", "is starting now")) == 1  # told once

    await press(fake, dana, message, "Stop")
    await until(lambda: event.status == EVENT_COMPLETED, "the event ended with the class")


async def test_cancelling_a_class_cancels_its_event(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    carol, dana = fake.user("carol"), fake.user("dana")
    general = fake.guild("Wellness").channel("general")
    await schedule(fake, "dana", minute_of(clock() + HOUR))
    event = the_event(fake)
    choices = await fake.autocomplete(dana, general, "massage", "class", "cancel", **{"class": ""})
    (choice,) = choices
    assert "Tiny test routine" in choice["name"]
    not_hers = await slash(fake, carol, general, "massage", "class", "cancel",
                           **{"class": choice["value"]})  # fmt: skip
    assert "Only the class's host" in ephemeral_text(not_hers)
    cancelled = await slash(fake, dana, general, "massage", "class", "cancel",
                            **{"class": choice["value"]})  # fmt: skip
    assert "Cancelled" in ephemeral_text(cancelled)
    await until(lambda: event.status == EVENT_CANCELED, "the event cancelled")
    again = await slash(fake, dana, general, "massage", "class", "cancel",
                        **{"class": choice["value"]})  # fmt: skip
    assert "no such class" in ephemeral_text(again)
    listed = await slash(fake, dana, general, "massage", "class", "list")
    assert "No classes scheduled" in ephemeral_text(listed)


async def test_a_host_who_is_forgotten_has_their_classes_cancelled(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    dana, general = fake.user("dana"), fake.guild("Wellness").channel("general")
    await schedule(fake, "dana", minute_of(clock() + HOUR))
    event = the_event(fake)
    asked = await slash(fake, dana, general, "massage", "forget-me")
    assert asked.original is not None
    await press(fake, dana, asked.original, "Forget me")
    assert "The class you were to host is cancelled" in text_of(asked.original)
    await until(lambda: event.status == EVENT_CANCELED, "the event cancelled")
    listed = await slash(fake, dana, general, "massage", "class", "list")
    assert "No classes scheduled" in ephemeral_text(listed)


async def test_an_event_deleted_or_moved_in_the_server(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    assert bot.store is not None
    await schedule(fake, "dana", minute_of(clock() + HOUR))
    moved_to = dt.datetime.fromtimestamp(minute_of(clock() + 2 * HOUR), dt.UTC)
    await fake.update_scheduled_event(
        the_event(fake), start=moved_to, end=moved_to + dt.timedelta(hours=1)
    )

    async def starts() -> float:
        (scheduled,) = await bot.store.classes(states=("scheduled", "cancelled"))
        return scheduled.starts_at

    deadline = asyncio.get_running_loop().time() + 5
    while await starts() != moved_to.timestamp():
        assert asyncio.get_running_loop().time() < deadline, "the class never moved"
        await asyncio.sleep(0.02)

    await fake.delete_scheduled_event(the_event(fake))
    while await bot.store.classes():
        assert asyncio.get_running_loop().time() < deadline + 5, "the class was not cancelled"
        await asyncio.sleep(0.02)
    clock.now = moved_to.timestamp() + 5
    bot.wake_timer()
    await asyncio.sleep(0.2)
    assert bot.engine.active_sessions() == []


async def test_classes_due_while_the_bot_was_down(
    fake: FakeDiscord, make_bot: Any, clock: FakeClock
) -> None:
    first = make_bot()
    async with fake.run(first):
        soon = minute_of(clock() + HOUR)
        await schedule(fake, "dana", soon)
        await schedule(fake, "dana", soon + 20 * 60, channel=fake.guild("Wellness").channel(
            "sessions"))  # fmt: skip
    clock.now = soon + 20 * 60 + 6 * 60  # the first is 26 minutes late, the second 6
    async with fake.run(make_bot()):
        await until(lambda: posts_in(fake, "general", "did not start"), "the missed one said")
        await until(lambda: posts_in(fake, "sessions", "is starting now"), "the late one opened")
    (missed,) = posts_in(fake, "general", "did not start")
    assert "I was offline until 26 minutes after it" in missed.content
    (late,) = posts_in(fake, "sessions", "is starting now")
    assert "6 minutes late" in late.content
    events = fake.scheduled_events(fake.guild("Wellness"))
    assert sorted(e.status for e in events) == [EVENT_ACTIVE, EVENT_CANCELED]


async def test_events_changed_while_the_bot_was_down(
    fake: FakeDiscord, make_bot: Any, clock: FakeClock
) -> None:
    wellness = fake.guild("Wellness")
    soon = minute_of(clock() + HOUR)
    first, second = make_bot(), make_bot()
    async with fake.run(first):
        for channel in ("general", "sessions"):
            await schedule(fake, "dana", soon, channel=wellness.channel(channel))
        await schedule(fake, "dana", soon + 60, channel=wellness.channel("general"))
        assert first.store is not None
        deleted, moved, started = sorted(await first.store.classes(), key=lambda c: c.starts_at)
    events = {e.id: e for e in fake.scheduled_events(wellness)}
    await fake.delete_scheduled_event(int(deleted.event_id or 0))
    later = dt.datetime.fromtimestamp(soon + 2 * HOUR, dt.UTC)
    await fake.update_scheduled_event(int(moved.event_id or 0), start=later,
                                      end=later + dt.timedelta(hours=1))  # fmt: skip
    await fake.update_scheduled_event(int(started.event_id or 0), status=EVENT_ACTIVE)
    clock.now = soon + 60 + 26 * 60  # the one Discord started is missed

    async with fake.run(second):
        assert second.store is not None
        await until(lambda: posts_in(fake, "general", "did not start"), "the missed one said")
        await settled(fake, second)
        states = {c.id: (c.state, c.starts_at) for c in await second.store.classes(
            states=("scheduled", "cancelled", "missed", "started"))}  # fmt: skip
    assert states[deleted.id][0] == "cancelled"
    assert states[moved.id] == ("scheduled", later.timestamp())
    assert states[started.id][0] == "missed"
    assert events[int(started.event_id or 0)].status == EVENT_COMPLETED  # ended, not left live
    assert posts_in(fake, "general", "is starting now") == []
    assert len(posts_in(fake, "general", "did not start")) == 1  # the deleted one says nothing


async def test_a_class_left_half_opened_by_a_crash_opens_after_the_restart(
    fake: FakeDiscord, make_bot: Any, clock: FakeClock
) -> None:
    first, second = make_bot(), make_bot()
    starts = minute_of(clock() + HOUR)
    async with fake.run(first):
        await schedule(fake, "dana", starts)
        assert first.store is not None
        (scheduled,) = await first.store.classes()
        # as if the process stopped after marking it started, before its session began
        await first.store.set_class_state(scheduled.id, "started", was="scheduled")
    clock.now = starts + 5
    async with fake.run(second):
        await until(lambda: posts_in(fake, "general", "is starting now"), "the class opened")
        (session,) = second.engine.active_sessions()
        assert second.store is not None
        assert (await second.store.class_by_id(scheduled.id)).session_id == session.id  # type: ignore[union-attr]


async def test_a_class_of_many_shows_a_count_not_a_list(
    fake: FakeDiscord, make_bot: Any, clock: FakeClock
) -> None:
    members = crowd(fake, 40)
    bot = make_bot(cooldown=(1000, 1.0), edit_gap=EDIT_GAP_SECONDS)
    async with fake.run(bot):
        starts = minute_of(clock() + HOUR)
        await schedule(fake, "dana", starts)
        for member in members:
            await fake.mark_interested(the_event(fake), member)
        clock.now = starts + 1
        bot.wake_timer()
        await until(lambda: posts_in(fake, "general", "is starting now"), "the class opened")
        await settled(fake, bot)
        (session,) = bot.engine.active_sessions()
        message = fake.messages[int((await bot.store.session_message(session.id)).message_id)]
        edits_before = len(fake.calls_to("PATCH", rf"/channels/\d+/messages/{message.id}"))
        presses = [await fake.press(member, message, "Join") for member in members]
        for pressed in presses:
            await pressed.response()
            assert "You joined" in ephemeral_text(pressed)
        await settled(fake, bot)
        edits = len(fake.calls_to("PATCH", rf"/channels/\d+/messages/{message.id}"))
        assert edits - edits_before <= 5  # 40 joins within a second or so: a few edits
        people = next(f for f in message.embeds[0]["fields"] if f["name"] == "People")
        assert f"41 of {CLASS_PARTICIPANT_LIMIT} in the group" in people["value"]
        assert people["value"].count("<@") == 1 + PEOPLE_SHOWN and len(people["value"]) <= 1024
    (told,) = posts_in(fake, "general", "is starting now")
    assert told.content.count("<@") == 1 + len(members)  # the host, then everyone interested


async def test_a_hundred_interested_are_told_in_one_message_that_fits(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    members = crowd(fake, 100)
    starts = minute_of(clock() + HOUR)
    await schedule(fake, "dana", starts)
    for member in members:
        await fake.mark_interested(the_event(fake), member)
    told = await opening_told(fake, bot, clock, starts + 1)
    content = told.json["content"]
    mentioned = set(map(int, told.json["allowed_mentions"]["users"]))
    assert len(content) <= 2000 and len(str(members[0].id)) >= 18  # real-size ids
    assert 50 < len(mentioned) < len(members) and mentioned <= {m.id for m in members}
    assert all(f"<@{person}>" in content for person in mentioned)
    assert content.endswith(f" and {len(members) - len(mentioned)} more who are interested")
    assert fake.refusals == []


async def test_a_class_in_a_voice_channel_the_bot_cannot_speak_in_says_so(
    fake: FakeDiscord, make_bot: Any, clock: FakeClock
) -> None:
    room = fake.add_channel(fake.guild("Wellness"), "Quiet room", type=GUILD_VOICE)
    async with fake.run(make_bot(voice_client_class=RecordingVoice)):
        await fake.set_permissions(room, fake.bot, deny=discord.Permissions(speak=True))
        made = await schedule(fake, "dana", minute_of(clock() + HOUR), voice=room)
    assert "Class scheduled" in made
    assert f"Before it starts: To speak in <#{room.id}> I need the Speak permission there." in made


async def test_a_voice_channel_the_bot_cannot_see_is_said_plainly(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    unseen = fake.add_channel(fake.guild("Wellness"), "Hidden room", type=GUILD_VOICE)  # after
    made = await schedule(fake, "dana", minute_of(clock() + HOUR), voice=unseen)  # login: unknown
    assert made == UNSEEN_CHANNEL
    assert fake.scheduled_events(fake.guild("Wellness")) == []


async def test_discord_refusing_the_event_schedules_nothing(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    fake.fail("POST", "/guilds/{guild_id}/scheduled-events", 503, times=None)
    made = await schedule(fake, "dana", minute_of(clock() + HOUR))
    assert made.startswith("Discord did not take the class's event just now")
    assert bot.store is not None and await bot.store.classes() == []


async def test_an_event_made_twice_by_a_retried_request_is_kept_once(
    fake: FakeDiscord, bot: MassageBot, clock: FakeClock
) -> None:
    fake.fail("POST", "/guilds/{guild_id}/scheduled-events", 500, applied=True)  # retried
    made = await schedule(fake, "dana", minute_of(clock() + HOUR))
    assert "Class scheduled" in made
    assert bot.store is not None
    (scheduled,) = await bot.store.classes()
    await until(lambda: len(fake.scheduled_events(fake.guild("Wellness"))) == 1, "one event")
    assert str(the_event(fake).id) == scheduled.event_id


def starting(call: Call) -> bool:
    return "is starting now" in ((call.json or {}).get("content") or "")


async def test_discord_failing_as_a_class_opens(
    fake: FakeDiscord, make_bot: Any, clock: FakeClock
) -> None:
    alice = fake.user("alice")
    starts = minute_of(clock() + HOUR)
    bot = make_bot(retry_delays=(0.02, 0.05, 0.1))
    async with fake.run(bot):
        await schedule(fake, "dana", starts)
        event = the_event(fake)
        await fake.mark_interested(event, alice)
        fake.fail("PATCH", "/guilds/{guild_id}/scheduled-events/{event_id}", 503, times=None)
        fake.fail("GET", "/guilds/{guild_id}/scheduled-events/{event_id}/users", 503, times=None)
        announced = fake.fail("POST", "/channels/{channel_id}/messages", 503, where=starting)
        told = await opening_told(fake, bot, clock, starts + 1)  # once Discord answers again
        assert "did not give me the whole list of those interested" in told.json["content"]
        assert announced.fired == 1 and event.status == EVENT_SCHEDULED  # its start failed
        fake.clear_faults()
        (session,) = bot.engine.active_sessions()
        await bot.engine.stop(session.id, session.host)
        await until(lambda: event.status == EVENT_CANCELED, "the event not left scheduled")


async def test_a_class_with_a_voice_channel_is_spoken_there(
    fake: FakeDiscord, make_bot: Any, clock: FakeClock
) -> None:
    room = fake.add_channel(fake.guild("Wellness"), "Quiet room", type=GUILD_VOICE)
    bot = make_bot(voice_client_class=RecordingVoice)
    async with fake.run(bot):
        starts = minute_of(clock() + HOUR)
        made = await schedule(fake, "dana", starts, voice=room)
        assert f"spoken in <#{room.id}>" in made and "Before it starts" not in made
        event = the_event(fake)
        assert (event.entity_type, event.channel) == (VOICE, room)
        clock.now = starts + 5
        bot.wake_timer()
        joined = await fake.wait_for_voice_request()
        assert joined.channel_id == room.id and not joined.leaving
        guild = bot.get_guild(fake.guild("Wellness").id)
        assert guild is not None
        await until(lambda: isinstance(guild.voice_client, RecordingVoice), "the bot in voice")
        voice = guild.voice_client
        assert isinstance(voice, RecordingVoice)
        (session,) = bot.engine.active_sessions()
        step_1 = await bot.voice_guides.speech.audio(announcement(session))
        pieces = await voice.pieces_done(2)
        assert pieces[1].same_audio(step_1)  # after the chime, the first step's words
        assert bot.store is not None
        assert await bot.store.voice_guides() == {session.id: str(room.id)}
