"""The store's classes, reminders, step alerts, stats and people's own data, on both
backends (an SQLite file and a real PostgreSQL)."""

from __future__ import annotations

import hashlib

import pytest

from bot.knowledge import KnowledgeBase
from bot.sessions import SessionEngine
from bot.shards import Shards
from bot.store import Reminder, ScheduledClass, Store
from bot.store.base import ANONYMOUS, TABLES


def a_class(class_id: str = "c1", starts_at: float = 5_000.0, **fields: object) -> ScheduledClass:
    values: dict[str, object] = dict(
        id=class_id, server_id="g1", channel_id="ch1", host_id="dana", routine_id="tiny",
        starts_at=starts_at, event_id=f"e-{class_id}", state="scheduled", session_id=None,
        created_at=1_000.0,
    )  # fmt: skip
    values.update(fields)
    return ScheduledClass(**values)  # type: ignore[arg-type]


def a_reminder(reminder_id: str = "r1", next_at: float = 9_000.0, **fields: object) -> Reminder:
    values: dict[str, object] = dict(
        id=reminder_id, user_id="ann", server_id=None, channel_id=None, weekday=0,
        at_time="20:00", zone="Europe/Berlin", next_at=next_at, created_at=1_000.0,
    )  # fmt: skip
    values.update(fields)
    return Reminder(**values)  # type: ignore[arg-type]


async def test_classes_are_found_by_server_time_and_event(store: Store) -> None:
    await store.add_class(a_class("c1", 5_000.0))
    await store.add_class(a_class("c2", 2_000.0, server_id="g2"))
    await store.add_class(a_class("c3", 9_000.0))
    due = await store.classes(starting_before=6_000.0)
    assert [c.id for c in due] == ["c2", "c1"]  # soonest first
    assert [c.id for c in await store.classes(server_id="g1")] == ["c1", "c3"]
    assert (await store.class_of_event("e-c3")).id == "c3"
    assert await store.class_by_id("nope") is None


async def test_a_class_moves_on_only_from_the_state_it_was_in(store: Store) -> None:
    await store.add_class(a_class())
    assert await store.set_class_state("c1", "started", was="scheduled", session_id="s9")
    assert not await store.set_class_state("c1", "missed", was="scheduled")  # someone else won
    started = await store.class_by_id("c1")
    assert (started.state, started.session_id) == ("started", "s9")
    assert await store.classes(states=("scheduled",)) == []


async def test_a_class_is_found_by_its_session_and_moved_only_while_scheduled(
    store: Store,
) -> None:
    await store.add_class(a_class("c1", voice_channel_id="v1"))
    assert await store.move_class("c1", 6_000.0)
    assert (await store.class_by_id("c1")).starts_at == 6_000.0
    await store.set_class_state("c1", "started", was="scheduled", session_id="s9")
    assert not await store.move_class("c1", 7_000.0)
    found = await store.class_of_session("s9")
    assert (found.id, found.starts_at, found.voice_channel_id) == ("c1", 6_000.0, "v1")
    assert await store.class_of_session("s0") is None


async def test_voice_guides_by_shard(store: Store) -> None:
    first, second = str(1 << 22), str(2 << 22)  # servers of shard 1 and shard 0 of 2
    await store.set_voice_guide("s1", first, "v1")
    await store.set_voice_guide("s2", second, "v2")
    await store.set_voice_guide("s2", second, "v3")  # moved
    assert await store.voice_guides() == {"s1": "v1", "s2": "v3"}
    assert await store.voice_guides(Shards.of(2, (0,))) == {"s2": "v3"}
    await store.forget_voice_guide("s1")
    assert await store.voice_guides() == {"s2": "v3"}


async def test_a_reminder_occurrence_is_claimed_once(store: Store) -> None:
    await store.add_reminder(a_reminder("r1", 9_000.0))
    await store.add_reminder(a_reminder("r2", 20_000.0, user_id="bob"))
    assert await store.next_reminder_at() == 9_000.0
    assert await store.next_reminder_at(other_than="ann") == 20_000.0
    (due,) = await store.due_reminders(10_000.0)
    assert due.id == "r1"
    assert await store.claim_reminder(due, 9_000.0 + 604_800)
    assert not await store.claim_reminder(due, 9_000.0 + 604_800)  # a second process: no
    assert await store.due_reminders(10_000.0) == []
    assert [r.id for r in await store.reminders_of("ann")] == ["r1"]
    assert not await store.delete_reminder("r2", "ann")  # not hers
    assert await store.delete_reminder("r1", "ann")
    assert await store.reminders_of("ann") == []


