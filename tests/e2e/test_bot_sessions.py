"""Guided sessions on Discord: the live message, its buttons, the timer, and a restart.

The bot's clock is the tests' `FakeClock`: steps move on when the test moves the clock
and wakes the bot's timer, so no test waits for a step's real 150 seconds.
"""

from __future__ import annotations

from bot.client import MassageBot
from tests.e2e.fake_discord import Call, FakeDiscord, Message
from tests.e2e.massage_world import ephemeral_text, press, settled, slash, step_of, text_of

STEP_SECONDS = 150


async def edited(fake: FakeDiscord, message: Message, since: int) -> Call:
    """The bot's next edit of `message` through the channel (timer, commands, restarts)."""
    return await fake.wait_for_call(
        "PATCH", rf"/channels/{message.channel.id}/messages/{message.id}", since=since
    )


async def test_a_partner_session_from_start_to_stop(
    fake: FakeDiscord, bot: MassageBot, clock
) -> None:
    alice, bob, wellness = fake.user("alice"), fake.user("bob"), fake.guild("Wellness")
    general = wellness.channel("general")
    started = await slash(fake, alice, general, "massage", "start", routine="tiny", partner=bob)
    message = started.original
    assert message is not None and not message.ephemeral and step_of(message) == 1
    text = text_of(message)
    assert "Tiny test routine: Warm up" in text and "Rest both hands" in text
    due, ends = int(clock.now + STEP_SECONDS), int(clock.now + 4 * STEP_SECONDS)
    assert f"<t:{due}:R>" in text and f"<t:{ends}:t>" in text
    assert f"giver <@{alice.id}>" in text and f"receiver <@{bob.id}>" not in text  # asked only
    assert message.mentions == [bob]  # the invitation, and only it, pings
    assert "press Accept" in message.content
    refused = await press(fake, fake.user("carol"), message, "Accept")
    assert "for someone else" in ephemeral_text(refused)
    await press(fake, bob, message, "Accept")
    assert f"giver <@{alice.id}>, receiver <@{bob.id}>" in text_of(message)
    labels = [b["label"] for b in message.buttons]
    assert labels == ["Back", "Pause", "Next", "More pressure", "Less pressure", "Stop"]

    await press(fake, alice, message, "Next")
    assert step_of(message) == 2 and "left side" in text_of(message)
    await press(fake, bob, message, "Back")  # the receiver moves the session too
    assert step_of(message) == 1

    await press(fake, alice, message, "Pause")
    assert "Paused with 2:30 left" in text_of(message) and message.button("Resume")
    clock.advance(1000)  # a paused step waits
    bot.wake_timer()
    await press(fake, alice, message, "Resume")
    assert step_of(message) == 1 and message.button("Pause")

    more = await press(fake, bob, message, "More pressure")  # the receiver asks
    advice = more.original
    assert advice is not None and not advice.ephemeral
    assert advice.content.startswith(f"<@{alice.id}> Bob would like more pressure")
    assert advice.mentions == [fake.user("alice")]  # the giver, and only the giver
    allowed = more.callback.result().json["data"]["allowed_mentions"]
    assert [str(u) for u in allowed["users"]] == [str(alice.id)] and allowed["parse"] == []
    assert "Lean in a little" in text_of(advice)
    less = await press(fake, alice, message, "Less pressure")  # the giver: advice in private
    assert "Let your hands rest more lightly" in ephemeral_text(less)

    start = len(fake.calls)
    clock.advance(STEP_SECONDS)  # the step's time is up: the timer moves on by itself
    bot.wake_timer()
    await edited(fake, message, start)
    assert step_of(message) == 2 and "Left side fist" in text_of(message)
    start = len(fake.calls)
    clock.advance(STEP_SECONDS)
    bot.wake_timer()
    await edited(fake, message, start)
    assert step_of(message) == 3 and "Now the other side" in text_of(message)

    stopped = await press(fake, bob, message, "Stop")
    assert stopped.callback.result().json["type"] == 7
    summary = text_of(message)
    assert "Session stopped" in summary and "Steps done: 2 of 4" in summary
    assert "Try the same routine" in summary and message.buttons == []


