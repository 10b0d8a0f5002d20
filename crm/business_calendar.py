"""Business time: working hours in a time zone, German public holidays, and arithmetic on working time.

A :class:`BusinessCalendar` answers "is this instant working time", "what instant lies N working hours or
N working days after this one" and "how much working time lies between two instants". SLA deadlines
(``crm.sla``), the pause of a pending incident and process timers such as the supplier chase
("5 Arbeitstage") all use it, so every face counts time the same way.

Public holidays are computed (Easter by the Gregorian computus, the moveable feasts from it) for the whole
country and per federal state (``BY``, ``BE``, …), so no data file goes stale. Working hours are given per
weekday in local time (``Europe/Berlin`` by default); instants are aware datetimes and results are in UTC.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
STATES = ("BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL", "SN", "ST", "SH", "TH")
WEEKDAYS = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
_ENGLISH_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
MIDNIGHT = time(0, 0)
_MAX_DAYS = 366 * 20  # a calendar with no working day at all is refused long before this


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@lru_cache(maxsize=512)
def german_holidays(year: int, state: str | None = None) -> dict[date, str]:
    """The statutory public holidays of ``year`` in Germany, with those of federal ``state`` if given."""
    if state is not None and state not in STATES:
        raise ValueError(f"unknown federal state {state!r} (one of {', '.join(STATES)})")
    easter = easter_sunday(year)
    days: dict[date, str] = {
        date(year, 1, 1): "Neujahr",
        easter - timedelta(days=2): "Karfreitag",
        easter + timedelta(days=1): "Ostermontag",
        date(year, 5, 1): "Tag der Arbeit",
        easter + timedelta(days=39): "Christi Himmelfahrt",
        easter + timedelta(days=50): "Pfingstmontag",
        date(year, 10, 3): "Tag der Deutschen Einheit",
        date(year, 12, 25): "1. Weihnachtstag",
        date(year, 12, 26): "2. Weihnachtstag",
    }
    if year == 2017:
        days[date(2017, 10, 31)] = "Reformationstag"
    if state is None:
        return days
    if state in ("BW", "BY", "ST"):
        days[date(year, 1, 6)] = "Heilige Drei Könige"
    if (state == "BE" and year >= 2019) or (state == "MV" and year >= 2023):
        days[date(year, 3, 8)] = "Internationaler Frauentag"
    if state == "BB":
        days[easter] = "Ostersonntag"
        days[easter + timedelta(days=49)] = "Pfingstsonntag"
    if state in ("BW", "BY", "HE", "NW", "RP", "SL"):
        days[easter + timedelta(days=60)] = "Fronleichnam"
    if state == "SL":
        days[date(year, 8, 15)] = "Mariä Himmelfahrt"
    if state == "TH" and year >= 2019:
        days[date(year, 9, 20)] = "Weltkindertag"
    if state in ("BB", "MV", "SN", "ST", "TH") or (state in ("HB", "HH", "NI", "SH") and year >= 2018):
        days[date(year, 10, 31)] = "Reformationstag"
    if state in ("BW", "BY", "NW", "RP", "SL"):
        days[date(year, 11, 1)] = "Allerheiligen"
    if state == "SN":  # Buß- und Bettag: the Wednesday before 23 November
        nov22 = date(year, 11, 22)
        days[nov22 - timedelta(days=(nov22.weekday() - 2) % 7)] = "Buß- und Bettag"
    if year == 2020 and state == "BE":
        days[date(2020, 5, 8)] = "Tag der Befreiung"
    if year == 2025 and state == "BE":
        days[date(2025, 5, 8)] = "Tag der Befreiung"
    return days


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours per weekday (0 = Monday) in ``zone``; holidays of Germany (and ``state``) are closed.

    ``always`` is the 24/7 calendar: every instant is working time and no holiday counts.
    """

    hours: tuple[tuple[int, time, time], ...] = ()  # (weekday, start, end); end 00:00 means midnight
    zone: ZoneInfo = BERLIN
    state: str | None = None
    always: bool = False
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.always and not self.hours:
            raise ValueError("a business calendar needs working hours (or always=True)")
        if self.state is not None and self.state not in STATES:
            raise ValueError(f"unknown federal state {self.state!r} (one of {', '.join(STATES)})")
        for weekday, start, end in self.hours:
            if not 0 <= weekday <= 6:
                raise ValueError(f"weekday {weekday} is not 0 (Monday) … 6 (Sunday)")
            if end != MIDNIGHT and end <= start:
                raise ValueError(f"working hours {start:%H:%M}-{end:%H:%M} end before they start")

    # -- questions ------------------------------------------------------------------------------------
    def is_holiday(self, day: date) -> bool:
        return not self.always and day in german_holidays(day.year, self.state)

    def is_working_day(self, day: date) -> bool:
        if self.always:
            return True
        return any(weekday == day.weekday() for weekday, _s, _e in self.hours) and not self.is_holiday(day)

    def is_working_time(self, at: datetime) -> bool:
        """Whether ``at`` lies in working time (an interval's start is in it, its end is not)."""
        instant = _aware(at)
        if self.always:
            return True
        local_day = instant.astimezone(self.zone).date()
        for day in (local_day - timedelta(days=1), local_day):
            for start, end in self._intervals_of(day):
                if start <= instant < end:
                    return True
        return False

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end); zero when end is not after start."""
        begin, finish = _aware(start), _aware(end)
        if finish <= begin:
            return timedelta(0)
        if self.always:
            return finish - begin
        total = timedelta(0)
        for low, high in self._intervals_from(begin):
            if low >= finish:
                break
            total += min(high, finish) - max(low, begin)
        return total

    # -- arithmetic -----------------------------------------------------------------------------------
    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of working time after ``start`` (before it, for a negative duration).

        A zero duration from outside working time stays where it is; a positive one counts from the next
        working interval and ends inside (or at the end of) one, so a deadline never falls outside working time.
        """
        begin = _aware(start)
        if self.always:
            return (begin + duration).astimezone(UTC)
        if duration < timedelta(0):
            return self._subtract(begin, -duration)
        if duration == timedelta(0):
            return begin.astimezone(UTC)
        left = duration
        for low, high in self._intervals_from(begin):
            low = max(low, begin)
            if high - low >= left:
                return (low + left).astimezone(UTC)
            left -= high - low
        raise AssertionError("unreachable: _intervals_from is unbounded")  # pragma: no cover

    def _subtract(self, end: datetime, duration: timedelta) -> datetime:
        left = duration
        for low, high in self._intervals_before(end):
            high = min(high, end)
            if high - low >= left:
                return (high - left).astimezone(UTC)
            left -= high - low
        raise AssertionError("unreachable: _intervals_before is unbounded")  # pragma: no cover

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local time of day ``days`` working days later (moved to the next working instant when
        that is outside working hours); ``5 Arbeitstage`` from Friday 10:00 is the next Friday 10:00, or later
        when a holiday falls in between."""
        if days < 0:
            raise ValueError("days must not be negative")
        begin = _aware(start)
        if self.always:
            return (begin + timedelta(days=days)).astimezone(UTC)
        local = begin.astimezone(self.zone)
        day, counted = local.date(), 0
        for _ in range(_MAX_DAYS):
            if counted == days:
                break
            day += timedelta(days=1)
            counted += self.is_working_day(day)
        else:
            raise ValueError("the calendar has no working days")
        return self.next_working_instant(datetime.combine(day, local.time(), tzinfo=self.zone))

    def next_working_instant(self, at: datetime) -> datetime:
        """``at`` itself when it is working time, else the start of the next working interval."""
        instant = _aware(at)
        if self.always:
            return instant.astimezone(UTC)
        low, _high = next(self._intervals_from(instant))
        return max(low, instant).astimezone(UTC)

    # -- intervals ------------------------------------------------------------------------------------
    def _intervals_of(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        spans = []
        for weekday, start, end in sorted(self.hours, key=lambda h: h[1]):
            if weekday != day.weekday():
                continue
            low = datetime.combine(day, start, tzinfo=self.zone)
            high = datetime.combine(day + timedelta(days=1) if end == MIDNIGHT else day, end, tzinfo=self.zone)
            spans.append((low, high))
        return spans

    def _intervals_from(self, begin: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (in order) that end after ``begin``."""
        day = begin.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(_MAX_DAYS):
            for low, high in self._intervals_of(day):
                if high > begin:
                    yield low, high
            day += timedelta(days=1)
        raise ValueError("the calendar has no working time")

    def _intervals_before(self, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (latest first) that start before ``end``."""
        day = end.astimezone(self.zone).date() + timedelta(days=1)
        for _ in range(_MAX_DAYS):
            for low, high in reversed(self._intervals_of(day)):
                if low < end:
                    yield low, high
            day -= timedelta(days=1)
        raise ValueError("the calendar has no working time")


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("instants must carry a time zone")
    return at


_SPEC_PART = re.compile(r"^\s*(\w\w)(?:\s*-\s*(\w\w))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _weekday(name: str) -> int:
    for names in (WEEKDAYS, _ENGLISH_DAYS):
        if name.capitalize() in names:
            return names.index(name.capitalize())
    raise ValueError(f"unknown weekday {name!r} (Mo, Di, Mi, Do, Fr, Sa, So)")


def parse_hours(spec: str) -> tuple[tuple[int, time, time], ...]:
    """``"Mo-Fr 08:00-18:00; Sa 09:00-13:00"`` → working hours; ``24:00`` ends at midnight."""
    hours = []
    for part in (p for p in spec.split(";") if p.strip()):
        match = _SPEC_PART.match(part)
        if match is None:
            raise ValueError(f"working hours {part.strip()!r} are not like 'Mo-Fr 08:00-18:00'")
        first = _weekday(match[1])
        last = _weekday(match[2]) if match[2] else first
        start_h, start_m, end_h, end_m = (int(match[i]) for i in (3, 4, 5, 6))
        if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
            raise ValueError(f"working hours {part.strip()!r} name an impossible time")
        end = MIDNIGHT if end_h == 24 else time(end_h, end_m)
        for weekday in range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]:
            hours.append((weekday, time(start_h, start_m), end))
    if not hours:
        raise ValueError("no working hours given")
    return tuple(hours)


OFFICE_HOURS = "Mo-Fr 08:00-18:00"


def office_calendar(hours: str | None = None, state: str | None = None) -> BusinessCalendar:
    """The office calendar: ``SILVERFLOW_BUSINESS_HOURS`` (default Mo–Fr 08:00–18:00) in
    ``SILVERFLOW_BUSINESS_TIMEZONE`` (Europe/Berlin) with the holidays of ``SILVERFLOW_HOLIDAY_STATE`` (BE)."""
    spec = hours or os.environ.get("SILVERFLOW_BUSINESS_HOURS", OFFICE_HOURS)
    zone = ZoneInfo(os.environ.get("SILVERFLOW_BUSINESS_TIMEZONE", "Europe/Berlin"))
    where = state if state is not None else (os.environ.get("SILVERFLOW_HOLIDAY_STATE", "BE").strip() or None)
    return BusinessCalendar(parse_hours(spec), zone, where, name=spec)


ALWAYS = BusinessCalendar(always=True, name="24/7")
