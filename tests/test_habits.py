"""Weekly reminders claimed once, stats from the store, and people's own data, through
`bot.habits` on both store backends."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.habits import MAX_REMINDERS, HabitError, Habits, describe
from bot.reminders import ReminderError
from bot.sessions import SessionEngine
from bot.shards import Shards
from bot.store import Reminder, Store, StoreError
from tests.conftest import FakeClock

SUNDAY_NOON = dt.datetime(2026, 3, 29, 12, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


@pytest.fixture
def habits(store: Store) -> Habits:
    return Habits(store, FakeClock(SUNDAY_NOON))


async def claimed(habits: Habits, shards: Shards | None = None) -> list[Reminder]:
    """Every reminder `habits` claims now."""
    return [reminder async for reminder in habits.due_reminders(shards)]


async def test_a_reminder_is_sent_once_a_week_at_the_local_time(
    store: Store, habits: Habits
) -> None:
    reminder = await habits.add_weekly_reminder("ann", "mon", "20:00", "Europe/Berlin")
    assert describe(reminder).endswith("Mondays at 20:00 (Europe/Berlin), by direct message")
    monday = dt.datetime(2026, 3, 30, 20, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert reminder.next_at == monday
    assert await claimed(habits) == []
    habits.clock.now = monday + 5  # type: ignore[attr-defined]
    other = Habits(store, habits.clock)  # a second process on the same store
    sent = await claimed(habits)
    assert [r.id for r in sent] == [reminder.id] and await claimed(other) == []
    (moved,) = await store.reminders_of("ann")
    assert moved.next_at == monday + 7 * 86_400


async def test_reminders_of_servers_go_to_their_shards_and_people_to_shard_0(
    store: Store, habits: Habits
) -> None:
    on_shard_1 = str((1 << 22) * 1)  # (id >> 22) % 2 == 1
    await habits.add_weekly_reminder("dana", "mon", "20:00", "UTC", server_id=on_shard_1,
                                     channel_id="c1")  # fmt: skip
    await habits.add_weekly_reminder("ann", "mon", "20:00", "UTC")
    habits.clock.now += 8 * 86_400  # type: ignore[attr-defined]
    shard_0 = await claimed(habits, Shards.of(2, (0,)))
    shard_1 = await claimed(habits, Shards.of(2, (1,)))
    assert [r.user_id for r in shard_0] == ["ann"] and [r.user_id for r in shard_1] == ["dana"]


async def test_a_persons_weeks_follow_the_zone_of_their_reminders(
    store: Store, habits: Habits, kb, asker
) -> None:
    los_angeles = ZoneInfo("America/Los_Angeles")
    sunday_evening = dt.datetime(2026, 3, 29, 20, tzinfo=los_angeles).timestamp()  # Monday UTC
    habits.clock.now = sunday_evening  # type: ignore[attr-defined]
    engine = SessionEngine(kb, store, asker, habits.clock)
    started = await engine.start("c1", "ann", "tiny")
    habits.clock.now += 200  # type: ignore[attr-defined]
    await engine.stop(started.session.id, "ann")
    habits.clock.now += 2 * 86_400  # type: ignore[attr-defined]  # Tuesday
    assert (await habits.your_stats("ann")).numbers.weekly_sessions[-2:] == (0, 1)  # UTC
    await habits.add_weekly_reminder("ann", "sun", "19:00", "America/Los_Angeles")
    assert (await habits.your_stats("ann")).numbers.weekly_sessions[-2:] == (1, 0)


async def test_bad_reminders_are_refused_with_a_reason(habits: Habits) -> None:
    with pytest.raises(ReminderError, match="time zone"):
        await habits.add_weekly_reminder("ann", "mon", "20:00", "Mars/Olympus")
    for _ in range(MAX_REMINDERS):
        await habits.add_weekly_reminder("ann", "tue", "8pm", "UTC")
    with pytest.raises(HabitError, match="cancel one first"):
        await habits.add_weekly_reminder("ann", "wed", "8pm", "UTC")
    with pytest.raises(HabitError, match="no reminder"):
        await habits.cancel_reminder("bob", (await habits.store.reminders_of("ann"))[0].id)
    with pytest.raises(HabitError, match="no reminder") as refused:
        await habits.cancel_reminder("ann", "x" * 6000)  # Discord allows that long an option
    assert len(str(refused.value)) < 200


async def test_stats_and_data_come_from_the_sessions(
    store: Store, habits: Habits, kb, asker
) -> None:
    engine = SessionEngine(kb, store, asker, habits.clock)
    started = await engine.start("c1", "ann", "tiny")
    habits.clock.now += 200  # type: ignore[attr-defined]
    await engine.stop(started.session.id, "ann")
    await store.set_usual_pressure("ann", "lighter")
    yours = await habits.your_stats("ann")
    assert (yours.numbers.sessions, yours.numbers.streak_weeks, yours.usual_pressure) == (
        1, 1, "lighter",
    )
    assert yours.numbers.favourite_routine == "tiny"
    habits.clock.now += 60 * 7 * 86_400  # type: ignore[attr-defined]
    later = await engine.start("c1", "ann", "tiny")
    habits.clock.now += 300  # type: ignore[attr-defined]
    await engine.stop(later.session.id, "ann")
    yours = await habits.your_stats("ann")
    assert (yours.numbers.sessions, round(yours.numbers.minutes)) == (2, 8)  # all time
    data = await habits.personal_data("ann")
    assert data["user_id"] == "ann" and len(data["sessions"]) == 2
    await engine.forget_person("ann")
    assert (await habits.your_stats("ann")).numbers.sessions == 0


async def test_a_store_failing_midway_loses_no_reminder(
    store: Store, habits: Habits, monkeypatch: pytest.MonkeyPatch
) -> None:
    for person in ("ann", "bob", "cat"):
        await habits.add_weekly_reminder(person, "mon", "20:00", "UTC")
    habits.clock.now += 8 * 86_400  # type: ignore[attr-defined]
    claim, calls = store.claim_reminder, 0

    async def failing_second(reminder: Reminder, following: float) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StoreError("the disk is full")
        return await claim(reminder, following)

    monkeypatch.setattr(store, "claim_reminder", failing_second)
    sent: list[str] = []
    with pytest.raises(StoreError):
        async for reminder in habits.due_reminders():
            sent.append(reminder.user_id)  # each is sent before the next is claimed
    sent += [r.user_id for r in await claimed(habits)]  # the next round
    assert sorted(sent) == ["ann", "bob", "cat"]


async def test_a_reminder_in_a_zone_this_machine_lacks_keeps_a_weekly_beat(
    store: Store, habits: Habits
) -> None:
    reminder = await habits.add_weekly_reminder("ann", "mon", "20:00", "UTC")
    await store.add_reminder(dataclasses.replace(reminder, id="copied", zone="Mars/Olympus"))
    habits.clock.now = reminder.next_at + 1  # type: ignore[attr-defined]
    assert sorted(r.id for r in await claimed(habits)) == sorted(["copied", reminder.id])
    moved = {r.id: r.next_at for r in await store.reminders_of("ann")}
    assert moved["copied"] == reminder.next_at + 1 + 7 * 86_400