async def test_session_commands_edit_the_live_message(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    nothing = await slash(fake, alice, general, "massage", "next")
    assert "You have no session in this channel" in ephemeral_text(nothing)
    started = await slash(fake, alice, general, "massage", "start", routine="tiny")
    message = started.original
    assert message is not None
    again = await slash(fake, alice, general, "massage", "start", routine="tiny")
    assert "You already have a session here" in ephemeral_text(again)
    for command, shown in (("next", 2), ("next", 3), ("back", 2)):
        start = len(fake.calls)
        done = await slash(fake, alice, general, "massage", command)
        assert f"step {shown} of 4" in ephemeral_text(done)
        await edited(fake, message, start)
        assert step_of(message) == shown
    start = len(fake.calls)
    await slash(fake, alice, general, "massage", "pause")
    await edited(fake, message, start)
    assert "Paused" in text_of(message)
    not_paused = await slash(fake, alice, general, "massage", "pause")
    assert "already paused" in ephemeral_text(not_paused)
    start = len(fake.calls)
    await slash(fake, alice, general, "massage", "resume")
    await edited(fake, message, start)
    start = len(fake.calls)
    await slash(fake, alice, general, "massage", "stop")
    await edited(fake, message, start)
    assert "Session stopped" in text_of(message) and message.buttons == []
    gone = await fake.press(alice, message, "massage:s:0:next", must_exist=False)
    assert not gone.callback.done()  # no such button on the message: ignored


async def test_a_red_flag_in_a_session_pauses_it(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, bob, general = (
        fake.user("alice"),
        fake.user("bob"),
        fake.guild("Retreat").channel("general"),
    )
    started = await slash(fake, alice, general, "massage", "start", routine="tiny", partner=bob)
    message = started.original
    assert message is not None
    await press(fake, bob, message, "Accept")
    start = len(fake.calls)
    await fake.send_message(bob, general, f"{fake.bot.mention} my arm is going numb")
    reply = await fake.wait_for_call("POST", rf"/channels/{general.id}/messages", since=start)
    assert "Stop the massage" in reply.json["embeds"][0]["description"]
    assert "I paused your session" in str(reply.json["embeds"][0]["fields"])
    await edited(fake, message, start)
    assert "Paused" in text_of(message) and message.button("Resume")
    advice = await slash(fake, bob, general, "massage", "ask", question="more pressure please")
    assert advice.original is not None  # asked inside the session: this step's advice
    assert "Lean in a little" in text_of(advice.original)


async def test_a_group_session(fake: FakeDiscord, bot: MassageBot) -> None:
    wellness = fake.guild("Wellness")
    alice, bob, carol, dana = (fake.user(n) for n in ("alice", "bob", "carol", "dana"))
    sessions = wellness.channel("sessions")
    started = await slash(fake, alice, sessions, "massage", "start", routine="tiny", group=True)
    message = started.original
    assert message is not None and message.button("Join") and message.button("Leave")
    assert "Host <@" in text_of(message) and "1 of 10 in the group" in text_of(message)

    stranger = await press(fake, carol, message, "Next")
    assert "Only the people in this session" in ephemeral_text(stranger)
    assert step_of(message) == 1
    stranger_pressure = await press(fake, carol, message, "More pressure")
    assert "Only the people in this session" in ephemeral_text(stranger_pressure)

    for user in (bob, carol):
        joined = await press(fake, user, message, "Join")
        assert "You joined Tiny test routine" in ephemeral_text(joined)  # privately
    await settled(fake, bot)  # the message follows by an edit
    assert "3 of 10 in the group" in text_of(message) and f"<@{carol.id}>" in text_of(message)
    twice = await press(fake, bob, message, "Join")
    assert "already in this session" in ephemeral_text(twice)

    not_host = await press(fake, bob, message, "Next")
    assert "Only the host" in ephemeral_text(not_host) and step_of(message) == 1
    await press(fake, alice, message, "Next")
    assert step_of(message) == 2
    advice = await press(fake, carol, message, "More pressure")
    assert "Slow down and use the finger joints" in ephemeral_text(advice)

    left = await press(fake, carol, message, "Leave")
    assert "You left" in ephemeral_text(left)
    await settled(fake, bot)
    assert "2 of 10 in the group" in text_of(message)
    await press(fake, alice, message, "Leave")  # the host leaves: bob takes over
    await settled(fake, bot)
    assert f"Host <@{bob.id}>" in text_of(message)
    await press(fake, bob, message, "Next")
    assert step_of(message) == 3
    outsider = await slash(fake, dana, sessions, "massage", "stop")
    assert "You have no session in this channel" in ephemeral_text(outsider)
    last = await press(fake, bob, message, "Leave")  # the last one out ends it
    assert "the session has ended" in ephemeral_text(last)
    await settled(fake, bot)
    assert "Session stopped" in text_of(message)


async def test_partner_and_group_mistakes_are_explained(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, bob, general = (
        fake.user("alice"),
        fake.user("bob"),
        fake.guild("Wellness").channel("general"),
    )
    both = await slash(
        fake, alice, general, "massage", "start", routine="tiny", partner=bob, group=True
    )
    assert "not both" in ephemeral_text(both)
    myself = await slash(fake, alice, general, "massage", "start", routine="tiny", partner=alice)
    assert "choose someone else" in ephemeral_text(myself)
    await slash(fake, bob, general, "massage", "start", routine="tiny")
    busy = await slash(fake, alice, general, "massage", "start", routine="tiny", partner=bob)
    assert "Bob already has a session" in ephemeral_text(busy)
    unknown = await slash(fake, alice, general, "massage", "start", routine="yoga")
    assert "There is no routine 'yoga'" in ephemeral_text(unknown)
    dm = await slash(
        fake, alice, fake.dm_channel(alice), "massage", "start", routine="tiny", group=True
    )
    assert "take place in a server channel" in ephemeral_text(dm)


async def test_a_restart_mid_session(fake: FakeDiscord, make_bot, clock) -> None:
    alice, bob, general = (
        fake.user("alice"),
        fake.user("bob"),
        fake.guild("Wellness").channel("general"),
    )
    async with fake.run(make_bot()):
        started = await slash(fake, alice, general, "massage", "start", routine="tiny", partner=bob)
        message = started.original
        assert message is not None
        await press(fake, bob, message, "Accept")
        await press(fake, alice, message, "Next")
        assert step_of(message) == 2
    clock.advance(STEP_SECONDS + 5)  # step 2's time ran out while the bot was down
    start = len(fake.calls)
    restarted = make_bot()
    async with fake.run(restarted):
        await edited(fake, message, start)  # the restored session shows where it is now
        assert step_of(message) == 3
        await press(fake, bob, message, "Next")  # a button from before the restart
        assert step_of(message) == 4
        view = restarted.engine.find(str(general.id), str(alice.id))
        assert view is not None and view.step_index == 3
        stranger = await press(fake, fake.user("carol"), message, "Next")
        assert "Only the people in this session" in ephemeral_text(stranger)
        await press(fake, alice, message, "Next")
        assert "Routine complete" in text_of(message)
        ended = await fake.press(alice, message, "massage:s:" + view.id + ":next", must_exist=False)
        assert not ended.callback.done()  # the summary has no buttons: nothing to press


async def test_pressing_an_ended_sessions_old_button(fake: FakeDiscord, bot: MassageBot) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    started = await slash(fake, alice, general, "massage", "start", routine="tiny")
    message = started.original
    assert message is not None
    old_buttons, start = message.components, len(fake.calls)
    await slash(fake, alice, general, "massage", "stop")
    await edited(fake, message, start)
    message.components = old_buttons  # as a client that has not seen the edit yet
    late = await press(fake, alice, message, "Next")
    assert "That session has ended" in ephemeral_text(late)


async def test_a_direct_message_is_answered_in_the_sessions_context(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    general, dm = fake.guild("Wellness").channel("general"), fake.dm_channel(bob)
    started = await slash(fake, alice, general, "massage", "start", routine="tiny", partner=bob)
    message = started.original
    assert message is not None
    await press(fake, bob, message, "Accept")
    await fake.send_message(bob, dm, "more pressure please")
    reply = await fake.wait_for_call("POST", rf"/channels/{dm.id}/messages")
    assert "Lean in a little" in reply.json["embeds"][0]["description"]  # step 1's advice
    start = len(fake.calls)
    await fake.send_message(bob, dm, "my arm is numb")
    await edited(fake, message, start)
    assert "Paused" in text_of(message)
