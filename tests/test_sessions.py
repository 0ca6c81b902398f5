"""The session state machine and engine: every command in every state, on a fake clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot.assistant import Assistant
from bot.knowledge import KnowledgeBase, KnowledgeError, Routine, load_knowledge
from bot.reply import StepContext
from bot.sessions import (
    ABANDON_AFTER_SECONDS,
    NoSession,
    Session,
    SessionEngine,
    SessionError,
    Update,
    other_side,
)
from bot.shards import Shards
from bot.store import ServerSettings, Store, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import FakeAsker, FakeClock

STEP = 150.0  # every step of the tiny routine lasts this long


@pytest.fixture
def routine(kb: KnowledgeBase) -> Routine:
    return kb.routines["tiny"]


def new_session(routine: Routine, now: float = 0.0, *, group: bool = False) -> Session:
    return Session.begin(
        "s1", "console", routine, "host", "giver",
        group=group, participant_limit=3 if group else 2, now=now,
    )  # fmt: skip


# The pure state machine -----------------------------------------------------------


def test_a_session_starts_running_at_the_first_step(routine: Routine) -> None:
    session = new_session(routine, now=10.0)
    assert (session.state, session.step_index, session.due_at) == ("running", 0, 10.0 + STEP)
    assert session.view(10.0 + 50).seconds_left == STEP - 50


def test_steps_move_on_when_their_time_is_up_not_before(routine: Routine) -> None:
    session = new_session(routine)
    assert not session.catch_up(STEP - 0.001)
    assert session.catch_up(STEP)
    assert (session.step_index, session.step_started_at, session.due_at) == (1, STEP, 2 * STEP)


def test_a_long_gap_passes_several_steps_each_at_the_moment_it_ended(routine: Routine) -> None:
    session = new_session(routine)
    session.catch_up(2 * STEP + 30)
    assert session.step_index == 2
    assert session.step_started_at == 2 * STEP
    assert session.view(2 * STEP + 30).seconds_left == STEP - 30
    assert session.steps_done == 2


def test_time_up_waits_for_next_then_an_untouched_hour_abandons(routine: Routine) -> None:
    session = new_session(routine)
    session.catch_up(4 * STEP)
    assert (session.state, session.step_index, session.steps_done) == ("time_up", 3, 4)
    assert session.view(4 * STEP).seconds_left == 0
    assert not session.catch_up(4 * STEP + ABANDON_AFTER_SECONDS - 1)
    session.catch_up(4 * STEP + ABANDON_AFTER_SECONDS)
    assert session.state == "abandoned"
    summary = session.summary()
    assert summary.outcome == "abandoned"
    assert summary.minutes == pytest.approx(4 * STEP / 60)


def test_a_touch_after_time_up_puts_off_abandonment(routine: Routine) -> None:
    session = new_session(routine)
    session.catch_up(4 * STEP)
    session.pressure_advice(True, 4 * STEP + 1000)
    session.catch_up(4 * STEP + ABANDON_AFTER_SECONDS + 10)
    assert session.state == "time_up"
    assert session.abandon_at == 4 * STEP + 1000 + ABANDON_AFTER_SECONDS


def test_pause_freezes_the_time_left_and_resume_starts_from_it(routine: Routine) -> None:
    session = new_session(routine)
    session.pause(100.0)
    assert (session.state, session.remaining, session.due_at) == ("paused", STEP - 100, None)
    assert not session.catch_up(100_000.0)
    assert session.view(100_000.0).seconds_left == STEP - 100
    session.resume(1000.0)
    assert (session.state, session.due_at, session.remaining) == ("running", 1050.0, None)
    assert session.paused_seconds == 900.0


@pytest.mark.parametrize("state", ["paused", "time_up"])
def test_pause_refused_unless_running(routine: Routine, state: str) -> None:
    session = in_state(routine, state)
    with pytest.raises(SessionError):
        session.pause(5000.0)


@pytest.mark.parametrize("state", ["running", "time_up"])
def test_resume_refused_unless_paused(routine: Routine, state: str) -> None:
    session = in_state(routine, state)
    with pytest.raises(SessionError, match="not paused"):
        session.resume(5000.0)


def in_state(routine: Routine, state: str) -> Session:
    """A session at step 1 (running or paused) or with its last step's time up."""
    session = new_session(routine)
    if state == "time_up":
        session.catch_up(4 * STEP)
        return session
    session.catch_up(STEP + 10)
    if state == "paused":
        session.pause(STEP + 10)
    return session


