"""Scheduled classes: a group session at a set time in a server channel, led by its host,
for up to hundreds of people. Plain rules over the store and the engine; the Discord cog
adds the server's scheduled event and tells the people interested.

A class is scheduled, then started (its session opened) once its time has come, by the
one process that wins the store's compare-and-set; a class whose time passed more than
`LATE_LIMIT_SECONDS` ago (the bot was down) is marked missed instead. Cancelled classes
and missed ones are kept for the record until pruned.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.reply import echo
from bot.sessions import Clock, SessionEngine, SessionError, Update
from bot.shards import Shards
from bot.store import ScheduledClass, Store, StoreError

log = logging.getLogger(__name__)

CLASS_PARTICIPANT_LIMIT = 500
LATE_LIMIT_SECONDS = 15 * 60
LATE_NOTE_SECONDS = 60  # started later than this: the class says so
MIN_AHEAD_SECONDS = 60
MAX_AHEAD_DAYS = 365
MAX_SCHEDULED_PER_SERVER = 25


class ClassError(ValueError):
    """A class cannot be scheduled or cancelled as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Opening:
    """What became of a class whose time came: its session (`update`), or why not."""

    scheduled: ScheduledClass
    update: Update | None
    late_seconds: float
    problem: str | None = None  # why it was missed

    @property
    def late_minutes(self) -> int:
        """Whole minutes late, when late enough to say so (else 0)."""
        return round(self.late_seconds / 60) if self.late_seconds > LATE_NOTE_SECONDS else 0


class Classes:
    """Scheduling, listing, cancelling and opening classes."""

    def __init__(self, store: Store, engine: SessionEngine, clock: Clock) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock

    async def check(self, server_id: str, routine_id: str, starts_at: float) -> None:
        """Raise `ClassError` unless a class of `routine_id` may be scheduled at `starts_at`
        (before its Discord event is made)."""
        if routine_id not in self.engine.knowledge.routines:
            choices = ", ".join(sorted(self.engine.knowledge.routines))
            raise ClassError(f"There is no routine {echo(routine_id)}. Choose one of: {choices}.")
        now = self.clock()
        if starts_at < now + MIN_AHEAD_SECONDS:
            raise ClassError("That time has passed (or is within a minute): choose a later one.")
        if starts_at > now + MAX_AHEAD_DAYS * 86_400:
            raise ClassError(f"Schedule classes at most {MAX_AHEAD_DAYS} days ahead.")
        if len(await self.store.classes(server_id=server_id)) >= MAX_SCHEDULED_PER_SERVER:
            raise ClassError(
                f"This server already has {MAX_SCHEDULED_PER_SERVER} classes scheduled: "
                "cancel one first."
            )

    async def schedule(
        self,
        server_id: str,
        channel_id: str,
        host_id: str,
        routine_id: str,
        starts_at: float,
        *,
        event_id: str | None = None,
        voice_channel_id: str | None = None,
    ) -> ScheduledClass:
        """Keep a class (checked by `check` first)."""
        scheduled = ScheduledClass(
            secrets.token_hex(4), server_id, channel_id, host_id, routine_id, starts_at,
            event_id, "scheduled", None, self.clock(), voice_channel_id,
        )  # fmt: skip
        await self.store.add_class(scheduled)
        return scheduled

    async def upcoming(self, server_id: str) -> list[ScheduledClass]:
        return await self.store.classes(server_id=server_id)

    async def cancel(self, server_id: str, class_id: str) -> ScheduledClass:
        """Cancel a scheduled class of `server_id`; raise `ClassError` when there is none."""
        found = await self.store.class_by_id(class_id)
        if found is None or found.server_id != server_id or found.state != "scheduled":
            raise ClassError("There is no such class scheduled here: see `/massage class list`.")
        if not await self.store.set_class_state(found.id, "cancelled", was="scheduled"):
            raise ClassError("That class has just started or been cancelled.")
        return found

    async def cancel_for_event(self, event_id: str) -> ScheduledClass | None:
        """The class of a Discord event deleted or cancelled in the server, now cancelled
        too (None when there was none still scheduled)."""
        found = await self.store.class_of_event(event_id)
        if found is None or found.state != "scheduled":
            return None
        cancelled = await self.store.set_class_state(found.id, "cancelled", was="scheduled")
        return found if cancelled else None

    async def open_due(self, shards: Shards | None = None) -> AsyncIterator[Opening]:
        """Open every class whose time has come (of the servers `shards` owns), one at a
        time: its group session starts, led by the host, or it is marked missed when too
        late. A class the store fails on is logged and left to the next look."""
        now = self.clock()
        for due in await self.store.classes(starting_before=now, shards=shards):
            try:
                opening = await self._open(due, now)
            except StoreError as error:
                log.warning("class %s: could not open it: %s", due.id, error)
                continue
            if opening is not None:
                yield opening

    async def _open(self, due: ScheduledClass, now: float) -> Opening | None:
        late = now - due.starts_at
        if late > LATE_LIMIT_SECONDS:
            if not await self.store.set_class_state(due.id, "missed", was="scheduled"):
                return None  # another process got there first
            minutes = round(late / 60)
            return Opening(due, None, late, f"I was offline until {minutes} minutes after it.")
        if not await self.store.set_class_state(due.id, "started", was="scheduled"):
            return None
        try:
            update = await self.engine.start(
                due.channel_id, due.host_id, due.routine_id, group=True,
                server_id=due.server_id, participant_limit=CLASS_PARTICIPANT_LIMIT,
            )  # fmt: skip
            if update.kind == "existing":
                raise SessionError("The host already had a session running in that channel.")
        except SessionError as error:
            await self.store.set_class_state(due.id, "missed", was="started")
            return Opening(due, None, late, str(error))
        except StoreError:
            await self.store.set_class_state(due.id, "scheduled", was="started")  # try again
            raise
        assert update.session is not None
        try:
            await self.store.set_class_state(
                due.id, "started", was="started", session_id=update.session.id
            )
        except StoreError as error:  # it runs: say so all the same
            log.warning("class %s: could not note its session: %s", due.id, error)
        return Opening(due, update, late)
