"""Coming back every week: weekly reminders, a person's and a server's stats, and people's
own data. Plain data and the store; the Discord cog and the console show it their way."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot.reminders import WEEKDAYS, ReminderError, WeeklyTime, next_occurrence, parse_weekly
from bot.reply import echo
from bot.sessions import Clock
from bot.shards import Shards
from bot.stats import WEEK, WEEKS_CHARTED, PersonStats, ServerStats, person_stats, server_stats
from bot.store import Reminder, Store, UnansweredQuestion

log = logging.getLogger(__name__)

MAX_REMINDERS = 10  # per person
REMINDER_TEXT = (
    "Your weekly reminder: time for a massage together. Start a guided routine with "
    "`/massage start` (routines: `/massage routines`)."
)
SERVER_REMINDER_TEXT = (
    "Weekly reminder from {host}: time for a massage together. Start a guided routine with "
    "`/massage start`, or join the class if one is running."
)


class HabitError(ValueError):
    """What a person asked cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class YourStats:
    """A person's numbers and their usual pressure."""

    numbers: PersonStats
    usual_pressure: str | None


@dataclass(frozen=True, slots=True)
class ServerReport:
    numbers: ServerStats
    unanswered: tuple[UnansweredQuestion, ...]


class Habits:
    """Reminders, stats and people's own data, over one store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    # Reminders -----------------------------------------------------------------------

    async def add_weekly_reminder(
        self,
        user_id: str,
        day: str,
        at: str,
        zone: str,
        *,
        server_id: str | None = None,
        channel_id: str | None = None,
    ) -> Reminder:
        """A weekly reminder for a person (a DM), or for a server's channel; `HabitError`
        (or `ReminderError`) with a reason when it cannot be set."""
        when = parse_weekly(day, at, zone)
        if len(await self.store.reminders_of(user_id)) >= MAX_REMINDERS:
            raise HabitError(f"You have {MAX_REMINDERS} reminders already; cancel one first.")
        now = self.clock()
        reminder = Reminder(
            id=secrets.token_hex(4),
            user_id=user_id,
            server_id=server_id,
            channel_id=channel_id,
            weekday=when.weekday,
            at_time=f"{when.at:%H:%M}",
            zone=when.zone,
            next_at=next_occurrence(when, now),
            created_at=now,
        )
        await self.store.add_reminder(reminder)
        return reminder

    async def cancel_reminder(self, user_id: str, reminder_id: str) -> None:
        if not await self.store.delete_reminder(reminder_id.strip().lower(), user_id):
            raise HabitError(f"You have no reminder {echo(reminder_id)}: see your list for its id.")

    async def due_reminders(
        self, shards: Shards | None = None, *, user_id: str | None = None,
        other_than: str | None = None,
    ) -> AsyncIterator[Reminder]:
        """The reminders this process is to send now, one at a time: each due one it claimed
        (moving it on to its next week), so that with several processes every occurrence
        is sent once; claim the next only once this one is sent, so that a store failing
        midway loses none (`user_id`, `other_than`: see `Store.due_reminders`)."""
        now = self.clock()
        due = await self.store.due_reminders(
            now, shards=shards, user_id=user_id, other_than=other_than
        )
        for reminder in due:
            try:
                following = next_occurrence(weekly_time(reminder), max(now, reminder.next_at))
            except ReminderError as error:  # a zone this machine does not know (a copied store)
                log.warning("reminder %s: %s; kept to a weekly beat", reminder.id, error)
                following = max(now, reminder.next_at) + WEEK
            if await self.store.claim_reminder(reminder, following):
                yield reminder

    # Stats ---------------------------------------------------------------------------

    async def your_stats(self, user_id: str) -> YourStats:
        """A person's numbers over every session the store still holds. Discord tells no
        one's time zone, so weeks are counted in the zone of their reminders (the one most
        of them use), or in UTC when they have none."""
        records = await self.store.session_records(since=0.0, user_id=user_id)
        zones = Counter(r.zone for r in await self.store.reminders_of(user_id))
        zone = zones.most_common(1)[0][0] if zones else "UTC"
        preferences = await self.store.get_preferences(user_id)
        return YourStats(person_stats(records, self.clock(), zone), preferences.usual_pressure)

    async def server_report(self, server_id: str) -> ServerReport:
        now = self.clock()
        since = now - WEEKS_CHARTED * WEEK
        records = await self.store.session_records(since=since, server_id=server_id)
        unanswered = await self.store.unanswered_questions(5, server_id)
        return ServerReport(server_stats(records, now), tuple(unanswered))

    # People's own data ---------------------------------------------------------------

    async def personal_data(self, user_id: str) -> dict[str, Any]:
        data = await self.store.personal_data(user_id)
        data["exported_at"] = self.clock()
        return data


def weekly_time(reminder: Reminder) -> WeeklyTime:
    return parse_weekly(WEEKDAYS[reminder.weekday], reminder.at_time, reminder.zone)


def describe(reminder: Reminder) -> str:
    """"`ab12cd34` Mondays at 20:00 (Europe/Berlin), in <#channel>"."""
    where = f", in <#{reminder.channel_id}>" if reminder.channel_id else ", by direct message"
    return f"`{reminder.id}` {weekly_time(reminder)}{where}"