def test_next_and_back_start_the_new_step_with_a_fresh_timer(routine: Routine) -> None:
    session = new_session(routine)
    session.next_step(20.0)
    assert (session.step_index, session.step_started_at, session.due_at) == (1, 20.0, 20.0 + STEP)
    session.previous_step(30.0)
    assert (session.step_index, session.due_at) == (0, 30.0 + STEP)
    session.previous_step(40.0)  # at the first step, back restarts it
    assert (session.step_index, session.due_at) == (0, 40.0 + STEP)


def test_moving_while_paused_stays_paused_without_the_old_timer(routine: Routine) -> None:
    session = new_session(routine)
    session.next_step(0.0)
    session.pause(STEP - 20)  # 20 s left on step 1
    session.previous_step(200.0)
    assert (session.state, session.step_index, session.remaining) == ("paused", 0, STEP)
    session.next_step(210.0)
    assert (session.step_index, session.remaining) == (1, STEP)
    session.resume(300.0)
    assert session.due_at == 300.0 + STEP


def test_back_after_time_up_runs_the_step_before_the_last(routine: Routine) -> None:
    session = in_state(routine, "time_up")
    session.previous_step(5000.0)
    assert (session.state, session.step_index, session.due_at) == ("running", 2, 5000.0 + STEP)


@pytest.mark.parametrize("state", ["running", "paused", "time_up"])
def test_next_at_the_last_step_completes(routine: Routine, state: str) -> None:
    session = new_session(routine)
    for moment in (1.0, 2.0, 3.0):
        session.next_step(moment)
    if state == "paused":
        session.pause(4.0)
    if state == "time_up":
        session.catch_up(3.0 + STEP)
    session.next_step(5000.0)
    summary = session.summary()
    assert (summary.outcome, summary.steps_done, summary.step_count) == ("completed", 4, 4)
    assert summary.next_time == routine.next_time


@pytest.mark.parametrize("state", ["running", "paused", "time_up"])
def test_stop_ends_with_what_was_done(routine: Routine, state: str) -> None:
    session = in_state(routine, state)
    session.stop(5000.0)
    expected = "completed" if state == "time_up" else "stopped"
    assert session.summary().outcome == expected
    assert session.summary().steps_done == (4 if state == "time_up" else 1)
    assert (session.due_at, session.remaining) == (None, None)


def test_minutes_leave_out_pauses(routine: Routine) -> None:
    session = new_session(routine)
    session.pause(60.0)
    session.resume(660.0)
    session.stop(720.0)
    assert session.summary().minutes == pytest.approx(2.0)
    paused_at_the_end = new_session(routine)
    paused_at_the_end.pause(60.0)
    paused_at_the_end.stop(6000.0)
    assert paused_at_the_end.summary().minutes == pytest.approx(1.0)


@pytest.mark.parametrize("state", ["running", "paused", "time_up"])
def test_pressure_advice_is_the_current_steps_own(routine: Routine, state: str) -> None:
    session = in_state(routine, state)
    step = routine.steps[session.step_index]
    more = session.pressure_advice(True, 5000.0)
    less = session.pressure_advice(False, 5000.0)
    assert (more.text, less.text) == (step.more_pressure, step.less_pressure)
    assert (more.kind, more.id, more.score) == ("answer", step.id, 100.0)
    assert session.pressure == 0


