"""What the spoken guide says, and when: a step's words as it starts, and the cues during it.

Plain data for a door with a voice (Discord's voice channels): the announcement of a
step, a "halfway" and a "ten seconds" cue at moments of the session's clock, and the
giver's advice when the receiver asks for more or less pressure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.sessions import SessionView, Summary

CueKind = Literal["halfway", "ten_seconds"]
CUE_WORDS: dict[CueKind, str] = {
    "halfway": "Halfway through this step.",
    "ten_seconds": "Ten seconds, then the next step.",
}
SHORTEST_CUED_STEP = 40  # seconds: a shorter step gets no cues, just its announcement
TIME_UP = "Time is up for the last step. Press Next or Stop to finish."


@dataclass(frozen=True, slots=True)
class Cue:
    at: float  # a moment of the session's clock
    kind: CueKind

    @property
    def words(self) -> str:
        return CUE_WORDS[self.kind]


def announcement(view: SessionView) -> str:
    """A step as it starts: its number, title and instructions."""
    step = view.step
    side = f" On the receiver's {step.side} side." if step.side else ""
    return f"Step {view.step_index + 1} of {view.step_count}. {step.title}.{side} {step.text}"


def cues(view: SessionView, now: float) -> list[Cue]:
    """The cues still to come in the running step, soonest first (none while paused)."""
    if view.state != "running" or view.due_at is None:
        return []
    seconds = view.step.seconds
    if seconds < SHORTEST_CUED_STEP:
        return []
    planned = [Cue(view.due_at - seconds / 2, "halfway"), Cue(view.due_at - 10, "ten_seconds")]
    return [cue for cue in planned if cue.at > now]


def due_cue(planned: list[Cue], view: SessionView, now: float) -> tuple[Cue | None, list[Cue]]:
    """The cue to say at `now`, and the `planned` cues still to come.

    Of the cues due only the latest is said (the clock may have passed several at once),
    and none once the step's time is up or while paused: the next step speaks instead.
    """
    due = [cue for cue in planned if cue.at <= now]
    later = [cue for cue in planned if cue.at > now]
    running = view.state == "running" and view.due_at is not None and now < view.due_at
    return (due[-1] if due and running else None), later


def pressure_advice(more: bool, advice: str) -> str:
    """The receiver's request and the step's advice for the giver, to be said aloud."""
    return f"{'More' if more else 'Less'} pressure, please. {advice}"


def farewell(summary: Summary) -> str:
    """What the guide says as a session ends, before it leaves the channel."""
    if summary.outcome == "completed":
        return f"That's the end of {summary.routine_title}. Well done, both of you."
    return f"The session has ended, after {summary.steps_done} of {summary.step_count} steps."
