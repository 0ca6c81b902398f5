"""Pictures on Discord: the session message shows its step's picture as an attachment the
embed refers to, replaced when the step changes; muscle and technique answers show theirs.

The knowledge is the tests' tiny one plus the packaged body map, a `pictured` routine
(two steps with different pictures, then one without) and a muscle with a region.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.client import MassageBot
from bot.knowledge import default_knowledge_dir
from bot.pictures import PICTURES_VARIABLE
from tests.e2e.fake_discord import Call, FakeDiscord, Message
from tests.e2e.massage_world import press, slash, text_of

STEP_SECONDS = 200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PICTURED_ROUTINE = """\
id: pictured
title: Pictured routine
questions: [pictured routine, the routine with pictures, show me pictures, drawn routine]
summary: Three steps of 200 seconds, two of them drawn, for tests.
next_time: Next time, look at the pictures before you start.
steps:
  - id: find
    title: Find the area
    text: Find the spine and the shoulder blades, and the area between them.
    seconds: 200
    regions: [rhomboids]
    more_pressure: Lean in with your body weight.
    less_pressure: Trace the area more lightly.
  - id: press-lines
    title: Press along the lines
    text: Press with your palms along lines beside the spine.
    seconds: 200
    regions: [trapezius]
    pattern: lines
    more_pressure: Press a little longer on each line.
    less_pressure: Use the flat of your fingers.
  - id: rest
    title: Rest
    text: Rest both hands on the back and breathe together.
    seconds: 200
    more_pressure: Let your hands grow heavier.
    less_pressure: Let your hands float.
"""
RHOMBOIDS = """\
- id: rhomboids
  title: Rhomboids
  aliases: [rhomboid]
  questions: [where are the rhomboids, rhomboids location, find the rhomboids, work the rhomboids]
  where: Between the shoulder blades and the spine.
  how: Rock a light fist along them, beside the spine.
  regions: [rhomboids]
"""


@pytest.fixture
def pictured_knowledge(bot_knowledge: Path) -> Path:
    """The bots' knowledge with a body map, the `pictured` routine and the rhomboids."""
    shutil.copy(default_knowledge_dir() / "body.yaml", bot_knowledge / "body.yaml")
    routine = bot_knowledge / "routines" / "pictured.yaml"
    routine.write_text(PICTURED_ROUTINE, encoding="utf-8")
    with (bot_knowledge / "muscles.yaml").open("a", encoding="utf-8") as muscles:
        muscles.write(RHOMBOIDS)
    return bot_knowledge


@pytest.fixture
async def bot(
    fake: FakeDiscord, make_bot: Any, pictured_knowledge: Path
) -> AsyncIterator[MassageBot]:
    massage_bot = make_bot()
    async with fake.run(massage_bot):
        yield massage_bot


def picture_of(message: Message) -> str | None:
    """The SHA-256 of the PNG the message's embed shows, checking that the embed refers
    to the message's one attachment; None when it shows none (and has no attachment)."""
    image = message.embeds[0].get("image")
    if image is None:
        assert message.attachments == [] and message.files == []
        return None
    [attachment], [upload] = message.attachments, message.files
    assert image["url"] == f"attachment://{attachment['filename']}"
    assert attachment["content_type"] == "image/png" and attachment["size"] == len(upload.data)
    assert upload.data.startswith(PNG_SIGNATURE) and len(upload.data) < 200_000
    return hashlib.sha256(upload.data).hexdigest()


async def edited(fake: FakeDiscord, message: Message, since: int) -> Call:
    """The bot's next edit of `message` through the channel (timer, commands)."""
    return await fake.wait_for_call(
        "PATCH", rf"/channels/{message.channel.id}/messages/{message.id}", since=since
    )


