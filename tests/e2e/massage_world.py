"""Fixtures for the massage bot's end-to-end tests: a small knowledge base, a store file,
a clock that moves only when told to, and the bot logged in to the fake Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_discord import Channel, FakeDiscord, Interaction, Message, User

from bot.client import MassageBot
from bot.knowledge import load_knowledge
from bot.pictures import PICTURES_VARIABLE

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


@pytest.fixture
def bot_knowledge(knowledge_dir: Path) -> Path:
    """The tests' tiny knowledge (the `tiny` routine: 4 steps of 150 s, the second on the
    left side and the third on the right; a numbness red flag; an oil FAQ) plus a
    more-pressure FAQ, two techniques that tie and 30 muscles."""
    with (knowledge_dir / "faq.yaml").open("a", encoding="utf-8") as faq:
        faq.write(PRESSURE_FAQ)
    (knowledge_dir / "techniques.yaml").write_text(TECHNIQUES, encoding="utf-8")
    muscles = "".join(MUSCLE.format(n=n) for n in range(MUSCLE_COUNT))
    (knowledge_dir / "muscles.yaml").write_text(muscles, encoding="utf-8")
    return knowledge_dir


@pytest.fixture
def make_bot(
    bot_knowledge: Path, db_path: Path, clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A new bot process on the same store file and clock (call it again to restart),
    drawing its pictures into the test's own directory."""
    monkeypatch.setenv(PICTURES_VARIABLE, str(tmp_path / "pictures"))

    def make(**options: Any) -> MassageBot:
        return MassageBot(load_knowledge(bot_knowledge), db_path=db_path, clock=clock, **options)

    return make


@pytest.fixture
async def bot(fake: FakeDiscord, make_bot: Any) -> AsyncIterator[MassageBot]:
    massage_bot = make_bot()
    async with fake.run(massage_bot):
        yield massage_bot


async def slash(
    fake: FakeDiscord, user: User, channel: Channel, /, *path: str, **options: Any
) -> Interaction:
    """Run `/massage ...` (or any command) and wait for the bot's acknowledgement."""
    interaction = await fake.slash(user, channel, *path, **options)
    await interaction.response()
    return interaction


async def press(fake: FakeDiscord, user: User, message: Message, button: str) -> Interaction:
    """Press a button and wait for the bot's acknowledgement."""
    interaction = await fake.press(user, message, button)
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


def ephemeral_text(interaction: Interaction) -> str:
    """The private answer an interaction got."""
    assert interaction.original is not None and interaction.original.ephemeral, (
        "expected a private answer"
    )
    return text_of(interaction.original)
