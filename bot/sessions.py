"""Guided sessions: a routine's steps in order, each on a timer computed from stored moments.

`Session` is the pure state machine. Every transition takes `now` (epoch seconds) and
nothing ticks: where a session stands is always computed from its moments
(`step_started_at`, `due_at` while running, `remaining` while paused), so a session
restored after a crash moves on by exactly the time that passed.

`SessionEngine` holds the active sessions of one process. It checks who may do what,
writes every change to the store before returning the `Update` that reports it, and
answers free questions through the assistant with the current step as context. Both
return plain data that the Discord cogs and the console render in their own way.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, Protocol

from bot.knowledge import KnowledgeBase, Routine, Step
from bot.reply import Reply, StepContext, echo
from bot.shards import Shards

if TYPE_CHECKING:
    from bot.store import ScheduledClass, Store

log = logging.getLogger(__name__)

Role = Literal["giver", "receiver"]
SessionState = Literal["running", "paused", "time_up", "completed", "stopped", "abandoned"]
EndState = Literal["completed", "stopped", "abandoned"]
UpdateKind = Literal[
    "started",  # a new session, at its first step
    "existing",  # start refused: the person already has this session here
    "restored",  # brought back after the process restarted
    "step",  # the step changed (next, back, or its time was up)
    "paused",
    "resumed",
    "time_up",  # the last step's time is up; next or stop finishes
    "ended",  # completed, stopped or abandoned: see `summary`
    "joined",
    "left",
    "control",  # the host handed control to someone
    "reply",  # pressure advice or the answer to a question
    "invited",  # a partner was asked to join as the receiver
    "current",  # nothing done: a press from a step that has passed; the session as it is
]
UsualPressure = Literal["firmer", "lighter"]

ACTIVE_STATES = frozenset({"running", "paused", "time_up"})
ABANDON_AFTER_SECONDS = 3600.0
PERSONAL_PARTICIPANT_LIMIT = 2  # the giver and the receiver
DEFAULT_GROUP_PARTICIPANT_LIMIT = 10
INVITE_SECONDS = 300.0  # a partner has this long to accept

Clock = Callable[[], float]
Listener = Callable[["Update"], None]


class Asker(Protocol):
    """What answers free questions: `bot.assistant.Assistant` or a test double."""

    def ask(self, question: str, context: StepContext | None = None) -> Reply: ...


class SessionError(Exception):
    """A command that cannot be done now; the message tells the person why."""


class NoSession(SessionError):
    """There is no active session to act on."""


class StoreError(Exception):
    """The store cannot be used or written to. The message is one line, for the person."""


@dataclass(frozen=True, slots=True)
class Participant:
    """Someone following a session. `join_order` decides who inherits control."""

    user_id: str
    role: Role
    join_order: int
    joined_at: float
    in_control: bool = False


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One line of a session's short event log."""

    seq: int
    at: float
    kind: str
    user_id: str | None
    step_index: int


@dataclass(frozen=True, slots=True)
class SessionView:
    """Where a session stands at one moment, for rendering."""

    id: str
    place: str
    routine_id: str
    routine_title: str
    state: SessionState
    step_index: int
    step_count: int
    step: Step
    due_at: float | None  # while running: when the step's time is up
    seconds_left: float  # while running or paused; 0 once time is up or ended
    later_seconds: int  # the steps after this one, so a reader can tell when it all ends
    host: str
    participants: tuple[Participant, ...]
    group: bool
    participant_limit: int
    version: int = 0  # counts the session's changes; the message shows the newest
    server_id: str | None = None
    invited: str | None = None  # a partner asked to receive, until they answer or time runs out
    invite_expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """The end of a session: how far it got and what to try next time."""

    outcome: EndState
    routine_title: str
    steps_done: int
    step_count: int
    minutes: float
    next_time: str


@dataclass(frozen=True, slots=True)
class Update:
    """What to show after a command or a timer: one kind, the session, and extras."""

    kind: UpdateKind
    session: SessionView | None
    other_side: bool = False  # the new step works the other side: "now the other side"
    reply: Reply | None = None
    paused_for_safety: bool = False  # a red-flag answer paused the session
    summary: Summary | None = None
    user_id: str | None = None  # who joined, left or was handed control
    usual_pressure: UsualPressure | None = None  # on "started": what suited last time
    problem: str | None = None  # on "reply": the answer stands, but saving the session failed


