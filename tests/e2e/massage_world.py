"""What the massage bot's end-to-end tests share besides fixtures: the knowledge they add
to the tiny test knowledge base, and helpers to run commands, press buttons and read
messages."""

from __future__ import annotations

from typing import Any

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
