"""Weekly reminders: what people type, and the next time across zones and daylight saving."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.reminders import (
    DAY,
    ReminderError,
    WeeklyTime,
    next_occurrence,
    parse_moment,
    parse_time,
    parse_weekly,
    zone_choices,
    zone_names,
)

HOUR = 3600


def at(zone: str, *fields: int) -> float:
    return dt.datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp()


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("20:00", dt.time(20)), ("8pm", dt.time(20)), ("8:30 pm", dt.time(20, 30)),
     ("12am", dt.time(0)), ("12pm", dt.time(12)), ("07.15", dt.time(7, 15))],
)  # fmt: skip
def test_times_as_people_type_them(typed: str, expected: dt.time) -> None:
    assert parse_time(typed) == expected


@pytest.mark.parametrize("typed", ["25:00", "13pm", "soon", "8:61", ""])
def test_impossible_times_are_refused_with_a_hint(typed: str) -> None:
    with pytest.raises(ReminderError, match="20:00"):
        parse_time(typed)


def test_a_weekly_time_reads_days_zones_and_refuses_nonsense() -> None:
    assert parse_weekly("Mon", "20:00", "europe/berlin") == WeeklyTime(
        0, dt.time(20), "Europe/Berlin"
    )
    with pytest.raises(ReminderError, match="day of the week"):
        parse_weekly("someday", "20:00", "Europe/Berlin")
    with pytest.raises(ReminderError, match="did you mean Europe/Berlin"):
        parse_weekly("monday", "20:00", "Berlin")
    assert zone_choices("new york")[0] == "America/New_York"


def test_the_clock_time_holds_across_daylight_saving() -> None:
    monday = WeeklyTime(0, dt.time(20), "Europe/Berlin")
    winter = next_occurrence(monday, at("Europe/Berlin", 2026, 3, 20))  # Friday before the change
    assert winter == at("Europe/Berlin", 2026, 3, 23, 20)  # 19:00 UTC
    summer = next_occurrence(monday, winter)
    assert summer == at("Europe/Berlin", 2026, 3, 30, 20)  # 18:00 UTC: 20:00 still
    assert summer - winter == 7 * DAY - HOUR


def test_a_time_that_does_not_exist_or_happens_twice() -> None:
    gap = WeeklyTime(6, dt.time(2, 30), "Europe/Berlin")  # clocks go 02:00 -> 03:00
    moment = next_occurrence(gap, at("Europe/Berlin", 2026, 3, 28))
    assert dt.datetime.fromtimestamp(moment, ZoneInfo("Europe/Berlin")).time() == dt.time(3, 30)
    twice = WeeklyTime(6, dt.time(2, 30), "Europe/Berlin")  # 02:30 happens twice in October
    first = next_occurrence(twice, at("Europe/Berlin", 2026, 10, 24))
    assert next_occurrence(twice, first) - first > 6 * DAY  # once, not twice that night


@settings(max_examples=400, deadline=None)
@given(
    zone=st.sampled_from(zone_names()),
    weekday=st.integers(0, 6),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    after=st.floats(1_577_836_800, 2_082_758_400),  # 2020 to 2036
)
def test_one_occurrence_a_week_at_the_local_time(
    zone: str, weekday: int, hour: int, minute: int, after: float
) -> None:
    when = WeeklyTime(weekday, dt.time(hour, minute), zone)
    first = next_occurrence(when, after)
    second = next_occurrence(when, first)
    assert after < first <= after + 7 * DAY + 3 * HOUR
    assert 7 * DAY - 3 * HOUR <= second - first <= 7 * DAY + 3 * HOUR  # none skipped or doubled
    local = dt.datetime.fromtimestamp(first, ZoneInfo(zone))
    assert local.weekday() == weekday
    if local.time() != when.at:  # only a clock time the zone skipped that day moves
        wanted = dt.datetime.combine(local.date(), when.at, tzinfo=ZoneInfo(zone))
        assert dt.datetime.fromtimestamp(wanted.timestamp(), ZoneInfo(zone)).time() != when.at
        assert (local.replace(tzinfo=None) - wanted.replace(tzinfo=None)).total_seconds() > 0


def test_a_one_off_moment_for_a_class() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    tuesday_noon = dt.datetime(2026, 12, 1, 12, 0, tzinfo=berlin).timestamp()

    def local(moment: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(moment, berlin)

    assert local(parse_moment("today", "19:30", "Europe/Berlin", tuesday_noon)) == dt.datetime(
        2026, 12, 1, 19, 30, tzinfo=berlin
    )
    assert local(parse_moment("tomorrow", "8am", "europe/berlin", tuesday_noon)).day == 2
    assert local(parse_moment("tue", "11:00", "Europe/Berlin", tuesday_noon)).day == 8  # passed
    assert local(parse_moment("tue", "13:00", "Europe/Berlin", tuesday_noon)).day == 1
    assert local(parse_moment("Friday", "20:00", "Europe/Berlin", tuesday_noon)).day == 4
    christmas = parse_moment("2026-12-24", "18:00", "America/New_York", tuesday_noon)
    assert dt.datetime.fromtimestamp(christmas, dt.UTC).hour == 23
    with pytest.raises(ReminderError, match="not a day"):
        parse_moment("someday", "18:00", "UTC", tuesday_noon)
    with pytest.raises(ReminderError, match="not a time"):
        parse_moment("today", "noonish", "UTC", tuesday_noon)


@given(st.text(min_size=41, max_size=6000))
@settings(max_examples=50, deadline=None)
def test_an_error_never_grows_with_what_was_typed(typed: str) -> None:
    for attempt in (
        lambda: parse_weekly(typed, "20:00", "UTC"),
        lambda: parse_weekly("monday", typed, "UTC"),
        lambda: parse_weekly("monday", "20:00", typed),
        lambda: parse_moment(typed, "20:00", "UTC", 0.0),
    ):
        try:
            attempt()
        except ReminderError as error:
            assert len(str(error)) < 300