def test_group_membership_control_and_succession(routine: Routine) -> None:
    session = new_session(routine, group=True)
    session.join("ann", "giver", 1.0)
    session.join("bob", "giver", 2.0)
    with pytest.raises(SessionError, match="full"):
        session.join("cat", "giver", 3.0)
    with pytest.raises(SessionError, match="already"):
        session.join("ann", "giver", 3.0)
    assert not session.can_control("ann")
    with pytest.raises(SessionError, match="Only the host"):
        session.hand_control("ann", "bob", 4.0)
    session.hand_control("host", "bob", 4.0)
    assert session.can_control("bob")
    session.leave("host", 5.0)
    assert session.host == "ann" and session.can_control("ann")
    session.leave("ann", 6.0)
    assert session.host == "bob"
    with pytest.raises(SessionError, match="not in"):
        session.leave("ann", 7.0)
    session.leave("bob", 8.0)
    assert session.state == "stopped" and not session.participants


# Property-based: command sequences against a model that counts time down -----------


class SessionModel(RuleBasedStateMachine):
    """Compares `Session` (moments) with a naive model that ticks a counter down."""

    routine: Routine  # set by the test that runs the machine

    def __init__(self) -> None:
        super().__init__()
        self.seconds = [float(step.seconds) for step in self.routine.steps]
        self.now = 0.0

    @initialize(group=st.booleans())
    def begin(self, group: bool) -> None:
        self.session = new_session(self.routine, group=group)
        self.state, self.step, self.left = "running", 0, self.seconds[0]
        self.time_up_at = self.touched = 0.0
        self.people = ["host"]

    def touch(self) -> None:
        self.touched = self.now

    @property
    def active(self) -> bool:
        return self.state in ("running", "paused", "time_up")

    @rule(seconds=st.sampled_from([0, 1, 30, 149, 150, 151, 400, 3600]))
    def wait(self, seconds: int) -> None:
        before = (self.session.step_index, self.session.view(self.now).seconds_left)
        self.now += seconds
        budget = float(seconds)
        while self.state == "running" and budget >= self.left:
            budget -= self.left
            if self.step == len(self.seconds) - 1:
                self.state, self.left, self.time_up_at = "time_up", 0.0, self.now - budget
            else:
                self.step, self.left = self.step + 1, self.seconds[self.step + 1]
        if self.state == "running":
            self.left -= budget
        if self.state == "time_up" and self.now >= max(self.time_up_at, self.touched) + 3600:
            self.state = "abandoned"
        was_paused = self.session.state == "paused"
        self.session.catch_up(self.now)
        if was_paused:  # paused time is frozen
            assert (self.session.step_index, self.session.view(self.now).seconds_left) == before

    @precondition(lambda self: self.active)
    @rule()
    def next(self) -> None:
        self.session.next_step(self.now)
        self.touch()
        if self.state == "time_up" or self.step == len(self.seconds) - 1:
            self.state = "completed"
        else:
            self.step += 1
            self.left = self.seconds[self.step]

    @precondition(lambda self: self.active)
    @rule()
    def back(self) -> None:
        self.session.previous_step(self.now)
        self.touch()
        if self.state == "time_up":
            self.state = "running"
        self.step = max(self.step - 1, 0)
        self.left = self.seconds[self.step]

    @precondition(lambda self: self.active)
    @rule()
    def pause(self) -> None:
        if self.state != "running":
            with pytest.raises(SessionError):
                self.session.pause(self.now)
            return
        self.session.pause(self.now)
        self.touch()
        self.state = "paused"

    @precondition(lambda self: self.active)
    @rule()
    def resume(self) -> None:
        if self.state != "paused":
            with pytest.raises(SessionError):
                self.session.resume(self.now)
            return
        self.session.resume(self.now)
        self.touch()
        self.state = "running"

    @precondition(lambda self: self.active)
    @rule(more=st.booleans())
    def pressure(self, more: bool) -> None:
        reply = self.session.pressure_advice(more, self.now)
        self.touch()
        step = self.routine.steps[self.step]
        assert reply.text == (step.more_pressure if more else step.less_pressure)

    @precondition(lambda self: self.active)
    @rule()
    def stop(self) -> None:
        self.session.stop(self.now)
        self.state = "completed" if self.session.steps_done == len(self.seconds) else "stopped"

    @precondition(lambda self: self.active and self.session.group)
    @rule(user=st.sampled_from(["ann", "bob", "cat"]))
    def join(self, user: str) -> None:
        if user in self.people or len(self.people) >= 3:
            with pytest.raises(SessionError):
                self.session.join(user, "giver", self.now)
            return
        self.session.join(user, "giver", self.now)
        self.touch()
        self.people.append(user)

    @precondition(lambda self: self.active and self.session.group)
    @rule(user=st.sampled_from(["host", "ann", "bob", "cat"]))
    def leave(self, user: str) -> None:
        if user not in self.people:
            with pytest.raises(SessionError):
                self.session.leave(user, self.now)
            return
        was_host = user == self.session.host
        self.session.leave(user, self.now)
        self.touch()
        self.people.remove(user)
        if not self.people:
            self.state = "completed" if self.session.steps_done == len(self.seconds) else "stopped"
        elif was_host:
            assert self.session.host == self.people[0]  # the earliest joiner

    @invariant()
    def step_in_range(self) -> None:
        assert 0 <= self.session.step_index < len(self.routine.steps)

    @invariant()
    def matches_the_model(self) -> None:
        assert self.session.state == self.state
        if self.active:
            assert self.session.step_index == self.step
            assert self.session.view(self.now).seconds_left == pytest.approx(self.left)
            assert self.session.can_control(self.session.host)
            assert [p.user_id for p in self.session.participants] == self.people

    @invariant()
    def timers_never_linger(self) -> None:
        state = self.session.state
        assert (self.session.due_at is not None) == (state in ("running", "time_up"))
        assert (self.session.remaining is not None) == (state == "paused")