@dataclass(slots=True, eq=False)
class Session:
    """One guided session: its routine, its people, and the moments its timer is made of."""

    id: str
    place: str
    routine: Routine
    host: str
    participants: list[Participant]
    group: bool
    participant_limit: int
    started_at: float
    state: SessionState = "running"
    step_index: int = 0
    steps_done: int = 0  # steps finished, by their time or by `next`
    step_started_at: float = 0.0
    due_at: float | None = None  # running: when the step ends; time_up: when time was up
    remaining: float | None = None  # paused: the step's time left
    paused_at: float | None = None
    paused_seconds: float = 0.0  # pauses already resumed, left out of the minutes
    touched_at: float = 0.0  # the last command; an hour past it and time up, abandoned
    ended_at: float | None = None
    pressure: int = 0  # "more" minus "less" requests
    event_seq: int = 0
    server_id: str | None = None
    invited: str | None = None
    invite_expires_at: float | None = None
    clock_scale: float = 1.0  # the clock it runs under (faster only in demonstrations)

    @classmethod
    def begin(
        cls,
        session_id: str,
        place: str,
        routine: Routine,
        user_id: str,
        role: Role,
        *,
        group: bool,
        participant_limit: int,
        now: float,
        server_id: str | None = None,
        clock_scale: float = 1.0,
    ) -> Session:
        """A session at the first step of `routine`, its timer running from `now`."""
        session = cls(
            id=session_id,
            place=place,
            routine=routine,
            host=user_id,
            participants=[Participant(user_id, role, 0, now, in_control=True)],
            group=group,
            participant_limit=participant_limit,
            started_at=now,
            touched_at=now,
            server_id=server_id,
            clock_scale=clock_scale,
        )
        session._enter_step(0, now)
        return session

    def copy(self) -> Session:
        """An independent copy to change, so a failed write leaves this one as it was."""
        return replace(self, participants=list(self.participants))

    @property
    def step(self) -> Step:
        return self.routine.steps[self.step_index]

    @property
    def last_index(self) -> int:
        return len(self.routine.steps) - 1

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def deadline(self) -> float | None:
        """When the clock alone changes this session: a step's end, abandonment, or the
        end of a partner's invitation."""
        moments = []
        if self.state == "running" and self.due_at is not None:
            moments.append(self.due_at)
        if self.state == "time_up":
            moments.append(self.abandon_at)
        if self.active and self.invited is not None and self.invite_expires_at is not None:
            moments.append(self.invite_expires_at)
        return min(moments, default=None)

    @property
    def abandon_at(self) -> float:
        """An hour after the last step's time was up or the last command, whichever is later."""
        assert self.due_at is not None
        return max(self.due_at, self.touched_at) + ABANDON_AFTER_SECONDS

    def participant(self, user_id: str) -> Participant | None:
        return next((p for p in self.participants if p.user_id == user_id), None)

    def can_control(self, user_id: str) -> bool:
        """The host and whoever the host handed control to move the session."""
        participant = self.participant(user_id)
        return participant is not None and (user_id == self.host or participant.in_control)

    def _enter_step(self, index: int, now: float) -> None:
        """Make `index` current with a fresh timer; a paused session stays paused."""
        self.step_index = index
        self.step_started_at = now
        seconds = float(self.step.seconds)
        if self.state == "paused":
            self.due_at, self.remaining = None, seconds
        else:
            self.state = "running"
            self.due_at, self.remaining = now + seconds, None

    def _end(self, state: EndState, now: float) -> None:
        if self.state == "paused":
            assert self.paused_at is not None
            self.paused_seconds += now - self.paused_at
        self.state = state
        self.ended_at = now
        self.due_at = self.remaining = self.paused_at = None

    def catch_up(self, now: float) -> bool:
        """Move on by the time that passed; return whether anything changed.

        Each step whose time is up hands over to the next at the moment it ended, not
        when someone looks, so several steps may pass at once after a restart. When the
        last step's time is up the session waits (`time_up`) for next or stop, and ends
        as abandoned an hour later if nobody touches it.
        """
        changed = False
        if self.invited is not None and not self.invitation_open(now):
            self.invited = self.invite_expires_at = None
            changed = True
        while self.state == "running" and self.due_at is not None and now >= self.due_at:
            changed = True
            self.steps_done = max(self.steps_done, self.step_index + 1)
            if self.step_index == self.last_index:
                self.state = "time_up"
            else:
                ended_at = self.due_at
                self.step_index += 1
                self.step_started_at = ended_at
                self.due_at = ended_at + self.step.seconds
        if self.state == "time_up" and now >= self.abandon_at:
            assert self.due_at is not None
            last_sign_of_life = max(self.due_at, self.touched_at)
            self._end("abandoned", last_sign_of_life)
            changed = True
        return changed

    def next_step(self, now: float) -> None:
        """Move to the next step; past the last one the session is completed."""
        self.touched_at = now
        self.steps_done = max(self.steps_done, self.step_index + 1)
        if self.state == "time_up" or self.step_index == self.last_index:
            self._end("completed", now)
        else:
            self._enter_step(self.step_index + 1, now)

    def previous_step(self, now: float) -> None:
        """Go back one step (or restart the first one) with a fresh timer."""
        self.touched_at = now
        if self.state == "time_up":
            self.state = "running"
        self._enter_step(max(self.step_index - 1, 0), now)

    def pause(self, now: float) -> None:
        if self.state != "running":
            raise SessionError(_NOT_RUNNING[self.state])
        assert self.due_at is not None
        self.touched_at = now
        self.state = "paused"
        self.remaining = self.due_at - now
        self.paused_at = now
        self.due_at = None

    def resume(self, now: float) -> None:
        if self.state != "paused":
            raise SessionError("The session is not paused.")
        assert self.remaining is not None and self.paused_at is not None
        self.touched_at = now
        self.paused_seconds += now - self.paused_at
        self.state = "running"
        self.due_at = now + self.remaining
        self.remaining = self.paused_at = None

    def stop(self, now: float) -> None:
        """End the session: completed if every step was done, otherwise stopped."""
        self.touched_at = now
        done = self.steps_done == len(self.routine.steps)
        self._end("completed" if done else "stopped", now)

    def pressure_advice(self, more: bool, now: float) -> Reply:
        """The current step's advice to the giver when the receiver wants more or less."""
        self.touched_at = now
        self.pressure += 1 if more else -1
        step = self.step
        return Reply(
            question="more pressure" if more else "less pressure",
            kind="answer",
            text=step.more_pressure if more else step.less_pressure,
            id=step.id,
            title=step.title,
            score=100.0,
        )

    def join(self, user_id: str, role: Role, now: float) -> None:
        if self.participant(user_id) is not None:
            raise SessionError("You are already in this session.")
        if len(self.participants) >= self.participant_limit:
            raise SessionError(f"This session is full ({self.participant_limit} people).")
        self.touched_at = now
        order = max(p.join_order for p in self.participants) + 1
        self.participants.append(Participant(user_id, role, order, now))

    def leave(self, user_id: str, now: float) -> None:
        """Leave; the host's control passes to the earliest joiner, the last one out ends it."""
        if self.participant(user_id) is None:
            raise SessionError("You are not in this session.")
        self.touched_at = now
        self.participants = [p for p in self.participants if p.user_id != user_id]
        if not self.participants:
            self.stop(now)
        elif user_id == self.host:
            heir = min(self.participants, key=lambda p: p.join_order)
            self.host = heir.user_id
            self._grant_control(heir)

    def invite(self, user_id: str, now: float) -> None:
        """Ask `user_id` to join as the receiver, until `INVITE_SECONDS` from now."""
        if self.participant(user_id) is not None:
            raise SessionError("They are already in this session.")
        self.invited, self.invite_expires_at = user_id, now + INVITE_SECONDS

    def invitation_open(self, now: float) -> bool:
        return self.invited is not None and (self.invite_expires_at or 0.0) > now

    def answer_invitation(self, user_id: str, accept: bool, now: float) -> None:
        """The invited partner says yes (joins as the receiver, moving it too) or no."""
        if not self.invitation_open(now):
            raise SessionError("This invitation has expired (or was answered); ask for a new one.")
        if self.invited != user_id:
            raise SessionError("This invitation is for someone else.")
        self.invited = self.invite_expires_at = None
        if accept:
            self.join(user_id, "receiver", now)
            self._grant_control(self.participants[-1])
        else:
            self.touched_at = now

    def hand_control(self, by_user: str, to_user: str, now: float) -> None:
        """The host lets another participant move the session too."""
        if by_user != self.host:
            raise SessionError("Only the host can hand over control.")
        participant = self.participant(to_user)
        if participant is None:
            raise SessionError("That person is not in this session.")
        self.touched_at = now
        self._grant_control(participant)

    def _grant_control(self, participant: Participant) -> None:
        index = self.participants.index(participant)
        self.participants[index] = replace(participant, in_control=True)

    def view(self, now: float) -> SessionView:
        if self.state == "running":
            assert self.due_at is not None
            seconds_left = max(self.due_at - now, 0.0)
        elif self.state == "paused":
            assert self.remaining is not None
            seconds_left = self.remaining
        else:
            seconds_left = 0.0
        return SessionView(
            id=self.id,
            place=self.place,
            routine_id=self.routine.id,
            routine_title=self.routine.title,
            state=self.state,
            step_index=self.step_index,
            step_count=len(self.routine.steps),
            step=self.step,
            due_at=self.due_at if self.state == "running" else None,
            seconds_left=seconds_left,
            later_seconds=sum(step.seconds for step in self.routine.steps[self.step_index + 1 :]),
            host=self.host,
            participants=tuple(self.participants),
            group=self.group,
            participant_limit=self.participant_limit,
            version=self.event_seq,
            server_id=self.server_id,
            invited=self.invited if self.invitation_open(now) else None,
            invite_expires_at=self.invite_expires_at if self.invitation_open(now) else None,
        )

    def summary(self) -> Summary:
        assert self.ended_at is not None and self.state in ("completed", "stopped", "abandoned")
        worked = max(self.ended_at - self.started_at - self.paused_seconds, 0.0)
        return Summary(
            outcome=self.state,
            routine_title=self.routine.title,
            steps_done=self.steps_done,
            step_count=len(self.routine.steps),
            minutes=worked / 60,
            next_time=self.routine.next_time,
        )


