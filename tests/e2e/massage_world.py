"""What the massage bot's end-to-end tests share besides fixtures: the knowledge they add
to the tiny test knowledge base, and helpers to run commands, press buttons and read
messages."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bot.client import MassageBot
from cogs.render import PEOPLE_SHOWN
from tests.e2e.fake_discord import Channel, FakeDiscord, Interaction, Message, User

TECHNIQUES = """\
- id: thumb-circles
  title: Thumb circles
  questions: [small circles on a knot, how do I work a knot, circles with the thumbs, thumbs]
  answer: Press with the pads of both thumbs and draw small slow circles over the knot.
- id: finger-circles
  title: Finger circles
  questions: [small circles on a knot, how do I work a knot, circles with the fingers, fingers]
  answer: Press with the pads of three fingers and draw small slow circles over the knot.
"""
PRESSURE_FAQ = """\
- id: more-pressure
  title: More pressure
  questions: [more pressure, harder please, press harder, can you go deeper]
  answer: Lean your body weight in slowly rather than pushing with your thumbs.
"""
WARM_UP_LEAD = "Start with long, slow strokes over the whole back for a minute or two."
WARM_UP_FAQ = f"""\
- id: warm-up-first
  title: Warm up first
  questions: [how do i warm up the back, warming up before a massage, warm the muscles, warm up]
  answer: >
    {WARM_UP_LEAD}

    Spread a little oil with flat hands from the lower back up to the shoulders and down
    the sides, keeping contact all the time. Go a little firmer on each pass, and ask how
    it feels. Warm muscles soften, so the pressing and kneading later feels better and
    hurts less, and the receiver has time to settle and breathe out before you work on
    any knots. Two or three minutes is plenty; then move on to the first technique.
"""
MUSCLE_COUNT = 30  # more than autocomplete may offer
MUSCLE = """\
- id: muscle-{n:02d}
  title: Muscle number {n:02d} with a long name that fills the choice
  aliases: [m{n:02d}]
  questions: [where is muscle {n}, muscle {n} location, find muscle {n}, work muscle {n}]
  where: Somewhere on the back, number {n}.
  how: Work it gently with the flat of the hand.
"""
KNOT = "how do I work a knot"  # two techniques tie: a clarify


def crowd(fake: FakeDiscord, count: int, name: str = "member") -> list[User]:
    """`count` new members of Wellness, named `name0`, `name1`, ..."""
    wellness = fake.guild("Wellness")
    people = [fake.add_user(f"{name}{n}") for n in range(count)]
    for person in people:
        fake.add_member(wellness, person)
    return people


async def slash(
    fake: FakeDiscord, user: User, channel: Channel, /, *path: str, **options: Any
) -> Interaction:
    """Run `/massage ...` (or any command) and wait for the bot's acknowledgement."""
    interaction = await fake.slash(user, channel, *path, **options)
    await interaction.response()
    return interaction


async def press(
    fake: FakeDiscord, user: User, message: Message, button: str, **how: Any
) -> Interaction:
    """Press a button and wait for the bot's acknowledgement (`how`: see `FakeDiscord.press`)."""
    interaction = await fake.press(user, message, button, **how)
    await interaction.response()
    return interaction


def text_of(message: Message) -> str:
    """A message's content and embeds as one string, to look for words in."""
    parts = [message.content]
    for embed in message.embeds:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
        parts.append(embed.get("author", {}).get("name", ""))
    return "\n".join(parts)


def step_of(message: Message) -> int:
    """The step number a session message of the tiny routine shows."""
    found = re.search(r"step (\d+) of 4", text_of(message))
    assert found, text_of(message)
    return int(found[1])


def ephemeral_text(interaction: Interaction) -> str:
    """The private answer an interaction got."""
    assert interaction.original is not None and interaction.original.ephemeral, (
        "expected a private answer"
    )
    return text_of(interaction.original)


OUTCOMES = {"completed": "Routine complete", "stopped": "Session stopped", "abandoned": "an hour"}
STATE_WORDS = {"running": "Next step <t:", "paused": "Paused with", "time_up": "Time is up"}


async def wrong_messages(fake: FakeDiscord, bot: MassageBot) -> list[str]:
    """Every session without a message, and every session message that does not show its
    session as the store has it: its step, its state, who is in it and any invitation, or
    its summary once it has ended."""
    assert bot.store is not None
    locations = await bot.store.session_messages()
    shown = {location.session_id for location in locations}
    wrong = [f"session {view.id} has no message" for view in bot.engine.active_sessions()
             if view.id not in shown]  # fmt: skip
    for location in locations:
        update = await bot.engine.update_for(location.session_id)
        message = fake.messages.get(int(location.message_id))
        if update is None or update.session is None:
            continue
        if message is None or message.deleted:
            wrong.append(f"session {location.session_id}: its message is gone")
            continue
        text, labels = text_of(message), {b.get("label") for b in message.buttons}
        view = update.session
        if update.summary is not None:
            expected = [OUTCOMES[update.summary.outcome]]
            if labels:
                wrong.append(f"session {view.id} has ended but shows buttons {labels}")
        else:
            expected = [f"step {view.step_index + 1} of {view.step_count}"]
            expected += [f"<@{p.user_id}>" for p in view.participants[:PEOPLE_SHOWN]]
            if view.group:
                count = len(view.participants)
                expected.append(f"{count} of {view.participant_limit} in the group")
            expected.append(STATE_WORDS[view.state])
            if ("Resume" in labels) != (view.state == "paused"):
                wrong.append(f"session {view.id} is {view.state} but shows {labels}")
            if ("Accept" in labels) != (view.invited is not None):
                wrong.append(f"session {view.id}: invitation {view.invited} but shows {labels}")
        missing = [bit for bit in expected if bit not in text]
        if missing:
            wrong.append(f"session {view.id} ({view.state}, step {view.step_index + 1}): "
                         f"its message lacks {missing}")
    return wrong


async def settled(fake: FakeDiscord, bot: MassageBot, timeout: float = 10.0) -> None:
    """Wait until every session message shows its session as stored; fail saying which not."""
    deadline = asyncio.get_running_loop().time() + timeout
    while wrong := await wrong_messages(fake, bot):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("session messages that ended wrong:\n" + "\n".join(wrong))
        await asyncio.sleep(0.05)