def test_command_sequences_keep_the_invariants(routine: Routine) -> None:
    SessionModel.routine = routine
    run_state_machine_as_test(
        SessionModel, settings=settings(max_examples=150, stateful_step_count=40, deadline=None)
    )


# The engine, with the store on a real SQLite file and a real PostgreSQL database ----


async def started(engine: SessionEngine, user: str = "me", place: str = "console") -> str:
    update = await engine.start(place, user, "tiny")
    assert update.kind == "started" and update.session is not None
    return update.session.id


async def to_state(engine: SessionEngine, clock: FakeClock, state: str) -> str:
    """A session of "me" at step 1, running, paused, or with its time up."""
    session_id = await started(engine)
    await engine.next_step(session_id, "me")
    if state == "paused":
        await engine.pause(session_id, "me")
    if state == "time_up":
        clock.advance(3 * STEP)
        await engine.tick()
    return session_id


COMMANDS = ["next", "back", "pause", "resume", "stop", "more", "less", "ask", "join", "leave"]
EXPECTED: dict[tuple[str, str], str] = {
    ("running", "next"): "step/running/2",
    ("running", "back"): "step/running/0",
    ("running", "pause"): "paused/paused/1",
    ("running", "resume"): "refused",
    ("running", "stop"): "ended/stopped/1",
    ("paused", "next"): "step/paused/2",
    ("paused", "back"): "step/paused/0",
    ("paused", "pause"): "refused",
    ("paused", "resume"): "resumed/running/1",
    ("paused", "stop"): "ended/stopped/1",
    ("time_up", "next"): "ended/completed/3",
    ("time_up", "back"): "step/running/2",
    ("time_up", "pause"): "refused",
    ("time_up", "resume"): "refused",
    ("time_up", "stop"): "ended/completed/3",
}


async def run_command(engine: SessionEngine, command: str, session_id: str) -> Update:
    actions = {
        "next": engine.next_step,
        "back": engine.previous_step,
        "pause": engine.pause,
        "resume": engine.resume,
        "stop": engine.stop,
        "more": engine.more_pressure,
        "less": engine.less_pressure,
        "leave": engine.leave,
    }
    if command == "ask":
        return await engine.ask("console", "me", "should I use oil")
    if command == "join":  # a personal session is joined by invitation only
        return await engine.join(session_id, "partner")
    return await actions[command](session_id, "me")


async def with_partner(engine: SessionEngine, session_id: str, partner: str = "partner") -> Update:
    """Invite `partner` to the session of "me", and accept."""
    await engine.invite(session_id, "me", partner)
    return await engine.answer_invitation(session_id, partner, accept=True)


