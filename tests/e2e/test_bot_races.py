"""Random presses from both people of a session, with responses that reach Discord late
and in any order, while the timer moves steps on: at the end, the session message always
shows what the store holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.client import MassageBot
from tests.e2e.fake_discord import FakeDiscord, Interaction, Message
from tests.e2e.massage_world import press, settled, slash, text_of

STEP_SECONDS = 150
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"
MESSAGE = "/channels/{channel_id}/messages/{message_id}"
BUTTONS = ("Next", "Back", "Pause", "More pressure", "Less pressure", "Stop")

Press = tuple[str, str, float, bool, bool]  # who, button, response delay, timer, edit fails
PRESSES = st.tuples(
    st.sampled_from(["alice", "bob"]),
    st.sampled_from(BUTTONS),
    st.sampled_from([0.0, 0.0, 0.02, 0.1]),
    st.booleans(),
    st.sampled_from([False, False, False, True]),
)


@pytest.fixture
async def racing_bot(fake: FakeDiscord, make_bot: Any) -> AsyncIterator[MassageBot]:
    """A bot whose cooldown lets a burst of presses through and whose edits retry fast."""
    massage_bot = make_bot(cooldown=(1000, 1.0), retry_delays=(0.02, 0.05, 0.1, 0.2))
    async with fake.run(massage_bot):
        yield massage_bot


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=st.lists(PRESSES, min_size=2, max_size=10))
@example(plan=[*[("alice", "Next", 0.0, True, False)] * 3, ("bob", "More pressure", 0, True, True)])
@example(plan=[("alice", "Next", 0.1, False, False), ("bob", "Stop", 0.0, False, False)])
async def test_random_presses_end_with_the_message_showing_the_store(
    fake: FakeDiscord, racing_bot: MassageBot, clock: Any, plan: list[Press]
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    channel = fake.guild("Wellness").channel("general")
    started = await slash(fake, alice, channel, "massage", "start", routine="tiny", partner=bob)
    message = started.original
    assert message is not None and not message.ephemeral, text_of(message)
    await press(fake, bob, message, "Accept")
    try:
        await play(fake, racing_bot, clock, message, plan)
    finally:  # end the session, for the next example's start
        view = racing_bot.engine.find(str(channel.id), str(alice.id))
        if view is not None:
            await racing_bot.engine.stop(view.id, str(alice.id))
    await settled(fake, racing_bot)


async def play(
    fake: FakeDiscord, bot: MassageBot, clock: Any, message: Message, plan: list[Press]
) -> None:
    """Press as planned without waiting for answers, then check message against store."""
    pending: list[Interaction] = []
    for who, button, delay, tick, edit_fails in plan:
        labels = {b.get("label") for b in message.buttons}
        label = "Resume" if button == "Pause" and "Resume" in labels else button
        if label not in labels:
            continue  # ended: the message has no buttons any more
        if delay:
            fake.delay("POST", CALLBACK, delay)
        if edit_fails:
            fake.fail("PATCH", MESSAGE, 503)
        pending.append(await fake.press(fake.user(who), message, label))
        if tick:
            clock.advance(STEP_SECONDS)
            bot.wake_timer()
        await asyncio.sleep(0.005)
    for interaction in pending:
        with contextlib.suppress(TimeoutError):  # a press may have been refused: no matter
            await interaction.response()
    fake.clear_faults()
    await settled(fake, bot)