async def test_step_alerts_are_a_preference(store: Store) -> None:
    assert not (await store.get_preferences("ann")).step_alerts
    await store.set_step_alerts("ann", True)
    await store.set_usual_pressure("ann", "firmer")
    preferences = await store.get_preferences("ann")
    assert (preferences.step_alerts, preferences.usual_pressure) == (True, "firmer")
    assert await store.step_alert_people(["ann", "bob", "ann"]) == {"ann"}
    await store.set_step_alerts("ann", False)
    assert await store.step_alert_people(["ann"]) == set()


@pytest.fixture
def engine_on(store: Store, kb: KnowledgeBase, asker, clock) -> SessionEngine:
    return SessionEngine(kb, store, asker, clock)


async def test_stats_records_and_a_persons_data_then_forgetting_them(
    store: Store, engine_on: SessionEngine, clock
) -> None:
    group = await engine_on.start("ch1", "dana", "tiny", group=True, server_id="g1")
    await engine_on.join(group.session.id, "ann")
    clock.advance(200)  # a step done
    await engine_on.stop(group.session.id, "dana")
    alone = await engine_on.start("ch2", "ann", "tiny")
    await engine_on.stop(alone.session.id, "ann")  # no step done: not counted
    await store.add_reminder(a_reminder())
    await store.set_step_alerts("ann", True)
    (record,) = await store.session_records(since=0.0, user_id="ann")
    assert record.routine_id == "tiny" and set(record.people) == {"dana", "ann"}
    assert record.minutes == pytest.approx(200 / 60)
    assert len(await store.session_records(since=0.0, server_id="g1")) == 1
    assert await store.session_records(since=clock() + 1, user_id="ann") == []
    mine = await store.personal_data("ann")
    assert mine["preferences"]["step_alerts"] is True and len(mine["reminders"]) == 1
    assert {s["id"] for s in mine["sessions"]} == {group.session.id, alone.session.id}
    await store.forget_person("ann")
    gone = await store.personal_data("ann")
    assert gone["sessions"] == [] and gone["reminders"] == []
    assert gone["preferences"]["step_alerts"] is False
    (record,) = await store.session_records(since=0.0, server_id="g1")
    assert "ann" not in record.people and any(p.startswith(ANONYMOUS) for p in record.people)


async def test_the_new_tables_are_copied_and_old_classes_pruned(
    store: Store, tmp_path
) -> None:
    await store.add_class(a_class("old", 1_000.0, state="started"))
    await store.add_class(a_class("soon", 1_000.0))
    await store.add_reminder(a_reminder())
    await store.set_step_alerts("ann", True)
    async with await Store.open(tmp_path / "copy.sqlite3") as target:
        copied = await store.copy_to(target)
        assert (copied["classes"], copied["reminders"]) == (2, 1)
        assert (await target.get_preferences("ann")).step_alerts
    await store.prune(before=2_000.0)
    assert [c.id for c in await store.classes(states=("scheduled", "started"))] == ["soon"]


async def every_cell(store: Store) -> list[str]:
    """Every value in every table of the store, as text."""
    cells = []
    for table, columns in TABLES.items():
        for row in await store._rows(f"SELECT {columns} FROM {table}"):
            cells += [str(value) for value in row]
    return cells