@pytest.mark.parametrize("state", ["running", "paused", "time_up", "ended"])
@pytest.mark.parametrize("command", COMMANDS)
async def test_every_command_in_every_state(
    engine: SessionEngine,
    clock: FakeClock,
    store: Store,
    kb: KnowledgeBase,
    state: str,
    command: str,
) -> None:
    session_id = await to_state(engine, clock, "running" if state == "ended" else state)
    if state == "ended":
        await engine.stop(session_id, "me")
        if command == "ask":  # no session any more: a plain question
            update = await engine.ask("console", "me", "should I use oil")
            assert (update.kind, update.session, update.reply.kind) == ("reply", None, "answer")
        else:
            with pytest.raises(NoSession):
                await run_command(engine, command, session_id)
        return
    before = engine.get(session_id)
    assert before is not None
    expected = EXPECTED.get((state, command))
    if command in ("more", "less", "ask"):
        expected = f"reply/{state}/{before.step_index}"
    if command == "join":
        expected = "refused"
    if command == "leave":
        expected = f"ended/{'completed' if state == 'time_up' else 'stopped'}/{before.step_index}"
    if expected == "refused":
        with pytest.raises(SessionError):
            await run_command(engine, command, session_id)
        assert engine.get(session_id) == before
        return
    update = await run_command(engine, command, session_id)
    assert update.session is not None
    assert f"{update.kind}/{update.session.state}/{update.session.step_index}" == expected
    # written before it was reported: the stored session says the same
    stored = await store.load_session(session_id, kb.routines)
    assert stored is not None
    assert (stored.state, stored.step_index) == (update.session.state, update.session.step_index)
    assert (update.summary is not None) == (update.kind == "ended")


async def test_a_second_start_in_the_same_place_reports_the_first(engine: SessionEngine) -> None:
    session_id = await started(engine)
    again = await engine.start("console", "me", "tiny")
    assert again.kind == "existing" and again.session is not None
    assert again.session.id == session_id
    elsewhere = await engine.start("channel-2", "me", "tiny")
    assert elsewhere.kind == "started" and elsewhere.session.id != session_id


async def test_start_needs_a_known_routine_or_a_favourite(
    engine: SessionEngine, store: Store
) -> None:
    with pytest.raises(SessionError, match="Which routine"):
        await engine.start("console", "me")
    with pytest.raises(SessionError, match=r"no routine 'nope'.*tiny"):
        await engine.start("console", "me", "nope")
    with pytest.raises(SessionError, match="no routine") as long_name:
        await engine.start("console", "me", "nope" * 1500)  # Discord allows 6,000
    assert len(str(long_name.value)) < 1000
    await store.set_favourite_routine("me", "tiny")
    update = await engine.start("console", "me")
    assert update.session is not None and update.session.routine_id == "tiny"


async def test_pressure_requests_become_the_usual_pressure(
    engine: SessionEngine, store: Store
) -> None:
    session_id = await started(engine)
    await with_partner(engine, session_id)
    await engine.more_pressure(session_id, "partner")
    await engine.more_pressure(session_id, "partner")
    await engine.less_pressure(session_id, "me")
    await engine.stop(session_id, "me")
    assert (await store.get_preferences("partner")).usual_pressure == "firmer"
    update = await engine.start("console", "partner", "tiny")
    assert update.usual_pressure == "firmer"


async def test_the_side_switch_is_announced(engine: SessionEngine, clock: FakeClock) -> None:
    session_id = await started(engine)
    clock.advance(STEP)
    (to_left,) = await engine.tick()
    assert (to_left.kind, to_left.session.step.side, to_left.other_side) == ("step", "left", False)
    to_right = await engine.next_step(session_id, "me")
    assert (to_right.session.step.side, to_right.other_side) == ("right", True)
    back_left = await engine.previous_step(session_id, "me")
    assert back_left.other_side


