"""The session message always shows the truth, whatever Discord does: failed edits, failed
responses, responses that land out of order, deleted messages and channels, missing
permissions, and forged presses. Each fault is made to happen by the fake Discord; every
test ends by comparing each session message with the store (`settled`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.client import MassageBot
from tests.e2e.fake_discord import Channel, FakeDiscord, Message, User, hurry_retries
from tests.e2e.massage_world import crowd, ephemeral_text, press, settled, slash, text_of

STEP_SECONDS = 150
MESSAGE = "/channels/{channel_id}/messages/{message_id}"
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"
QUICK = {"retry_delays": (0.05, 0.1, 0.2)}


@pytest.fixture
async def bot(fake: FakeDiscord, make_bot: Any) -> Any:
    massage_bot = make_bot(**QUICK)
    async with fake.run(massage_bot):
        yield massage_bot


def dms_to(fake: FakeDiscord, user: User) -> list[Message]:
    channel = fake.dm_channel(user)
    return [m for m in fake.messages.values() if m.channel is channel]


async def partner_session(fake: FakeDiscord, channel: Channel) -> Message:
    alice, bob = fake.user("alice"), fake.user("bob")
    started = await slash(fake, alice, channel, "massage", "start", routine="tiny", partner=bob)
    assert started.original is not None
    await press(fake, bob, started.original, "Accept")
    return started.original


def general(fake: FakeDiscord) -> Channel:
    return fake.guild("Wellness").channel("general")


# 1. A failed edit is retried until the newest version shows ---------------------------


@pytest.mark.parametrize("command", ["stop", "pause"])
async def test_a_503_on_the_edit_after_a_command_is_retried(
    fake: FakeDiscord, bot: MassageBot, command: str
) -> None:
    message = await partner_session(fake, general(fake))
    fault = fake.fail("PATCH", MESSAGE, 503, times=2)
    await slash(fake, fake.user("alice"), general(fake), "massage", command)
    await settled(fake, bot)
    assert fault.fired == 2
    assert ("Session stopped" if command == "stop" else "Paused with") in text_of(message)


async def test_a_503_on_the_timers_move_to_the_last_step_is_retried(
    fake: FakeDiscord, bot: MassageBot, clock: Any
) -> None:
    message = await partner_session(fake, general(fake))
    fault = fake.fail("PATCH", MESSAGE, 503, times=1)
    clock.advance(3 * STEP_SECONDS)  # on to the last step, while Discord fails once
    bot.wake_timer()
    await fault.wait()
    await settled(fake, bot)
    assert "step 4 of 4" in text_of(message)


async def test_a_later_version_replaces_a_pending_one(
    fake: FakeDiscord, bot: MassageBot, clock: Any
) -> None:
    message = await partner_session(fake, general(fake))
    fault = fake.fail("PATCH", MESSAGE, 500, times=None)  # down for a while
    for _ in range(3):
        clock.advance(STEP_SECONDS)
        bot.wake_timer()
        await fault.wait(fault.fired + 1)
    fault.remove()
    await settled(fake, bot)
    assert "step 4 of 4" in text_of(message)


# 2. Saved, then the response failed ----------------------------------------------------


@pytest.mark.parametrize("how", ["503", "too late"])
async def test_a_press_whose_response_failed_still_shows(
    fake: FakeDiscord, bot: MassageBot, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = await partner_session(fake, general(fake))
    hurry_retries(monkeypatch)
    if how == "503":  # every try (discord.py retries a callback's 5xx itself)
        fault = fake.fail("POST", CALLBACK, 503, times=None)
    else:
        fault = fake.callback_too_late(0.0)
    await fake.press(fake.user("alice"), message, "Next")
    await fault.wait()  # refused by Discord: the press took effect all the same
    await settled(fake, bot)
    assert "step 2 of 4" in text_of(message)


@pytest.mark.parametrize("applied", [False, True])
async def test_a_start_whose_response_failed_still_gets_a_message(
    fake: FakeDiscord, bot: MassageBot, applied: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, channel = fake.user("alice"), general(fake)
    hurry_retries(monkeypatch)
    fake.fail("POST", CALLBACK, 503, applied=applied, times=None)
    await fake.slash(alice, channel, "massage", "start", routine="tiny")
    if applied:  # Discord made the message after all: it is found, not posted twice
        await fake.wait_for_call("GET", r"/webhooks/\d+/[^/]+/messages/@original")
    else:
        await fake.wait_for_call("POST", rf"/channels/{channel.id}/messages")
    fake.clear_faults()
    await settled(fake, bot)
    assert bot.store is not None
    (location,) = await bot.store.session_messages()
    shown = [m for m in fake.messages.values()
             if m.channel is channel and "step 1 of 4" in text_of(m)]  # fmt: skip
    assert [m.id for m in shown] == [int(location.message_id)]  # one message, no duplicate
    again = await slash(fake, alice, channel, "massage", "start", routine="tiny")
    assert f"/{channel.id}/{location.message_id}" in ephemeral_text(again)  # a link to it
    expected = "already been acknowledged" if applied else "the interaction has no response"
    assert fake.refusals and all(expected in str(r) for r in fake.refusals)  # provoked
    fake.refusals.clear()


async def test_starting_again_reposts_a_session_whose_message_is_gone(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, channel = fake.user("alice"), general(fake)
    started = await slash(fake, alice, channel, "massage", "start", routine="tiny")
    assert bot.store is not None and started.original is not None
    await bot.store.forget_session_message(bot.engine.find(str(channel.id), str(alice.id)).id)
    again = await slash(fake, alice, channel, "massage", "start", routine="tiny")
    assert again.original is not None and "step 1 of 4" in text_of(again.original)
    await settled(fake, bot)


# 3. Responses that reach Discord in the other order ------------------------------------


async def test_two_presses_answered_in_the_other_order(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    message = await partner_session(fake, general(fake))
    alice, bob = fake.user("alice"), fake.user("bob")
    first = fake.hold("POST", CALLBACK)
    pressed = await fake.press(alice, message, "Next")
    await first.wait()
    await press(fake, bob, message, "Pause")  # answered at once: paused at step 2
    first.release()  # the older response (step 2, running) lands last
    await pressed.response()
    await settled(fake, bot)
    assert "Paused with" in text_of(message)


async def test_stop_racing_next_leaves_no_live_buttons(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    message = await partner_session(fake, general(fake))
    alice, bob = fake.user("alice"), fake.user("bob")
    held = fake.hold("POST", CALLBACK)
    nexted = await fake.press(alice, message, "Next")
    await held.wait()
    await press(fake, bob, message, "Stop")
    held.release()
    await nexted.response()
    await settled(fake, bot)
    assert "Session stopped" in text_of(message) and message.buttons == []


async def test_a_press_answered_after_the_session_ended_is_corrected(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    channel = general(fake)
    message = await partner_session(fake, channel)
    held = fake.hold("POST", CALLBACK)
    nexted = await fake.press(fake.user("alice"), message, "Next")
    await held.wait()
    await slash(fake, fake.user("bob"), channel, "massage", "stop")  # shown by an edit
    held.release()  # the press's response, showing step 2, lands after the stop
    await nexted.response()
    await settled(fake, bot)
    assert "Session stopped" in text_of(message) and message.buttons == []


# 4. Next at the moment the timer moves on -----------------------------------------------


async def test_next_from_a_step_that_has_just_passed_is_not_applied_again(
    fake: FakeDiscord, bot: MassageBot, clock: Any
) -> None:
    message = await partner_session(fake, general(fake))
    stale_buttons = message.components  # Next on step 1
    clock.advance(STEP_SECONDS)
    bot.wake_timer()
    await settled(fake, bot)
    assert "step 2 of 4" in text_of(message)
    message.components = stale_buttons  # pressed on a client that still shows step 1
    await press(fake, fake.user("alice"), message, "Next")
    assert "step 2 of 4" in text_of(message)  # the current step, not step 3
    await settled(fake, bot)


# 5. Deleted message or channel, missing permissions ------------------------------------


async def test_a_deleted_session_message_is_posted_again(
    fake: FakeDiscord, bot: MassageBot, clock: Any
) -> None:
    channel = general(fake)
    message = await partner_session(fake, channel)
    await fake.delete_message(message)
    await settled(fake, bot)
    assert bot.store is not None
    (location,) = await bot.store.session_messages()
    assert int(location.message_id) != message.id
    clock.advance(STEP_SECONDS)
    bot.wake_timer()
    await settled(fake, bot)
    assert "step 2 of 4" in text_of(fake.messages[int(location.message_id)])


async def test_a_deleted_channel_ends_the_session_and_tells_the_host_once(
    fake: FakeDiscord, bot: MassageBot, clock: Any
) -> None:
    channel = general(fake)
    await partner_session(fake, channel)
    await fake.delete_channel(channel)
    clock.advance(STEP_SECONDS)
    bot.wake_timer()
    await fake.wait_for_call("POST", r"/channels/\d+/messages")
    for _ in range(3):
        clock.advance(STEP_SECONDS)
        bot.wake_timer()
    told = dms_to(fake, fake.user("alice"))
    assert len(told) == 1 and "was deleted, so I ended it" in told[0].content
    assert bot.engine.find(str(channel.id), str(fake.user("alice").id)) is None


async def test_missing_permissions_are_told_to_the_host_once(
    fake: FakeDiscord, bot: MassageBot, clock: Any
) -> None:
    channel = general(fake)
    message = await partner_session(fake, channel)
    await fake.set_permissions(channel, fake.bot, deny=1 << 10)  # View Channel
    for _ in range(2):
        clock.advance(STEP_SECONDS)
        bot.wake_timer()
        await fake.wait_for_call("PATCH", rf"/channels/{channel.id}/messages/{message.id}",
                                 since=len(fake.calls) - 1)  # fmt: skip
    await fake.wait_for_call("POST", r"/channels/\d+/messages")
    told = dms_to(fake, fake.user("alice"))
    assert len(told) == 1 and "View Channel" in told[0].content
    await fake.set_permissions(channel, fake.bot, allow=1 << 10)
    clock.advance(STEP_SECONDS)
    bot.wake_timer()
    await settled(fake, bot)  # the next change lands again
    assert len(dms_to(fake, fake.user("alice"))) == 1


# 6. Checks on the bot's side ------------------------------------------------------------


async def test_a_forged_join_of_a_personal_session_is_refused(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    message = await partner_session(fake, general(fake))
    session_id = bot.engine.find(str(general(fake).id), str(fake.user("alice").id)).id
    carol, real = fake.user("carol"), message.components
    for action, label in (("join", "Join"), ("accept", "Accept")):  # a hand-made message
        button = {"type": 2, "style": 2, "label": label,
                  "custom_id": f"massage:s:{session_id}:{action}"}  # fmt: skip
        message.components = [*message.components, {"type": 1, "components": [button]}]
    forged = await press(fake, carol, message, "Join")
    assert "Only group sessions" in ephemeral_text(forged)
    accept = await press(fake, carol, message, "Accept")
    assert "expired (or was answered)" in ephemeral_text(accept)
    message.components = real  # the forged buttons were only ever in carol's requests
    await settled(fake, bot)
    assert f"<@{carol.id}>" not in text_of(message)


async def test_controls_work_only_from_the_sessions_own_channel(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    sessions = fake.guild("Wellness").channel("sessions")
    started = await slash(fake, fake.user("alice"), sessions, "massage", "start", routine="tiny",
                          group=True)  # fmt: skip
    assert started.original is not None
    elsewhere = general(fake)
    joined = await press(fake, fake.user("carol"), started.original, "Join", channel=elsewhere)
    assert "only in its own channel" in ephemeral_text(joined)
    other_server = fake.guild("Retreat").channel("general")
    moved = await press(fake, fake.user("alice"), started.original, "Next", channel=other_server)
    assert "only in its own channel" in ephemeral_text(moved)
    await settled(fake, bot)
    assert "step 1 of 4" in text_of(started.original)


async def test_admin_commands_check_manage_server_themselves(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice = fake.user("alice")  # a member without Manage Server
    forged = await slash(fake, alice, general(fake), "massage-admin", "unanswered", forged=True)
    assert "Manage Server permission" in ephemeral_text(forged)
    in_dm = await slash(fake, alice, fake.dm_channel(alice), "massage-admin", "unanswered",
                        forged=True)  # fmt: skip
    assert "not in direct messages" in ephemeral_text(in_dm)
    curator = await slash(fake, fake.user("dana"), general(fake), "massage-admin", "unanswered")
    assert "No unanswered questions" in ephemeral_text(curator)


async def test_naming_a_partner_pings_only_them_and_makes_no_receiver_until_they_accept(
    fake: FakeDiscord, bot: MassageBot, clock: Any
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    channel = general(fake)
    started = await slash(fake, alice, channel, "massage", "start", routine="tiny", partner=bob)
    message = started.original
    assert message is not None and message.mentions == [bob]
    pressure = await press(fake, bob, message, "More pressure")  # not in yet: cannot ping alice
    assert "Only the people in this session" in ephemeral_text(pressure)
    clock.advance(301)  # the invitation runs out
    late = await press(fake, bob, message, "Accept")  # pressed before the timer woke
    assert "expired" in ephemeral_text(late)
    bot.wake_timer()
    await settled(fake, bot)
    assert "Accept" not in {b["label"] for b in message.buttons}


async def test_a_burst_of_5xx_does_not_push_the_bot_past_the_global_limit(
    fake: FakeDiscord, make_bot: Any, clock: Any
) -> None:
    people = crowd(fake, 90)
    bot = make_bot(cooldown=(1000, 1.0))
    async with fake.run(bot):
        general = fake.guild("Wellness").channel("general")
        await asyncio.gather(*(slash(fake, p, general, "massage", "start", routine="tiny")
                               for p in people))  # fmt: skip
        await settled(fake, bot)
        fake.global_rate_limit = 50  # Discord's
        fake.rate_limit_headers = True
        outage = fake.fail("PATCH", MESSAGE, 500, times=None)  # retried by discord.py itself
        clock.advance(150)  # every session moves on at once: 90 edits
        bot.wake_timer()
        await asyncio.sleep(0.6)
        outage.remove()
        await settled(fake, bot, timeout=60)
    assert fake.rate_limited == 0
