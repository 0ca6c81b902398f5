"""Coming back every week, through the fake Discord: `/massage stats`, step alerts by DM,
weekly reminders sent once on time, and a person's own data sent and forgotten."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.client import STORE_TROUBLE, MassageBot
from bot.store import StoreError
from tests.e2e.fake_discord import Channel, FakeDiscord, Message, User
from tests.e2e.massage_world import ephemeral_text, press, settled, slash, step_of, text_of

TUESDAY_22_15_UTC = 1_700_000_100.0  # the tests' clock starts at Tuesday 22:13:20 UTC


def dms_to(fake: FakeDiscord, name: str) -> list[Message]:
    channel = fake.dm_channel(fake.user(name))
    return [m for m in fake.messages.values() if m.channel is channel and not m.deleted]


async def until(check, what: str, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)



async def a_session(
    fake: FakeDiscord, user: User, channel: Channel, clock: Any, seconds: float
) -> None:
    """`user` runs the tiny routine in `channel` for `seconds`, then stops it."""
    started = await slash(fake, user, channel, "massage", "start", routine="tiny")
    assert started.original is not None
    clock.advance(seconds)
    await press(fake, user, started.original, "Stop")

async def test_stats_after_a_session(fake: FakeDiscord, bot: MassageBot, clock) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    none_yet = await slash(fake, alice, general, "massage", "stats")
    assert "No finished sessions yet" in ephemeral_text(none_yet)

    await a_session(fake, alice, general, clock, 300)
    stats = await slash(fake, alice, general, "massage", "stats")
    text = ephemeral_text(stats)
    assert "Sessions 1" in text and "Minutes 5" in text and "1 week in a row" in text
    assert "Favourite routine tiny" in text
    assert stats.original is not None
    (embed,) = stats.original.embeds
    assert embed["footer"]["text"] == "Counts every session kept: the last 90 days."
    chart = [f for f in stats.original.files if f.filename == "weeks.png"]
    assert chart and chart[0].data.startswith(b"\x89PNG")


async def test_step_alerts_one_dm_a_step_until_they_leave(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, bob, carol = fake.user("alice"), fake.user("bob"), fake.user("carol")
    general = fake.guild("Wellness").channel("general")
    turned_on = await slash(fake, bob, general, "massage", "alerts", state="on")
    assert "Step alerts on" in ephemeral_text(turned_on)
    started = await slash(fake, alice, general, "massage", "start", routine="tiny", group=True)
    message = started.original
    assert message is not None
    await press(fake, bob, message, "Join")
    await press(fake, carol, message, "Join")
    await press(fake, alice, message, "Next")
    await until(lambda: len(dms_to(fake, "bob")) == 1, "bob alerted at step 2")
    assert "step 2 of 4" in dms_to(fake, "bob")[-1].content
    await press(fake, alice, message, "Back")
    await press(fake, alice, message, "Next")
    assert step_of(message) == 2
    await press(fake, bob, message, "Leave")
    await press(fake, alice, message, "Next")
    assert step_of(message) == 3
    await asyncio.sleep(0.3)  # any alert would have been sent by now
    assert [m.content.split(": ")[0][-11:] for m in dms_to(fake, "bob")] == ["step 2 of 4"]
    assert dms_to(fake, "carol") == []  # she never turned them on

    await slash(fake, bob, general, "massage", "alerts", state="off")
    await press(fake, bob, message, "Join")
    await press(fake, alice, message, "Next")
    await asyncio.sleep(0.3)
    assert len(dms_to(fake, "bob")) == 1


async def test_step_alerts_stay_one_a_step_across_a_restart(
    fake: FakeDiscord, make_bot: Any
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    general = fake.guild("Wellness").channel("general")
    first, second = make_bot(), make_bot()
    async with fake.run(first):
        await slash(fake, bob, general, "massage", "alerts", state="on")
        started = await slash(fake, alice, general, "massage", "start", routine="tiny",
                              group=True)  # fmt: skip
        message = started.original
        assert message is not None
        await press(fake, bob, message, "Join")
        await press(fake, alice, message, "Next")
        await until(lambda: len(dms_to(fake, "bob")) == 1, "bob alerted at step 2")
    async with fake.run(second):
        await settled(fake, second)
        await press(fake, alice, message, "Back")  # the step bob joined on
        await press(fake, alice, message, "Next")  # the step he was told of
        await press(fake, alice, message, "Next")
        await until(lambda: len(dms_to(fake, "bob")) == 2, "bob alerted at step 3")
        await asyncio.sleep(0.3)  # any other alert would have been sent by now
    assert [m.content.split(": ")[0][-11:] for m in dms_to(fake, "bob")] == [
        "step 2 of 4", "step 3 of 4",
    ]  # fmt: skip


async def test_step_alerts_to_closed_dms_are_tried_once(
    fake: FakeDiscord, bot: MassageBot
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    general = fake.guild("Wellness").channel("general")
    await slash(fake, bob, general, "massage", "alerts", state="on")
    bob.accepts_dms = False
    started = await slash(fake, alice, general, "massage", "start", routine="tiny", group=True)
    message = started.original
    assert message is not None
    await press(fake, bob, message, "Join")
    for _ in range(3):
        await press(fake, alice, message, "Next")
    await asyncio.sleep(0.3)  # any alert would have been tried by now
    refused = [c for c in fake.calls if c.method == "POST" and c.status == 403
               and c.path.startswith("/channels/")]  # fmt: skip
    assert len(refused) == 1  # Discord counts each refusal against the bot


async def test_a_weekly_reminder_comes_once_on_time(
    fake: FakeDiscord, bot: MassageBot, clock
) -> None:
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    zones = await fake.autocomplete(alice, general, "massage", "remind", "weekly", day="tue",
                                    time="22:15", zone="berl")  # fmt: skip
    assert {"name": "Europe/Berlin", "value": "Europe/Berlin"} in zones
    unknown = await slash(fake, alice, general, "massage", "remind", "weekly", day="tuesday",
                          time="22:15", zone="Mars/Olympus")  # fmt: skip
    assert "time zone" in ephemeral_text(unknown)
    bad_time = await slash(fake, alice, general, "massage", "remind", "weekly", day="tuesday",
                           time="25:99", zone="UTC")  # fmt: skip
    assert "Reminder set" not in ephemeral_text(bad_time)

    made = await slash(fake, alice, general, "massage", "remind", "weekly", day="tuesday",
                       time="22:15", zone="UTC")  # fmt: skip
    assert "Reminder set" in ephemeral_text(made) and f"<t:{int(TUESDAY_22_15_UTC)}:F>" in (
        ephemeral_text(made)
    )
    listed = await slash(fake, alice, general, "massage", "remind", "list")
    assert "Tuesdays at 22:15 (UTC)" in ephemeral_text(listed)

    bot.wake_timer()
    await asyncio.sleep(0.2)
    assert dms_to(fake, "alice") == []  # not yet
    clock.advance(100)
    bot.wake_timer()
    await until(lambda: len(dms_to(fake, "alice")) == 1, "the reminder sent")
    assert "Your weekly reminder" in dms_to(fake, "alice")[0].content
    bot.wake_timer()
    await asyncio.sleep(0.3)
    assert len(dms_to(fake, "alice")) == 1  # once per occurrence

    ids = await fake.autocomplete(alice, general, "massage", "remind", "cancel", reminder="")
    assert len(ids) == 1
    cancelled = await slash(fake, alice, general, "massage", "remind", "cancel",
                            reminder=ids[0]["value"])  # fmt: skip
    assert "Reminder cancelled" in ephemeral_text(cancelled)
    clock.advance(7 * 86_400)
    bot.wake_timer()
    await asyncio.sleep(0.3)
    assert len(dms_to(fake, "alice")) == 1


async def test_dm_channels_are_opened_before_the_reminders_are_due(
    fake: FakeDiscord, bot: MassageBot, clock
) -> None:
    general = fake.guild("Wellness").channel("general")
    people = [fake.user(name) for name in ("alice", "bob", "carol")]
    for person in people:
        await slash(fake, person, general, "massage", "remind", "weekly", day="tuesday",
                    time="22:15", zone="UTC")  # fmt: skip
    clock.advance(100 - 30)  # due in 30 s: their DM channels are opened now
    bot.wake_timer()
    await until(lambda: len(fake.calls_to("POST", r"/users/@me/channels")) == 3, "opened")
    assert all(dms_to(fake, p.name) == [] for p in people)  # nothing sent before its time
    clock.advance(30)
    bot.wake_timer()
    await until(lambda: all(len(dms_to(fake, p.name)) == 1 for p in people), "all sent")
    assert len(fake.calls_to("POST", r"/users/@me/channels")) == 3  # one request each now


async def test_a_server_reminder_needs_manage_server_and_pings_no_one(
    fake: FakeDiscord, bot: MassageBot, clock
) -> None:
    alice, dana = fake.user("alice"), fake.user("dana")
    wellness = fake.guild("Wellness")
    general, sessions = wellness.channel("general"), wellness.channel("sessions")
    refused = await slash(fake, alice, general, "massage", "remind", "weekly", day="tuesday",
                          time="22:15", zone="UTC", channel=sessions)  # fmt: skip
    assert "Manage Server" in ephemeral_text(refused)
    made = await slash(fake, dana, general, "massage", "remind", "weekly", day="tuesday",
                       time="22:15", zone="UTC", channel=sessions)  # fmt: skip
    assert f"in <#{sessions.id}>" in ephemeral_text(made)
    start = len(fake.calls)
    clock.advance(100)
    bot.wake_timer()
    sent = await fake.wait_for_call("POST", rf"/channels/{sessions.id}/messages", since=start)
    assert f"<@{dana.id}>" in sent.json["content"]
    assert sent.json["allowed_mentions"]["parse"] == []

    await fake.delete_channel(sessions)  # the next week's has nowhere to go
    clock.advance(7 * 86_400)
    bot.wake_timer()
    await until(lambda: len(dms_to(fake, "dana")) == 1, "the host told")
    assert "was deleted, so I removed the reminder" in dms_to(fake, "dana")[0].content
    assert bot.store is not None and await bot.store.reminders_of(str(dana.id)) == []


async def test_my_data_then_forget_me(fake: FakeDiscord, bot: MassageBot, clock) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    general = fake.guild("Wellness").channel("general")
    await slash(fake, alice, general, "massage", "remind", "weekly", day="friday", time="8pm",
                zone="Europe/Berlin")  # fmt: skip
    group = await slash(fake, bob, general, "massage", "start", routine="tiny", group=True)
    assert group.original is not None
    await press(fake, alice, group.original, "Join")

    mine = await slash(fake, alice, general, "massage", "my-data")
    assert mine.original is not None and mine.original.ephemeral
    (upload,) = mine.original.files
    data = json.loads(upload.data)
    assert data["user_id"] == str(alice.id) and len(data["reminders"]) == 1
    assert [s["routine"] for s in data["sessions"]] == ["tiny"]

    asked = await slash(fake, alice, general, "massage", "forget-me")
    confirm = asked.original
    assert confirm is not None and "cannot be undone" in ephemeral_text(asked)
    not_hers = await press(fake, bob, confirm, "Forget me")
    assert "someone else's" in ephemeral_text(not_hers)
    await press(fake, alice, confirm, "Forget me")
    assert "forgotten you" in text_of(confirm) and not confirm.buttons
    await settled(fake, bot)
    assert f"<@{alice.id}>" not in text_of(group.original)  # out of the running session
    assert "1 of 10 in the group" in text_of(group.original)

    after = await slash(fake, alice, general, "massage", "my-data")
    assert after.original is not None
    data = json.loads(after.original.files[0].data)
    assert data["sessions"] == [] and data["reminders"] == []
    bobs = await slash(fake, bob, general, "massage", "my-data")
    assert bobs.original is not None
    assert len(json.loads(bobs.original.files[0].data)["sessions"]) == 1  # his is kept


async def test_a_hosts_server_stats(fake: FakeDiscord, bot: MassageBot, clock) -> None:
    alice, bob, dana = fake.user("alice"), fake.user("bob"), fake.user("dana")
    general = fake.guild("Wellness").channel("general")
    refused = await fake.slash(alice, general, "massage-admin", "stats", forged=True)
    await refused.response()
    assert "Manage Server" in ephemeral_text(refused)
    for user in (alice, bob):
        await a_session(fake, user, general, clock, 200)
    for _ in range(2):
        await slash(fake, alice, general, "massage", "ask", question="is reiki real")
    await a_session(fake, alice, fake.guild("Retreat").channel("general"), clock, 200)

    report = await slash(fake, dana, general, "massage-admin", "stats")
    text = ephemeral_text(report)
    assert "Sessions 2" in text and "People this week 2" in text  # not the other server's
    assert "People per week, oldest first 0 0 0 0 0 0 0 0 0 0 0 2" in text
    assert "Most-used routines Tiny test routine: 2" in text
    assert "**2\N{MULTIPLICATION SIGN}** is reiki real" in text
    assert report.original is not None
    assert [f.filename for f in report.original.files] == ["server-weeks.png"]


async def test_a_failing_store_is_said_plainly_without_its_path(
    fake: FakeDiscord, bot: MassageBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(user_id: str) -> dict[str, object]:
        raise StoreError("could not read /srv/secret/store.sqlite3: disk I/O error")

    assert bot.store is not None
    monkeypatch.setattr(bot.store, "personal_data", broken)
    alice, general = fake.user("alice"), fake.guild("Wellness").channel("general")
    asked = await slash(fake, alice, general, "massage", "my-data")
    assert ephemeral_text(asked) == STORE_TROUBLE