async def test_tick_reports_time_up_then_abandonment(
    engine: SessionEngine, clock: FakeClock, store: Store
) -> None:
    session_id = await started(engine)
    assert engine.next_deadline() == clock.now + STEP
    clock.advance(4 * STEP)
    (time_up,) = await engine.tick()
    assert time_up.kind == "time_up"
    assert await engine.tick() == []
    clock.advance(ABANDON_AFTER_SECONDS)
    (ended,) = await engine.tick()
    assert ended.kind == "ended" and ended.summary.outcome == "abandoned"
    assert engine.find("console", "me") is None and engine.next_deadline() is None
    events = [event.kind for event in await store.session_events(session_id)]
    assert events == ["started", "time_up", "abandoned"]


async def test_a_red_flag_question_pauses_the_session(
    engine: SessionEngine, asker: FakeAsker
) -> None:
    session_id = await started(engine)
    await engine.next_step(session_id, "me")
    update = await engine.ask("console", "me", "her arm went numb")
    assert update.reply.kind == "safety" and update.paused_for_safety
    assert update.session.state == "paused"
    assert asker.asked[-1] == ("her arm went numb", StepContext("tiny", 1, 150.0, False))
    again = await engine.ask("console", "me", "still numb")  # already paused: stays so
    assert not again.paused_for_safety and again.session.state == "paused"


async def test_unanswered_questions_are_counted_for_curators(
    engine: SessionEngine, store: Store
) -> None:
    await engine.ask("console", "me", "What's on TV")
    await started(engine)
    await engine.ask("console", "me", "what's  on tv")
    (question,) = await store.unanswered_questions()
    assert (question.question, question.times_asked) == ("what's on tv", 2)


async def test_group_sessions_follow_the_host(
    engine: SessionEngine, store: Store, clock: FakeClock
) -> None:
    await store.set_server_settings("guild", ServerSettings(participant_limit=3))
    update = await engine.start("channel", "host", "tiny", group=True, server_id="guild")
    session_id = update.session.id
    assert update.session.participant_limit == 3
    joined = await engine.join(session_id, "ann")
    assert (joined.kind, joined.user_id, joined.session.participants[-1].role) == (
        "joined",
        "ann",
        "giver",
    )
    clock.advance(1)
    await engine.join(session_id, "bob")
    with pytest.raises(SessionError, match="full"):
        await engine.join(session_id, "cat")
    assert engine.find("channel", "ann").id == session_id
    with pytest.raises(SessionError, match="Only the host"):
        await engine.next_step(session_id, "ann")
    with pytest.raises(SessionError, match="not in this session"):
        await engine.next_step(session_id, "cat")
    more = await engine.more_pressure(session_id, "bob")  # anyone in it may ask
    assert more.reply is not None
    control = await engine.hand_control(session_id, "host", "bob")
    assert (control.kind, control.user_id) == ("control", "bob")
    assert (await engine.next_step(session_id, "bob")).session.step_index == 1
    left = await engine.leave(session_id, "host")
    assert (left.kind, left.session.host) == ("left", "ann")
    assert engine.find("channel", "host") is None
    await engine.leave(session_id, "ann")
    ended = await engine.leave(session_id, "bob")
    assert ended.kind == "ended" and ended.summary.outcome == "stopped"
    assert engine.get(session_id) is None


async def test_joining_needs_no_other_session_in_that_place(engine: SessionEngine) -> None:
    mine = await started(engine, "me", "channel")
    theirs = (await engine.start("channel", "you", "tiny", group=True)).session.id
    with pytest.raises(SessionError, match="already have a session"):
        await engine.join(theirs, "me")
    with pytest.raises(SessionError, match="Only group sessions"):
        await engine.join(mine, "you2")
    with pytest.raises(SessionError, match="its own channel"):
        await engine.join(theirs, "you2", place="elsewhere")
    assert (await engine.join(theirs, "you2", place="channel")).kind == "joined"


