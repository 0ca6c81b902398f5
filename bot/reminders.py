"""Weekly reminders at a local time in a named time zone, daylight saving handled.

A reminder is a weekday and a clock time in a zone ("monday 20:00 Europe/Berlin"). Its
next occurrence is computed from the zone's rules each time, so a change of daylight
saving moves nothing: 20:00 stays 20:00 local. A clock time that does not exist on the
day the clocks go forward (02:30 in Berlin on the last Sunday of March) happens at the
same distance past the change (03:30); one that happens twice when they go back happens
once, the first time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from rapidfuzz import fuzz, process, utils

from bot.reply import echo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86_400


class ReminderError(ValueError):
    """A reminder that cannot be set as typed; the message says how to write it."""


@dataclass(frozen=True, slots=True)
class WeeklyTime:
    """Every week on `weekday` (0 is Monday) at `at`, local time in `zone`."""

    weekday: int
    at: dt.time
    zone: str

    def __str__(self) -> str:
        return f"{WEEKDAYS[self.weekday].title()}s at {self.at:%H:%M} ({self.zone})"


def parse_weekly(weekday: str, at: str, zone: str) -> WeeklyTime:
    """A `WeeklyTime` from what a person typed: "mon"/"monday", "20:00"/"8pm", a zone name."""
    day = weekday.strip().lower()
    matches = [n for n, name in enumerate(WEEKDAYS) if len(day) >= 2 and name.startswith(day)]
    if len(matches) != 1:
        raise ReminderError(f"{echo(weekday)} is not a day of the week: say monday ... sunday.")
    return WeeklyTime(matches[0], parse_time(at), check_zone(zone))


def parse_moment(day: str, at: str, zone: str, after: float) -> float:
    """The moment a one-off date and time name, local in `zone`: `day` is "today",
    "tomorrow", a weekday (the next one, today included if `at` is still to come) or a date
    ("2026-12-24"); `at` as `parse_time` reads it."""
    place, clock = ZoneInfo(check_zone(zone)), parse_time(at)
    today = dt.datetime.fromtimestamp(after, place).date()
    typed = day.strip().lower()
    weekdays = [n for n, name in enumerate(WEEKDAYS) if len(typed) >= 2 and name.startswith(typed)]
    if typed in ("today", "tomorrow"):
        date = today + dt.timedelta(days=typed == "tomorrow")
    elif len(weekdays) == 1:
        date = today + dt.timedelta(days=(weekdays[0] - today.weekday()) % 7)
        if dt.datetime.combine(date, clock, tzinfo=place).timestamp() <= after:
            date += dt.timedelta(days=7)
    else:
        try:
            date = dt.date.fromisoformat(typed)
        except ValueError:
            raise ReminderError(
                f"{echo(day)} is not a day: say today, tomorrow, a weekday or a date like "
                "2026-12-24."
            ) from None
    return dt.datetime.combine(date, clock, tzinfo=place).timestamp()


def parse_time(text: str) -> dt.time:
    """"20:00", "8:30", "8pm", "8:30 pm" as a clock time."""
    typed = text.strip().lower().replace(".", ":")
    suffix = next((s for s in ("am", "pm") if typed.endswith(s)), "")
    digits = typed.removesuffix(suffix).strip()
    hours, _, minutes = digits.partition(":")
    try:
        hour, minute = int(hours), int(minutes or 0)
    except ValueError:
        raise ReminderError(f"{echo(text)} is not a time: write it like 20:00 or 8pm.") from None
    if suffix and not 1 <= hour <= 12:
        raise ReminderError(f"{echo(text)} is not a time: write it like 20:00 or 8pm.")
    if suffix:
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ReminderError(f"{echo(text)} is not a time: write it like 20:00 or 8pm.")
    return dt.time(hour, minute)


def check_zone(name: str) -> str:
    """A time zone name as the tz database spells it ("Europe/Berlin")."""
    typed = name.strip()
    exact = {zone.lower(): zone for zone in zone_names()}.get(typed.lower())
    if exact is None:
        guesses = ", ".join(zone_choices(typed, 3)) or "Europe/London, America/New_York"
        raise ReminderError(f"{echo(name)} is not a time zone I know; did you mean {guesses}?")
    try:
        ZoneInfo(exact)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReminderError(f"the time zone {exact} cannot be read on this machine") from None
    return exact


@cache
def zone_names() -> tuple[str, ...]:
    """Every time zone name, sorted."""
    return tuple(sorted(available_timezones()))


def zone_choices(typed: str, limit: int = 25) -> list[str]:
    """Zone names close to what is typed ("berlin", "new york"), best first."""
    names = zone_names()
    if not utils.default_process(typed):
        return list(names[:limit])
    found = process.extract(
        typed.replace(" ", "_"), names, scorer=fuzz.WRatio, processor=utils.default_process,
        limit=limit, score_cutoff=60,
    )  # fmt: skip
    return [name for name, _, _ in found]


def next_occurrence(when: WeeklyTime, after: float) -> float:
    """The first moment strictly after `after` (epoch seconds) that `when` happens."""
    zone = ZoneInfo(when.zone)
    start = dt.datetime.fromtimestamp(after, zone).date()
    for days in range(9):
        day = start + dt.timedelta(days=days)
        if day.weekday() != when.weekday:
            continue
        moment = dt.datetime.combine(day, when.at, tzinfo=zone).timestamp()  # fold 0
        if moment > after:
            return moment
    raise AssertionError("a weekday comes round within nine days")