async def test_forgetting_someone_leaves_no_trace_of_them(
    store: Store, engine_on: SessionEngine, clock
) -> None:
    ann = "123456789012345678"
    group = await engine_on.start("ch1", "dana", "tiny", group=True, server_id="g1")
    await engine_on.join(group.session.id, ann)
    await engine_on.leave(group.session.id, ann)  # only the session's events name her now
    asked = await engine_on.start("ch2", "bob", "tiny")
    await engine_on.invite(asked.session.id, "bob", ann)  # she has not answered yet
    await store.add_class(a_class("coming", clock() + 3_600, host_id=ann))
    await store.add_class(a_class("held", clock() - 3_600, host_id=ann, state="started"))
    await store.add_reminder(a_reminder(user_id=ann))
    await store.claim_step_alert(group.session.id, ann, 0)

    mine = await store.personal_data(ann)
    assert mine["steps_alerted"] == [{"session_id": group.session.id, "step_index": 0}]
    assert {s["id"] for s in mine["sessions"]} == {group.session.id, asked.session.id}
    assert {e["what"] for e in mine["session_events"]} >= {"joined", "left", "invited"}
    assert {c["id"] for c in mine["classes_hosted"]} == {"coming", "held"}

    cancelled = await engine_on.forget_person(ann)
    assert [c.id for c in cancelled] == ["coming"]
    assert (await store.class_by_id("coming")).state == "cancelled"
    await engine_on.next_step(asked.session.id, "bob")  # the host goes on: she is not written back
    cells = await every_cell(store)
    assert not any(ann in cell for cell in cells)
    anonymous = {cell for cell in cells if cell.startswith(ANONYMOUS)}
    assert anonymous and not any(hashlib.sha256(ann.encode()).hexdigest()[:10] in a
                                 for a in anonymous)  # fmt: skip
    assert engine_on.get(asked.session.id).invited is None  # type: ignore[union-attr]
    assert await store.personal_data(ann) == {
        "user_id": ann, "preferences": mine["preferences"] | {"step_alerts": False},
        "sessions": [], "session_events": [], "steps_alerted": [], "reminders": [],
        "classes_hosted": [],
    }  # fmt: skip


async def test_a_step_alert_is_claimed_once_and_goes_with_its_session(
    store: Store, engine_on: SessionEngine, clock
) -> None:
    group = await engine_on.start("ch1", "dana", "tiny", group=True, server_id="g1")
    session_id = group.session.id
    assert await store.claim_step_alert(session_id, "ann", 1)
    assert not await store.claim_step_alert(session_id, "ann", 1)  # never twice
    assert await store.claim_step_alert(session_id, "ann", 2)
    assert await store.claim_step_alert(session_id, "bob", 1)
    await store.forget_person("bob")
    assert await store.claim_step_alert(session_id, "bob", 1)  # nothing kept of bob
    await engine_on.stop(session_id, "dana")
    clock.advance(10)
    await store.prune(before=clock())
    assert (await store.row_counts())["step_alerts_sent"] == 0


async def test_someone_who_left_early_still_counts_in_the_stats(
    store: Store, engine_on: SessionEngine, clock
) -> None:
    group = await engine_on.start("ch1", "dana", "tiny", group=True, server_id="g1")
    await engine_on.join(group.session.id, "ann")
    clock.advance(200)
    await engine_on.leave(group.session.id, "ann")
    clock.advance(200)
    await engine_on.stop(group.session.id, "dana")
    (hers,) = await store.session_records(since=0.0, user_id="ann")
    assert set(hers.people) == {"dana", "ann"}
    (the_servers,) = await store.session_records(since=0.0, server_id="g1")
    assert set(the_servers.people) == {"dana", "ann"}
    assert [s["id"] for s in (await store.personal_data("ann"))["sessions"]] == [group.session.id]


async def test_classes_left_half_opened_by_a_stop_are_scheduled_again(store: Store) -> None:
    on_shard_1 = str(1 << 22)
    on_shard_0 = str(2 << 22)
    await store.add_class(a_class("half", state="started", server_id=on_shard_0))  # no session
    await store.add_class(a_class("opened", state="started", server_id=on_shard_0,
                                  session_id="s1"))  # fmt: skip
    await store.add_class(a_class("elsewhere", state="started", server_id=on_shard_1))
    assert await store.reschedule_unopened_classes(Shards.of(2, (0,))) == 1
    states = {c.id: c.state for c in await store.classes(states=("scheduled", "started"))}
    assert states == {"half": "scheduled", "opened": "started", "elsewhere": "started"}