async def test_a_partner_joins_only_by_accepting(engine: SessionEngine, clock: FakeClock) -> None:
    started_with = await engine.start("channel", "me", "tiny", partner="you")
    session_id = started_with.session.id
    assert started_with.session.invited == "you" and len(started_with.session.participants) == 1
    with pytest.raises(SessionError, match="for someone else"):
        await engine.answer_invitation(session_id, "stranger", accept=True)
    declined = await engine.answer_invitation(session_id, "you", accept=False)
    assert declined.session.invited is None and len(declined.session.participants) == 1
    await engine.invite(session_id, "me", "you")
    clock.advance(301)  # too late
    with pytest.raises(SessionError, match="expired"):
        await engine.answer_invitation(session_id, "you", accept=True)
    assert engine.get(session_id).invited is None
    await engine.invite(session_id, "me", "you")
    accepted = await engine.answer_invitation(session_id, "you", accept=True)
    receiver = accepted.session.participants[-1]
    assert (receiver.user_id, receiver.role, receiver.in_control) == ("you", "receiver", True)
    with pytest.raises(SessionError, match="room"):
        await engine.invite(session_id, "me", "third")


async def test_a_press_from_a_step_that_has_passed_is_not_applied(
    engine: SessionEngine, clock: FakeClock
) -> None:
    session_id = await started(engine)
    clock.advance(STEP)  # the timer moves on to step 2 as the person presses Next on step 1
    await engine.tick()
    update = await engine.next_step(session_id, "me", at_step=0)
    assert (update.kind, update.session.step_index) == ("current", 1)
    moved = await engine.next_step(session_id, "me", at_step=1)
    assert (moved.kind, moved.session.step_index) == ("step", 2)
    back = await engine.previous_step(session_id, "me", at_step=1)
    assert back.kind == "current"


async def test_every_change_is_announced_once_written(
    engine: SessionEngine, store: Store, kb: KnowledgeBase, clock: FakeClock
) -> None:
    heard: list[Update] = []
    engine.subscribe(heard.append)
    session_id = await started(engine)
    await engine.next_step(session_id, "me")
    clock.advance(STEP)
    await engine.tick()
    await engine.pause(session_id, "me")
    assert [u.kind for u in heard] == ["started", "step", "step", "paused"]
    versions = [u.session.version for u in heard]
    assert versions == sorted(versions) and len(set(versions)) == 4
    stored = await store.load_session(session_id, kb.routines)
    assert stored.event_seq == versions[-1]


