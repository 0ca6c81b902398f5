"""Habits in numbers: sessions, minutes, weekly streaks, server weeks, and the chart."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from PIL import Image

from bot.stats import WEEK, SessionRecord, person_stats, server_stats, week_of, weekly_chart

MONDAY = 1_764_547_200.0  # 2025-12-01 00:00 UTC, a Monday
LOS_ANGELES = "America/Los_Angeles"


def session(weeks_ago: int, routine: str = "upper-back", minutes: float = 15.0,
            people: tuple[str, ...] = ("ann",)) -> SessionRecord:  # fmt: skip
    return SessionRecord(routine, MONDAY + 3600 - weeks_ago * WEEK, minutes, people)


def test_weeks_start_on_monday() -> None:
    assert week_of(MONDAY) == week_of(MONDAY + WEEK - 1) == week_of(MONDAY - 1) + 1


def test_a_persons_sessions_minutes_streak_and_favourite() -> None:
    records = [session(0), session(1, "lower-back"), session(1), session(2), session(5)]
    stats = person_stats(records, now=MONDAY + 86_400)
    assert (stats.sessions, stats.minutes, stats.streak_weeks) == (5, 75.0, 3)
    assert stats.favourite_routine == "upper-back"
    assert stats.weekly_sessions[-6:] == (1, 0, 0, 1, 2, 1) and len(stats.weekly_sessions) == 12
    not_yet_this_week = person_stats(records[1:], now=MONDAY + 86_400)
    assert not_yet_this_week.streak_weeks == 2  # last week still counts until this one ends
    assert person_stats([], now=MONDAY) == person_stats([], now=MONDAY + 3 * WEEK)
    assert person_stats([], now=MONDAY).favourite_routine is None


def test_a_streak_of_more_than_a_year_counts_every_week() -> None:
    records = [session(weeks_ago) for weeks_ago in range(60)]
    stats = person_stats(records, now=MONDAY + 86_400)
    assert (stats.sessions, stats.minutes, stats.streak_weeks) == (60, 900.0, 60)


def test_weeks_are_counted_in_the_persons_zone() -> None:
    sunday_evening = dt.datetime(2025, 12, 7, 20, tzinfo=ZoneInfo(LOS_ANGELES)).timestamp()
    assert week_of(sunday_evening) == week_of(MONDAY) + 1  # Monday 04:00 in UTC
    assert week_of(sunday_evening, LOS_ANGELES) == week_of(MONDAY + 86_400, LOS_ANGELES)
    records = [SessionRecord("upper-back", sunday_evening, 15.0, ("ann",))]
    wednesday_after = MONDAY + WEEK + 2 * 86_400
    assert person_stats(records, wednesday_after, LOS_ANGELES).weekly_sessions[-2:] == (1, 0)
    assert person_stats(records, wednesday_after).weekly_sessions[-2:] == (0, 1)


def test_a_servers_weeks_and_routines() -> None:
    records = [session(0, people=("ann", "bob")), session(0, "lower-back", people=("ann",)),
               session(3, people=("cat", "dan", "eve")), session(30)]  # fmt: skip
    stats = server_stats(records, now=MONDAY)
    assert stats.weekly_sessions[-1] == 2 and stats.weekly_people[-1] == 2
    assert stats.weekly_sessions[-4] == 1 and stats.weekly_people[-4] == 3
    assert stats.weekly_people == (0,) * 8 + (3, 0, 0, 2)  # each of the last 12 weeks
    assert sum(stats.weekly_sessions) == 3  # 30 weeks ago is off the chart
    assert stats.routines == (("upper-back", 3), ("lower-back", 1))


def test_the_chart_is_a_small_png() -> None:
    png = weekly_chart([0, 1, 3, 2, 0, 0, 5, 4, 1, 0, 2, 6], "Your sessions per week")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (480, 200)
    assert len(png) < 20_000
    assert image.getpixel((image.width - 46, image.height - 35)) == (46, 139, 122)  # this week