_ABOUT_SOMEONE = frozenset({"joined", "left", "control", "invited"})
_NOT_RUNNING: dict[str, str] = {
    "paused": "The session is already paused.",
    "time_up": "The last step's time is already up: say next or stop to finish.",
}


def other_side(before: Step, after: Step) -> bool:
    """Whether moving from `before` to `after` switches to the receiver's other side."""
    return before.side is not None and after.side is not None and before.side != after.side


class SessionEngine:
    """Every active session of this process, kept in step with the store.

    Places are channel ids or ``"console"``; users are ids as strings. A person has at
    most one session per place. Commands raise `SessionError` (with a message for the
    person) when they cannot be done, and return an `Update` only once the change is
    written. Call `restore` once at start, then `tick` when `next_deadline` comes. With
    `shards`, a process restores (and so times) only the sessions of the servers it owns;
    Discord sends it no others to start or move.
    """

    def __init__(
        self,
        knowledge: KnowledgeBase,
        store: Store,
        asker: Asker,
        clock: Clock = time.time,
        *,
        clock_scale: float = 1.0,
        shards: Shards | None = None,
    ) -> None:
        self.knowledge = knowledge  # swap in a reloaded one; running sessions keep theirs
        self._store = store
        self.shards = shards  # the servers whose sessions this process restores (None: all)
        self.asker = asker  # swap in a new assistant with a reloaded knowledge base
        self._clock = clock
        self.clock_scale = clock_scale  # sessions stored under another scale are not resumed
        self._other_scales: dict[tuple[str, str], float] = {}  # (place, user): a session's scale
        self._listeners: list[Listener] = []
        self._sessions: dict[str, Session] = {}
        self._member_sessions: dict[tuple[str, str], str] = {}  # (place, user) -> session
        self._deadlines: list[tuple[float, str]] = []  # a heap; stale entries are skipped
        self._lock = asyncio.Lock()

    def now(self) -> float:
        """The engine's clock."""
        return self._clock()

    @property
    def store(self) -> Store:
        return self._store

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every change of a session, once it is written: commands,
        timers and restores alike (a door's one place to show sessions)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def _announce(self, update: Update) -> None:
        for listener in self._listeners:
            listener(update)

    # Looking up (no writes) ---------------------------------------------------------

    def find(self, place: str, user_id: str) -> SessionView | None:
        """The session `user_id` is in at `place`, as it stands now."""
        session_id = self._member_sessions.get((place, user_id))
        return self.get(session_id) if session_id else None

    def other_scale(self, place: str, user_id: str) -> float | None:
        """The clock scale of a session the person has here that was stored under another
        scale than this engine's (left as it was, not resumed), if any."""
        return self._other_scales.get((place, user_id))

    def place_of(self, user_id: str) -> str | None:
        """Where `user_id` most recently joined a session still in memory, if anywhere."""
        places = [place for place, user in self._member_sessions if user == user_id]
        return places[-1] if places else None

    def get(self, session_id: str) -> SessionView | None:
        """An active session by id (the id Discord buttons carry), as it stands now."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        current = session.copy()
        current.catch_up(now)
        return current.view(now) if current.active else None

    def active_sessions(self) -> list[SessionView]:
        now = self._clock()
        views = []
        for session in self._sessions.values():
            current = session.copy()
            current.catch_up(now)
            if current.active:
                views.append(current.view(now))
        return views

    async def update_for(self, session_id: str) -> Update | None:
        """A session as it is now, to show it: an active one from memory, an ended one (with
        its summary) from the store; None when there is no such session."""
        now = self._clock()
        session = self._sessions.get(session_id)
        if session is None:
            session = await self._store.load_session(session_id, self.knowledge.routines)
        if session is None:
            return None
        current = session.copy()
        current.catch_up(now)
        return self._update("restored" if current.active else "ended", current, now)

    def next_deadline(self) -> float | None:
        """The earliest moment `tick` has something to do."""
        while self._deadlines:
            deadline, session_id = self._deadlines[0]
            session = self._sessions.get(session_id)
            if session is not None and session.deadline == deadline:
                return deadline
            heapq.heappop(self._deadlines)
        return None

    # Starting and restoring ---------------------------------------------------------

    async def restore(self) -> list[Update]:
        """Bring back every active session from the store, moved on by the time that passed.

        Returns a "restored" update per session still active and an "ended" one per
        session abandoned while the process was down.
        """
        async with self._lock:
            now = self._clock()
            sessions, missing = await self._store.load_active_sessions(
                self.knowledge.routines, self.shards
            )
            for session_id in missing:
                await self._store.end_session_without_routine(session_id, now)
            caught_up = []
            for stored in sessions:
                if stored.clock_scale != self.clock_scale:  # its moments are another clock's
                    for participant in stored.participants:
                        self._other_scales[(stored.place, participant.user_id)] = stored.clock_scale
                    continue
                session = stored.copy()
                session.step_index = min(session.step_index, session.last_index)  # steps removed?
                session.steps_done = min(session.steps_done, len(session.routine.steps))
                session.catch_up(now)
                caught_up.append(session)
            await self._save(
                [(s, "restored" if s.active else s.state, None) for s in caught_up], now
            )
            updates = []
            for session in caught_up:
                self._keep(session)
                updates.append(
                    self._update("restored" if session.active else "ended", session, now)
                )
            for update in updates:
                self._announce(update)
            return updates

    async def start(
        self,
        place: str,
        user_id: str,
        routine_id: str | None = None,
        *,
        role: Role = "giver",
        group: bool = False,
        server_id: str | None = None,
        partner: str | None = None,
        participant_limit: int | None = None,
    ) -> Update:
        """Start a routine (the person's favourite when `routine_id` is None).

        A person who already has a session here gets it back as an "existing" update,
        to resume or stop. Group sessions take their participant limit from the
        server's settings, unless given one (a class). A `partner` is invited to join as
        the receiver: nobody is made one without saying yes.
        """
        async with self._lock:
            now = self._clock()
            existing = self._current(place, user_id, now)
            if existing is not None:
                return self._update("existing", existing, now)
            scale = self.other_scale(place, user_id)
            if scale is not None:
                raise SessionError(
                    f"You have a session here stored with the clock {scale:g} times faster; "
                    "run with that time scale to resume or stop it."
                )
            if partner is not None and (group or partner == user_id):
                raise SessionError("Invite a partner to a personal session of yours.")
            preferences = await self._store.get_preferences(user_id)
            routine = self._routine(routine_id or preferences.favourite_routine)
            limit = PERSONAL_PARTICIPANT_LIMIT
            if group and participant_limit is not None:
                limit = participant_limit
            elif group and server_id is not None:
                limit = (await self._store.get_server_settings(server_id)).participant_limit
            elif group:
                limit = DEFAULT_GROUP_PARTICIPANT_LIMIT
            session = Session.begin(
                secrets.token_hex(6), place, routine, user_id, role,
                group=group, participant_limit=limit, now=now, server_id=server_id,
                clock_scale=self.clock_scale,
            )  # fmt: skip
            if partner is not None:
                session.invite(partner, now)
            await self._save([(session, "started", user_id)], now, participants=True)
            self._keep(session)
            update = self._update("started", session, now)
            update = replace(update, usual_pressure=preferences.usual_pressure)
            self._announce(update)
            return update

    def _routine(self, routine_id: str | None) -> Routine:
        routines = self.knowledge.routines
        choices = ", ".join(sorted(routines))
        if routine_id is None:
            raise SessionError(f"Which routine? Choose one of: {choices}.")
        routine = routines.get(routine_id)
        if routine is None:
            raise SessionError(f"There is no routine {echo(routine_id)}. Choose one of: {choices}.")
        return routine

    # Commands -----------------------------------------------------------------------

    async def next_step(
        self, session_id: str, user_id: str, *, place: str | None = None, at_step: int | None = None
    ) -> Update:
        """Next step; after the last one (or once time is up) the session is completed.

        `at_step` is the step (0-based) the person saw when they pressed: from a step that
        has passed already (the timer moved on), nothing is done (a "current" update).
        """
        return await self._command(session_id, user_id, "step", Session.next_step, place, at_step)

    async def previous_step(
        self, session_id: str, user_id: str, *, place: str | None = None, at_step: int | None = None
    ) -> Update:
        """Back one step with a fresh timer; at the first step, restart it (see `next_step`
        for `at_step`)."""
        action = Session.previous_step
        return await self._command(session_id, user_id, "step", action, place, at_step)

    async def pause(self, session_id: str, user_id: str, *, place: str | None = None) -> Update:
        return await self._command(session_id, user_id, "paused", Session.pause, place)

    async def resume(self, session_id: str, user_id: str, *, place: str | None = None) -> Update:
        return await self._command(session_id, user_id, "resumed", Session.resume, place)

    async def stop(self, session_id: str, user_id: str, *, place: str | None = None) -> Update:
        return await self._command(session_id, user_id, "ended", Session.stop, place)

    async def more_pressure(
        self, session_id: str, user_id: str, *, place: str | None = None
    ) -> Update:
        """The receiver wants more: this step's advice for the giver."""
        return await self._pressure(session_id, user_id, more=True, place=place)

    async def less_pressure(
        self, session_id: str, user_id: str, *, place: str | None = None
    ) -> Update:
        """The receiver wants less: this step's advice for the giver."""
        return await self._pressure(session_id, user_id, more=False, place=place)

    async def join(
        self, session_id: str, user_id: str, role: Role | None = None, *, place: str | None = None
    ) -> Update:
        """Join a group session (as a giver by default), from its own place."""
        async with self._lock:
            now = self._clock()
            session = await self._draft(session_id, now, place)
            if not session.group:
                raise SessionError("Only group sessions can be joined; a partner is invited.")
            held = self._member_sessions.get((session.place, user_id))
            if held is not None and held != session_id:
                raise SessionError("You already have a session here: stop or leave it first.")
            session.join(user_id, role or "giver", now)
            return await self._commit("joined", session, user_id, now, participants=True)

    async def invite(
        self, session_id: str, by_user: str, partner: str, *, place: str | None = None
    ) -> Update:
        """The host of a personal session asks `partner` to join as the receiver."""
        async with self._lock:
            now = self._clock()
            session = await self._draft(session_id, now, place)
            if by_user != session.host:
                raise SessionError("Only the host can invite a partner.")
            if session.group or len(session.participants) >= session.participant_limit:
                raise SessionError("Invite a partner to a personal session that has room.")
            session.invite(partner, now)
            return await self._commit("invited", session, partner, now)

    async def answer_invitation(
        self, session_id: str, user_id: str, *, accept: bool, place: str | None = None
    ) -> Update:
        """The invited partner accepts (joining as the receiver) or declines."""
        async with self._lock:
            now = self._clock()
            session = await self._draft(session_id, now, place)
            held = self._member_sessions.get((session.place, user_id))
            if accept and held is not None and held != session_id:
                raise SessionError("You already have a session here: stop or leave it first.")
            session.answer_invitation(user_id, accept, now)
            kind: UpdateKind = "joined" if accept else "invited"
            return await self._commit(kind, session, user_id, now, participants=accept)

    async def leave(self, session_id: str, user_id: str, *, place: str | None = None) -> Update:
        """Leave; the host's control passes on, and the last one out ends the session."""
        async with self._lock:
            now = self._clock()
            session = await self._draft(session_id, now, place)
            session.leave(user_id, now)
            kind: UpdateKind = "left" if session.active else "ended"
            return await self._commit(kind, session, user_id, now, participants=True)

    async def forget_person(self, user_id: str) -> list[ScheduledClass]:
        """Take `user_id` out of every session this engine runs (declining an invitation to
        one), then delete what the store keeps about them (see `Store.forget_person`); the
        classes they were to host, now cancelled."""
        held = [s for (_, user), s in self._member_sessions.items() if user == user_id]
        for session_id in held:
            with contextlib.suppress(SessionError):  # it ended meanwhile
                await self.leave(session_id, user_id)
        asked = [s.id for s in self._sessions.values() if s.invited == user_id]
        for session_id in asked:
            with contextlib.suppress(SessionError):
                await self.answer_invitation(session_id, user_id, accept=False)
        return await self._store.forget_person(user_id)

    async def hand_control(self, session_id: str, by_user: str, to_user: str) -> Update:
        """The host lets `to_user` move the session as well."""
        async with self._lock:
            now = self._clock()
            session = await self._draft(session_id, now)
            session.hand_control(by_user, to_user, now)
            return await self._commit("control", session, to_user, now, participants=True)

    async def ask(
        self, place: str, user_id: str, question: str, server_id: str | None = None
    ) -> Update:
        """Answer a free question, with the person's current step as context if any.

        A red-flag answer (kind "safety") pauses a running session. A question the
        assistant could not answer is kept for the people who curate the knowledge
        (those of `server_id` too, when it was asked in a server).
        """
        async with self._lock:
            now = self._clock()
            session = self._current(place, user_id, now)
            context = None
            if session is not None:
                view = session.view(now)
                paused = view.state == "paused"
                context = StepContext(view.routine_id, view.step_index, view.seconds_left, paused)
            reply = self.asker.ask(question, context)
            if reply.kind == "fallback":
                try:
                    await self._store.record_unanswered(question, now, server_id)
                except StoreError as error:  # the answer matters more than the tally
                    log.warning("could not keep an unanswered question: %s", error)
            if session is None:
                return Update("reply", None, reply=reply)
            session.touched_at = now
            paused = reply.kind == "safety" and session.state == "running"
            if paused:
                session.pause(now)
            event = "safety_pause" if paused else "question"
            try:
                update = await self._commit(
                    "reply", session, user_id, now, event=event, announce=False
                )
            except StoreError as error:
                current = self._update("reply", self._sessions[session.id], now)
                return replace(current, reply=reply, problem=str(error))
            update = replace(update, reply=reply, paused_for_safety=paused)
            if paused:
                self._announce(update)
            return update

    async def tick(self) -> list[Update]:
        """Apply every timer that is due: steps moving on, time up, abandonment."""
        async with self._lock:
            now = self._clock()
            moved: list[tuple[Session, UpdateKind, Step]] = []
            seen: set[str] = set()  # a deadline may have been pushed more than once
            while self._deadlines and self._deadlines[0][0] <= now:
                deadline, session_id = heapq.heappop(self._deadlines)
                stored = self._sessions.get(session_id)
                if stored is None or stored.deadline != deadline or session_id in seen:
                    continue
                seen.add(session_id)
                session = stored.copy()
                before, was = session.step, (session.step_index, session.state)
                session.catch_up(now)
                kind: UpdateKind = "step" if session.state == "running" else "time_up"
                if (session.step_index, session.state) == was:
                    kind = "invited"  # only the invitation ran out
                moved.append((session, kind if session.active else "ended", before))
            changes = [(s, s.state if kind == "ended" else kind, None) for s, kind, _ in moved]
            try:
                await self._save(changes, now)
            except BaseException:
                for session, _, _ in moved:  # unchanged: their timers stay due
                    stored = self._sessions[session.id]
                    assert stored.deadline is not None
                    heapq.heappush(self._deadlines, (stored.deadline, session.id))
                raise
            updates = []
            for session, kind, before in moved:
                self._keep(session)
                updates.append(self._update(kind, session, now, before))
            for update in updates:
                self._announce(update)
            return updates

    # Internals ----------------------------------------------------------------------

    def _current(self, place: str, user_id: str, now: float) -> Session | None:
        """A caught-up copy of the person's active session here, if any."""
        session_id = self._member_sessions.get((place, user_id))
        if session_id is None:
            return None
        session = self._sessions[session_id].copy()
        session.catch_up(now)
        return session if session.active else None

    async def _draft(self, session_id: str, now: float, place: str | None = None) -> Session:
        """A caught-up copy of an active session to change; `NoSession` if it has ended,
        `SessionError` when asked from another `place` than the session's own."""
        stored = self._sessions.get(session_id)
        if stored is None:
            raise NoSession("That session has ended.")
        if place is not None and place != stored.place:
            raise SessionError("That session's controls work only in its own channel.")
        session = stored.copy()
        if session.catch_up(now) and not session.active:
            await self._save([(session, session.state, None)], now)
            self._keep(session)
            self._announce(self._update("ended", session, now))
            raise NoSession("That session has ended.")
        return session

    async def _command(
        self,
        session_id: str,
        user_id: str,
        kind: UpdateKind,
        action: Callable[[Session, float], None],
        place: str | None = None,
        at_step: int | None = None,
    ) -> Update:
        async with self._lock:
            now = self._clock()
            session = await self._draft(session_id, now, place)
            if session.participant(user_id) is None:
                raise SessionError("You are not in this session.")
            if not session.can_control(user_id):
                raise SessionError("Only the host, or someone the host chose, moves this session.")
            if at_step is not None and at_step != session.step_index:
                return self._update("current", session, now)
            before = session.step
            action(session, now)
            if not session.active:
                kind = "ended"
            return await self._commit(kind, session, user_id, now, before=before)

    async def _pressure(
        self, session_id: str, user_id: str, *, more: bool, place: str | None = None
    ) -> Update:
        async with self._lock:
            now = self._clock()
            session = await self._draft(session_id, now, place)
            if session.participant(user_id) is None:
                raise SessionError("You are not in this session.")
            reply = session.pressure_advice(more, now)
            event = "more_pressure" if more else "less_pressure"
            update = await self._commit("reply", session, user_id, now, event=event)
            return replace(update, reply=reply)

    async def _commit(
        self,
        kind: UpdateKind,
        session: Session,
        user_id: str,
        now: float,
        *,
        participants: bool = False,
        event: str | None = None,
        before: Step | None = None,
        announce: bool = True,
    ) -> Update:
        """Write the changed session, then make it the current one and report it (to the
        listeners too, unless the caller will once it has added to the update)."""
        event_kind = event or (session.state if kind == "ended" else kind)
        await self._save([(session, event_kind, user_id)], now, participants=participants)
        self._keep(session)
        update = self._update(kind, session, now, before)
        update = replace(update, user_id=user_id) if kind in _ABOUT_SOMEONE else update
        if announce:
            self._announce(update)
        return update

    async def _save(
        self,
        changes: list[tuple[Session, str, str | None]],
        now: float,
        *,
        participants: bool = False,
    ) -> None:
        """Write (session, event kind, user) changes in one go, then note usual pressures."""
        if not changes:
            return
        records = []
        for session, event_kind, user_id in changes:
            session.event_seq += 1
            event = SessionEvent(session.event_seq, now, event_kind, user_id, session.step_index)
            records.append((session, event))
        await self._store.save_sessions(records, participants=participants)
        for session, _, _ in changes:
            if not session.active:
                await self._remember_pressure(session)

    async def _remember_pressure(self, session: Session) -> None:
        """A personal session's net pressure requests become the receiver's usual pressure."""
        if session.group or session.pressure == 0:
            return
        receiver = next((p for p in session.participants if p.role == "receiver"), None)
        user_id = receiver.user_id if receiver else session.host
        pressure: UsualPressure = "firmer" if session.pressure > 0 else "lighter"
        await self._store.set_usual_pressure(user_id, pressure)

    def _keep(self, session: Session) -> None:
        """Make `session` the current state in memory (forgetting it once it has ended)."""
        old = self._sessions.pop(session.id, None)
        for participant in old.participants if old else ():
            key = (session.place, participant.user_id)
            if self._member_sessions.get(key) == session.id:
                del self._member_sessions[key]
        if not session.active:
            return
        self._sessions[session.id] = session
        for participant in session.participants:
            self._member_sessions[(session.place, participant.user_id)] = session.id
        if session.deadline is not None:
            heapq.heappush(self._deadlines, (session.deadline, session.id))

    def _update(
        self, kind: UpdateKind, session: Session, now: float, before: Step | None = None
    ) -> Update:
        if not session.active:
            return Update(kind, session.view(now), summary=session.summary())
        switched = kind == "step" and before is not None and other_side(before, session.step)
        return Update(kind, session.view(now), other_side=switched)
