"""Scheduled classes through `bot.classes` on both store backends: the checks before a
class is scheduled, opening on time, late or missed, and one opening across processes."""

from __future__ import annotations

import pytest

from bot.classes import (
    CLASS_PARTICIPANT_LIMIT,
    LATE_LIMIT_SECONDS,
    MAX_SCHEDULED_PER_SERVER,
    ClassError,
    Classes,
    Opening,
)
from bot.knowledge import KnowledgeBase
from bot.sessions import SessionEngine
from bot.store import Store, StoreError
from tests.conftest import FakeAsker, FakeClock

HOUR = 3600.0


@pytest.fixture
def classes(store: Store, kb: KnowledgeBase, asker: FakeAsker) -> Classes:
    clock = FakeClock()
    return Classes(store, SessionEngine(kb, store, asker, clock), clock)


def another_process(classes: Classes, kb: KnowledgeBase, asker: FakeAsker) -> Classes:
    return Classes(classes.store, SessionEngine(kb, classes.store, asker, classes.clock),
                   classes.clock)  # fmt: skip



async def opened(classes: Classes) -> list[Opening]:
    """Every class `classes` opens now."""
    return [opening async for opening in classes.open_due()]

async def test_what_cannot_be_scheduled(classes: Classes) -> None:
    now = classes.clock()
    with pytest.raises(ClassError, match="no routine 'yoga'"):
        await classes.check("g1", "yoga", now + HOUR)
    with pytest.raises(ClassError, match="no routine") as long_name:
        await classes.check("g1", "yoga" * 1500, now + HOUR)  # Discord allows 6,000
    assert len(str(long_name.value)) < 1000
    with pytest.raises(ClassError, match="has passed"):
        await classes.check("g1", "tiny", now - HOUR)
    with pytest.raises(ClassError, match="days ahead"):
        await classes.check("g1", "tiny", now + 400 * 24 * HOUR)
    for n in range(MAX_SCHEDULED_PER_SERVER):
        await classes.check("g1", "tiny", now + HOUR)
        await classes.schedule("g1", "ch1", "dana", "tiny", now + HOUR + n)
    with pytest.raises(ClassError, match="cancel one first"):
        await classes.check("g1", "tiny", now + HOUR)
    await classes.check("g2", "tiny", now + HOUR)  # another server's count is its own


async def test_a_class_opens_on_time_once_for_hundreds(
    classes: Classes, kb: KnowledgeBase, asker: FakeAsker
) -> None:
    scheduled = await classes.schedule("g1", "ch1", "dana", "tiny", classes.clock() + HOUR,
                                       event_id="e1", voice_channel_id="v1")  # fmt: skip
    assert await opened(classes) == []
    classes.clock.advance(HOUR + 5)  # type: ignore[attr-defined]
    other = another_process(classes, kb, asker)
    (opening,) = await opened(classes)
    assert await opened(other) == []  # opened once
    assert opening.update is not None and opening.late_minutes == 0
    view = opening.update.session
    assert view is not None and view.group and view.host == "dana"
    assert view.participant_limit == CLASS_PARTICIPANT_LIMIT
    started = await classes.store.class_by_id(scheduled.id)
    assert (started.state, started.session_id) == ("started", view.id)
    for n in range(300):
        await classes.engine.join(view.id, f"member{n}")
    assert len(classes.engine.get(view.id).participants) == 301


async def test_a_late_class_says_so_and_a_missed_one_does_not_start(classes: Classes) -> None:
    now = classes.clock()
    first = await classes.schedule("g1", "ch1", "dana", "tiny", now + HOUR)
    second = await classes.schedule("g1", "ch2", "dana", "tiny", now + 2 * HOUR)
    classes.clock.now = now + 2 * HOUR + LATE_LIMIT_SECONDS + 60  # type: ignore[attr-defined]
    openings = {o.scheduled.id: o for o in await opened(classes)}
    assert set(openings) == {first.id, second.id}  # both missed while the bot was down
    assert all(o.update is None and "offline" in str(o.problem) for o in openings.values())
    assert (await classes.store.class_by_id(first.id)).state == "missed"

    classes.clock.now = now + 2 * HOUR + 7 * 60  # type: ignore[attr-defined]
    again = await classes.schedule("g1", "ch3", "dana", "tiny", now + 2 * HOUR + 7 * 60 + 61)
    classes.clock.advance(61 + 6 * 60)  # type: ignore[attr-defined]
    (opening,) = await opened(classes)
    assert opening.scheduled.id == again.id and opening.late_minutes == 6
    assert opening.update is not None


async def test_cancelling(classes: Classes) -> None:
    scheduled = await classes.schedule("g1", "ch1", "dana", "tiny", classes.clock() + HOUR,
                                       event_id="e1")  # fmt: skip
    with pytest.raises(ClassError, match="no such class"):
        await classes.cancel("g2", scheduled.id)  # not that server's
    assert (await classes.cancel("g1", scheduled.id)).id == scheduled.id
    with pytest.raises(ClassError, match="no such class"):
        await classes.cancel("g1", scheduled.id)
    other = await classes.schedule("g1", "ch1", "dana", "tiny", classes.clock() + HOUR,
                                   event_id="e2")  # fmt: skip
    assert (await classes.cancel_for_event("e2")).id == other.id
    assert await classes.cancel_for_event("e2") is None
    classes.clock.advance(2 * HOUR)  # type: ignore[attr-defined]
    assert await opened(classes) == []


async def test_a_host_busy_in_the_channel_misses_the_class(classes: Classes) -> None:
    await classes.engine.start("ch1", "dana", "tiny")
    scheduled = await classes.schedule("g1", "ch1", "dana", "tiny", classes.clock() + HOUR)
    classes.clock.advance(HOUR)  # type: ignore[attr-defined]
    (opening,) = await opened(classes)
    assert opening.update is None and "already had a session" in str(opening.problem)
    assert (await classes.store.class_by_id(scheduled.id)).state == "missed"


async def test_a_store_failing_as_a_class_opens_leaves_it_to_open_later(
    classes: Classes, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await classes.schedule("g1", "ch1", "dana", "tiny", classes.clock() + HOUR)
    second = await classes.schedule("g2", "ch2", "eve", "tiny", classes.clock() + HOUR)
    classes.clock.advance(HOUR + 5)  # type: ignore[attr-defined]
    save, failed = classes.engine.store.save_sessions, []

    async def failing_once(*args: object, **kwargs: object) -> None:
        if not failed:
            failed.append(True)
            raise StoreError("the disk is full")
        await save(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(classes.engine.store, "save_sessions", failing_once)
    (opening,) = await opened(classes)  # the other class opens all the same
    assert opening.scheduled.id == second.id
    assert (await classes.store.class_by_id(first.id)).state == "scheduled"  # type: ignore[union-attr]
    (again,) = await opened(classes)  # the next look opens it
    assert again.scheduled.id == first.id and again.update is not None
