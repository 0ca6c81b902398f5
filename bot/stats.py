"""Habits in numbers: a person's sessions, minutes and weekly streak, a server's weeks, and
a small chart of the last 12 weeks drawn with Pillow."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw

WEEKS_CHARTED = 12
WEEK = 7 * 86_400


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One ended session as the stats see it."""

    routine_id: str
    started_at: float
    minutes: float
    people: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PersonStats:
    sessions: int
    minutes: float
    streak_weeks: int  # weeks in a row, up to this one or the last, with a session
    favourite_routine: str | None
    weekly_sessions: tuple[int, ...]  # the last `WEEKS_CHARTED` weeks, oldest first


@dataclass(frozen=True, slots=True)
class ServerStats:
    weekly_sessions: tuple[int, ...]
    weekly_people: tuple[int, ...]
    routines: tuple[tuple[str, int], ...]  # most used first


def week_of(moment: float, zone: str = "UTC") -> int:
    """The ISO week a moment falls in, local time in `zone`, counted from a fixed Monday."""
    day = dt.datetime.fromtimestamp(moment, ZoneInfo(zone)).date()
    return (day - dt.date(2001, 1, 1)).days // 7  # 2001-01-01 was a Monday


def person_stats(records: Sequence[SessionRecord], now: float, zone: str = "UTC") -> PersonStats:
    """What a person's ended sessions add up to, their weeks running Monday to Sunday in
    `zone` (a tz database name)."""
    weeks = Counter(week_of(r.started_at, zone) for r in records)
    this_week = week_of(now, zone)
    streak, week = 0, this_week if weeks[this_week] else this_week - 1
    while weeks[week]:
        streak, week = streak + 1, week - 1
    routines = Counter(r.routine_id for r in records)
    return PersonStats(
        sessions=len(records),
        minutes=sum(r.minutes for r in records),
        streak_weeks=streak,
        favourite_routine=routines.most_common(1)[0][0] if routines else None,
        weekly_sessions=tuple(weeks[this_week - n] for n in range(WEEKS_CHARTED - 1, -1, -1)),
    )


def server_stats(records: Sequence[SessionRecord], now: float) -> ServerStats:
    """What a server's ended sessions add up to, week by week (weeks in UTC)."""
    this_week = week_of(now)
    charted = range(this_week - WEEKS_CHARTED + 1, this_week + 1)
    sessions = Counter(week_of(r.started_at) for r in records)
    people: dict[int, set[str]] = {week: set() for week in charted}
    for record in records:
        people.get(week_of(record.started_at), set()).update(record.people)
    routines = Counter(r.routine_id for r in records)
    return ServerStats(
        weekly_sessions=tuple(sessions[week] for week in charted),
        weekly_people=tuple(len(people[week]) for week in charted),
        routines=tuple(routines.most_common(5)),
    )


def weekly_chart(counts: Sequence[int], label: str) -> bytes:
    """A small PNG bar chart of weekly counts, oldest on the left, this week highlighted."""
    width, height, margin = 480, 200, 28
    image = Image.new("RGB", (width, height), (250, 248, 245))
    draw = ImageDraw.Draw(image)
    draw.text((margin, 8), label, fill=(60, 60, 60))
    top = max(max(counts, default=0), 1)
    slot = (width - 2 * margin) / max(len(counts), 1)
    floor = height - margin
    for n, count in enumerate(counts):
        left = margin + n * slot + slot * 0.15
        bar = (floor - margin - 10) * count / top
        colour = (46, 139, 122) if n == len(counts) - 1 else (143, 188, 180)
        draw.rectangle((left, floor - bar, left + slot * 0.7, floor), fill=colour)
        if count:
            draw.text((left, floor - bar - 12), str(count), fill=(60, 60, 60))
    draw.line((margin, floor, width - margin, floor), fill=(120, 120, 120))
    draw.text((margin, floor + 6), f"{len(counts)} weeks ago", fill=(110, 110, 110))
    draw.text((width - margin - 60, floor + 6), "this week", fill=(110, 110, 110))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
