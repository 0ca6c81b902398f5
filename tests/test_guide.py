"""What the spoken guide says and when: announcements, cues, and nothing while paused."""

from __future__ import annotations

from bot.guide import Cue, announcement, cues, due_cue, farewell, pressure_advice
from bot.knowledge import Routine
from bot.sessions import Session


def session_at(routine: Routine, now: float) -> Session:
    return Session.begin("s", "voice", routine, "host", "giver", group=False,
                         participant_limit=2, now=now)  # fmt: skip


def test_a_step_is_announced_with_its_side_and_instructions(kb) -> None:
    session = session_at(kb.routines["tiny"], 0.0)
    session.next_step(10.0)  # the left side
    said = announcement(session.view(10.0))
    assert said.startswith("Step 2 of 4. Left side fist. On the receiver's left side.")
    assert said.endswith(session.step.text)


def test_cues_come_halfway_and_ten_seconds_before_the_end(kb) -> None:
    session = session_at(kb.routines["tiny"], 100.0)  # 150 s steps
    assert cues(session.view(100.0), 100.0) == [Cue(175.0, "halfway"), Cue(240.0, "ten_seconds")]
    assert cues(session.view(200.0), 200.0) == [Cue(240.0, "ten_seconds")]
    session.pause(200.0)
    assert cues(session.view(200.0), 200.0) == []  # nothing plays while paused


def test_the_farewell_says_how_it_went(kb) -> None:
    session = session_at(kb.routines["tiny"], 0.0)
    session.stop(30.0)
    assert "1 of 4" not in farewell(session.summary())
    assert farewell(session.summary()).startswith("The session has ended, after 0 of 4 steps")


def test_only_the_latest_cue_due_is_said_and_none_once_the_step_is_over(kb) -> None:
    session = session_at(kb.routines["tiny"], 100.0)  # 150 s steps: due at 250
    planned = cues(session.view(100.0), 100.0)
    assert due_cue(planned, session.view(170.0), 170.0) == (None, planned)
    assert due_cue(planned, session.view(175.0), 175.0) == (planned[0], planned[1:])
    # the clock jumped past both cues: "halfway" would be wrong by now
    assert due_cue(planned, session.view(241.0), 241.0) == (planned[1], [])
    assert due_cue(planned, session.view(100.0), 250.0) == (None, [])  # the step's time is up
    session.pause(241.0)
    assert due_cue(planned, session.view(241.0), 241.0) == (None, [])  # nothing while paused


def test_pressure_advice_says_what_was_asked() -> None:
    assert pressure_advice(True, "Lean in.") == "More pressure, please. Lean in."
    assert pressure_advice(False, "Lighter.") == "Less pressure, please. Lighter."
