"""The business calendar: German public holidays (Easter-based ones included), working-time arithmetic on
office hours in Europe/Berlin across DST, and properties over random instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm import sla
from crm.business_calendar import (
    ALWAYS,
    BusinessCalendar,
    easter_sunday,
    german_holidays,
    office_calendar,
    parse_hours,
)

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = BusinessCalendar(parse_hours("Mo-Fr 08:00-18:00"), BERLIN, "BY")


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


@pytest.mark.parametrize(("year", "easter"), [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)),
                                               (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28)),
                                               (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22))])
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_german_holidays_nationwide_and_per_state() -> None:
    nationwide = german_holidays(2026)
    assert {date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25), date(2026, 10, 3),
            date(2026, 12, 25), date(2026, 12, 26), date(2026, 1, 1), date(2026, 5, 1)} == set(nationwide)
    bavaria = german_holidays(2026, "BY")
    assert bavaria[date(2026, 6, 4)] == "Fronleichnam" and bavaria[date(2026, 1, 6)] == "Heilige Drei Könige"
    assert german_holidays(2026, "BE")[date(2026, 3, 8)] == "Internationaler Frauentag"
    assert german_holidays(2026, "SN")[date(2026, 11, 18)] == "Buß- und Bettag"
    assert date(2026, 6, 4) not in german_holidays(2026, "BE")
    assert date(2017, 10, 31) in german_holidays(2017)
    with pytest.raises(ValueError):
        german_holidays(2026, "XX")


def test_p2_opened_friday_evening_before_a_holiday_monday_in_bavaria_is_due_on_tuesday() -> None:
    friday = berlin(2026, 5, 22, 17, 30)  # Pfingstmontag is 25 May 2026
    assert OFFICE.add(friday, timedelta(hours=1)) == berlin(2026, 5, 26, 8, 30)
    assert OFFICE.add(friday, timedelta(hours=16)) == berlin(2026, 5, 27, 13, 30)
    assert OFFICE.working_time(friday, berlin(2026, 5, 26, 8, 30)) == timedelta(hours=1)


def test_working_days_skip_weekends_and_holidays_and_keep_the_time_of_day() -> None:
    assert OFFICE.add_working_days(berlin(2026, 3, 6, 10, 0), 5) == berlin(2026, 3, 13, 10, 0)
    # Karfreitag 3 April and Ostermontag 6 April 2026 are not working days
    assert OFFICE.add_working_days(berlin(2026, 4, 1, 10, 0), 5) == berlin(2026, 4, 10, 10, 0)
    assert OFFICE.add_working_days(berlin(2026, 3, 6, 19, 0), 1) == berlin(2026, 3, 10, 8, 0)


def test_dst_changes_do_not_change_working_hours() -> None:
    before = berlin(2026, 3, 27, 17, 0)  # the clocks go forward on Sunday 29 March
    due = OFFICE.add(before, timedelta(hours=2))
    assert due == berlin(2026, 3, 30, 9, 0) and due.astimezone(UTC).hour == 7
    assert OFFICE.working_time(berlin(2026, 10, 23, 8, 0), berlin(2026, 10, 26, 18, 0)) == timedelta(hours=20)


def test_pending_for_three_working_hours_moves_the_deadline_by_three_working_hours() -> None:
    opened = berlin(2026, 3, 2, 10, 0)
    due = sla.deadlines("bronze", "P3", opened).resolution_due
    paused, resumed = berlin(2026, 3, 3, 16, 0), berlin(2026, 3, 4, 9, 0)  # 2 h Tuesday + 1 h Wednesday
    calendar = sla.sla_calendar("bronze", "P3")
    assert calendar.working_time(paused, resumed) == timedelta(hours=3)
    moved = sla.shifted("bronze", "P3", due, paused, resumed)
    assert calendar.working_time(due, moved) == timedelta(hours=3)
    assert sla.shifted("bronze", "P3", due, due + timedelta(hours=1), due + timedelta(days=3)) == due  # missed


def test_round_the_clock_classes_count_calendar_time() -> None:
    sunday = datetime(2026, 5, 24, 3, 0, tzinfo=UTC)
    assert sla.deadlines("gold", "P2", sunday).resolution_due == sunday + timedelta(hours=8)
    assert sla.sla_calendar("silver", "P1") is ALWAYS and sla.sla_calendar("silver", "P2") is not ALWAYS


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILVERFLOW_BUSINESS_HOURS", "Mo-Sa 07:00-20:00")
    monkeypatch.setenv("SILVERFLOW_HOLIDAY_STATE", "BY")
    calendar = office_calendar()
    assert calendar.is_working_time(berlin(2026, 3, 7, 19, 30))  # Saturday
    assert not calendar.is_working_day(date(2026, 1, 6))
    monkeypatch.setenv("SILVERFLOW_SLA_ALWAYS", "")
    assert sla.sla_calendar("gold", "P1") is not ALWAYS
    for bad in ("Mo-Fr", "Xy 08:00-18:00", "Mo 18:00-08:00", "Mo 25:00-26:00"):
        with pytest.raises(ValueError):
            BusinessCalendar(parse_hours(bad))
    assert parse_hours("Fr-Mo 22:00-24:00")[0][0] == 4  # wraps over the weekend


instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31),
                        timezones=st.just(UTC))
durations = st.integers(min_value=1, max_value=400 * 3600).map(lambda s: timedelta(seconds=s))


@settings(max_examples=300, deadline=None)
@given(start=instants, duration=durations)
def test_a_deadline_is_inside_working_time_and_exactly_the_duration_away(start: datetime,
                                                                         duration: timedelta) -> None:
    due = OFFICE.add(start, duration)
    assert due > start
    # the deadline is the end of working time: the moment just before it is working time
    assert OFFICE.is_working_time(due - timedelta(microseconds=1))
    assert OFFICE.working_time(start, due) == duration
    local = due.astimezone(BERLIN)
    assert local.weekday() < 5 and local.date() not in german_holidays(local.year, "BY")
    assert time(8, 0) < local.time() <= time(18, 0)


@settings(max_examples=200, deadline=None)
@given(start=instants, first=durations, second=durations)
def test_adding_is_additive_and_subtracting_undoes_it(start: datetime, first: timedelta,
                                                      second: timedelta) -> None:
    assert OFFICE.add(OFFICE.add(start, first), second) == OFFICE.add(start, first + second)
    due = OFFICE.add(start, first)
    back = OFFICE.add(due, -first)
    assert OFFICE.working_time(back, due) == first
    assert back >= start


@settings(max_examples=200, deadline=None)
@given(start=instants, days=st.integers(min_value=1, max_value=30))
def test_working_days_are_working_time(start: datetime, days: int) -> None:
    due = OFFICE.add_working_days(start, days)
    assert OFFICE.is_working_time(due) and due > start