async def test_the_session_message_shows_each_steps_picture(
    fake: FakeDiscord, bot: MassageBot, clock: Any, tmp_path: Path
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    started = await slash(fake, alice, general, "massage", "start", routine="pictured")
    message = started.original
    assert message is not None and "step 1 of 3" in text_of(message)
    [upload] = started.callback.result().files
    assert upload.filename == "step.png" and message.attachments[0]["filename"] == "step.png"
    find = picture_of(message)
    assert find is not None

    pressed = await press(fake, alice, message, "Next")  # a button: the response edits
    assert "step 2 of 3" in text_of(message)
    response = pressed.callback.result()
    assert [f.filename for f in response.files] == ["step.png"]
    assert [a["id"] for a in response.json["data"]["attachments"]] == [0]  # the new file only
    lines = picture_of(message)
    assert lines not in (None, find)

    start = len(fake.calls)
    await slash(fake, alice, general, "massage", "back")  # a command: the bot edits
    edit = await edited(fake, message, start)
    assert [f.filename for f in edit.files] == ["step.png"] and picture_of(message) == find

    await press(fake, alice, message, "Pause")  # the same step: the same picture
    assert "Paused" in text_of(message) and picture_of(message) == find
    await press(fake, alice, message, "Resume")

    start = len(fake.calls)
    clock.advance(STEP_SECONDS)  # the timer moves on and edits
    bot.wake_timer()
    await edited(fake, message, start)
    assert "step 2 of 3" in text_of(message) and picture_of(message) == lines

    start = len(fake.calls)
    clock.advance(STEP_SECONDS)
    bot.wake_timer()
    edit = await edited(fake, message, start)  # a step without a picture
    assert "step 3 of 3" in text_of(message) and picture_of(message) is None
    assert edit.json["attachments"] == [] and edit.files == []

    await press(fake, alice, message, "Back")  # the step before: its picture again
    assert picture_of(message) == lines
    await press(fake, alice, message, "Stop")  # the summary has none
    assert "Session stopped" in text_of(message) and picture_of(message) is None
    drawn = sorted((tmp_path / "pictures").glob("*.png"))
    assert len(drawn) == 2  # drawn once each, in the test's directory


async def test_a_routine_without_pictures_sends_no_files(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    started = await slash(fake, alice, general, "massage", "start", routine="tiny")
    assert started.original is not None and picture_of(started.original) is None
    assert started.callback.result().files == []


async def test_a_picture_that_cannot_be_drawn_is_left_out(
    fake: FakeDiscord,
    bot: MassageBot,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv(PICTURES_VARIABLE, str(blocker))  # writing a picture fails
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    with caplog.at_level(logging.WARNING, logger="bot.client"):
        started = await slash(fake, alice, general, "massage", "start", routine="pictured")
        muscle = await slash(fake, alice, general, "massage", "muscle", name="rhomboids")
    assert started.original is not None and "step 1 of 3" in text_of(started.original)
    assert picture_of(started.original) is None
    assert muscle.original is not None and "Between the shoulder blades" in text_of(muscle.original)
    assert picture_of(muscle.original) is None
    assert "no picture for step 1 of pictured" in caplog.text
    assert "no picture for the muscle rhomboids" in caplog.text


async def test_muscle_and_technique_answers_show_their_pictures(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    muscle = await slash(fake, alice, general, "massage", "muscle", name="rhomboids")
    answer = muscle.original
    assert answer is not None and not answer.ephemeral
    assert "Rhomboids" in text_of(answer) and picture_of(answer) is not None
    assert answer.attachments[0]["filename"] == "rhomboids.png"

    technique = await slash(fake, alice, general, "massage", "technique", name="thumb-circles")
    answer = technique.original
    assert answer is not None and "Thumb circles" in text_of(answer)
    assert picture_of(answer) is None and technique.callback.result().files == []


async def test_a_step_a_reload_changed_shows_no_picture(
    fake: FakeDiscord, bot: MassageBot, pictured_knowledge: Path
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    started = await slash(fake, alice, general, "massage", "start", routine="pictured")
    message = started.original
    assert message is not None and picture_of(message) is not None
    await bot.reload_knowledge()  # the same routine: the same pictures
    await press(fake, alice, message, "Pause")
    assert picture_of(message) is not None
    routine = pictured_knowledge / "routines" / "pictured.yaml"
    changed = PICTURED_ROUTINE.replace("title: Find the area", "title: Find the square")
    routine.write_text(changed, encoding="utf-8")
    await bot.reload_knowledge()  # the session keeps its step; the picture would not match
    await press(fake, alice, message, "Resume")
    assert "Find the area" in text_of(message) and picture_of(message) is None