async def test_a_failed_write_changes_nothing(
    engine: SessionEngine, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = await started(engine)
    before = engine.get(session_id)

    async def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("could not save to store.sqlite3: database or disk is full")

    monkeypatch.setattr(store, "save_sessions", broken)
    with pytest.raises(StoreError):
        await engine.next_step(session_id, "me")
    assert engine.get(session_id) == before


async def test_restore_brings_every_session_back_where_it_stands(
    kb: KnowledgeBase, db: str, asker: FakeAsker, clock: FakeClock
) -> None:
    async with await Store.open(db) as store:
        engine = SessionEngine(kb, store, asker, clock)
        running = await started(engine, "runner")
        paused = await started(engine, "pauser")
        clock.advance(100)
        await engine.pause(paused, "pauser")
        finished = await started(engine, "finisher")
        clock.advance(4 * STEP)
        await engine.tick()
    clock.advance(STEP + 20)  # the process is down for a while
    async with await Store.open(db) as store:
        engine = SessionEngine(kb, store, asker, clock)
        updates = {u.session.id: u for u in await engine.restore()}
        assert updates[running].kind == "restored"
        assert updates[running].session.state == "time_up"
        assert updates[paused].session.step_index == 0
        assert updates[paused].session.seconds_left == STEP - 100
        assert updates[finished].session.state == "time_up"
        assert engine.find("console", "pauser").seconds_left == STEP - 100
        clock.advance(ABANDON_AFTER_SECONDS)
    async with await Store.open(db) as store:
        engine = SessionEngine(kb, store, asker, clock)
        updates = {u.session.id: u for u in await engine.restore()}
        assert updates[running].kind == "ended"
        assert updates[running].summary.outcome == "abandoned"
        assert updates[paused].kind == "restored"


async def test_a_shard_process_restores_and_times_only_its_servers_sessions(
    kb: KnowledgeBase, db: str, asker: FakeAsker, clock: FakeClock
) -> None:
    servers = {shard: str(((7 * 2 + shard) << 22) | 99) for shard in (0, 1)}  # shards of 2
    async with await Store.open(db) as store:
        engine = SessionEngine(kb, store, asker, clock)
        ids = {shard: (await engine.start(f"channel-{shard}", "me", "tiny", server_id=server))
               .session.id for shard, server in servers.items()}  # fmt: skip
        direct = await started(engine, "dm-user", "dm-channel")  # no server: shard 0's
    clock.advance(STEP + 1)
    async with await Store.open(db) as store:
        first = SessionEngine(kb, store, asker, clock, shards=Shards.of(2, (0,)))
        assert {u.session.id for u in await first.restore()} == {ids[0], direct}
        second = SessionEngine(kb, store, asker, clock, shards=Shards.of(2, (1,)))
        (restored,) = await second.restore()
        assert (restored.session.id, restored.session.step_index) == (ids[1], 1)
        clock.advance(STEP)
        assert {u.session.id for u in await second.tick()} == {ids[1]}
        assert second.get(ids[0]) is None and first.get(ids[1]) is None


async def test_a_running_session_moves_on_by_the_time_it_was_down(
    kb: KnowledgeBase, db: str, asker: FakeAsker, clock: FakeClock
) -> None:
    async with await Store.open(db) as store:
        session_id = await started(SessionEngine(kb, store, asker, clock))
    clock.advance(STEP + 40)
    async with await Store.open(db) as store:
        engine = SessionEngine(kb, store, asker, clock)
        (update,) = await engine.restore()
        assert (update.session.step_index, update.session.seconds_left) == (1, STEP - 40)
        assert engine.next_deadline() == clock.now + STEP - 40
        assert (await engine.next_step(session_id, "me")).session.step_index == 2


async def test_a_session_whose_routine_was_removed_is_stopped(
    tmp_path: Path,
    db: str,
    asker: FakeAsker,
    clock: FakeClock,
    make_knowledge: Callable[[Path], Path],
) -> None:
    kb = load_knowledge(make_knowledge(tmp_path / "first"))
    async with await Store.open(db) as store:
        session_id = await started(SessionEngine(kb, store, asker, clock))
    other = make_knowledge(tmp_path / "second")
    text = (other / "routines" / "tiny.yaml").read_text().replace("id: tiny", "id: other")
    (other / "routines" / "tiny.yaml").write_text(text)
    async with await Store.open(db) as store:
        engine = SessionEngine(load_knowledge(other), store, asker, clock)
        assert await engine.restore() == []
        assert (await store.load_session(session_id, kb.routines)).state == "stopped"


async def test_the_real_assistant_answers_in_a_session_and_red_flags_pause_it(
    kb: KnowledgeBase, store: Store, clock: FakeClock
) -> None:
    engine = SessionEngine(kb, store, Assistant(kb), clock)
    session_id = await started(engine)
    answer = await engine.ask("console", "me", "should I use oil or lotion")
    assert (answer.reply.kind, answer.reply.id, answer.session.state) == (
        "answer",
        "oil-or-lotion",
        "running",
    )
    red_flag = await engine.ask("console", "me", "her fingers are tingling")
    assert red_flag.reply.kind == "safety" and red_flag.paused_for_safety
    assert engine.get(session_id).state == "paused"


async def test_the_packaged_routines_run_from_start_to_end(store: Store, clock: FakeClock) -> None:
    try:
        packaged = load_knowledge()
    except KnowledgeError as error:
        pytest.skip(f"the packaged knowledge does not validate yet: {error.problems[0]}")
    engine = SessionEngine(packaged, store, Assistant(packaged), clock)
    for routine in packaged.routines.values():
        update = await engine.start("console", routine.id, routine.id)
        session_id = update.session.id
        for index, step in enumerate(routine.steps[1:], start=1):
            more = await engine.more_pressure(session_id, routine.id)
            assert more.reply.text == routine.steps[index - 1].more_pressure
            update = await engine.next_step(session_id, routine.id)
            switched = other_side(routine.steps[index - 1], step)
            assert (update.session.step_index, update.other_side) == (index, switched)
        ended = await engine.next_step(session_id, routine.id)
        assert ended.summary.steps_done == len(routine.steps)
        assert ended.summary.next_time == routine.next_time
