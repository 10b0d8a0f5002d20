"""ISO 8601 timer arithmetic in calendar terms, and the timer event definitions that use it.

Spiff turns ``P1M`` into a fixed number of days (the length of the month it starts in) and a cycle into a
fixed number of seconds, so a monthly cycle drifts (31 days after 1 January is 1 February, 31 days after
that is 4 March). Here months and years are calendar months: ``P1M`` after 31 January is 28 February, and
occurrence *n* of a cycle is ``start + n × period`` computed from the start in the start's own UTC offset,
so ``R/2026-01-01T06:00:00+01:00/P1M`` fires at 06:00 (+01:00) on the 1st of every month.

Catch-up policy for cycles (timer start events and cycle boundary/intermediate events alike): when one or
more occurrences are overdue, the timer fires ONCE and re-arms for the first occurrence after now; missed
occurrences are not replayed as a burst, but they do count against a limited number of repetitions (``R3``).

The engine may run timers at a virtual time (``Engine.fire_due_timers(now=…)``): ``clock_at`` sets it for
the work done in that call, so timers armed on the way are measured from it (``current_time``).
"""

from __future__ import annotations

import ast
import math
import re
from calendar import monthrange
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    LOCALTZ,
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

_T = TypeVar("_T")
_virtual_now: ContextVar[datetime | None] = ContextVar("silverflow_virtual_now", default=None)
_AVERAGE_MONTH = timedelta(days=365.2425 / 12)


def current_time() -> datetime:
    """Now for timer arithmetic: the virtual time of ``clock_at`` if one is set, else the wall clock (UTC)."""
    return _virtual_now.get() or datetime.now(UTC)


@contextmanager
def clock_at(now: datetime | None) -> Iterator[None]:
    """Measure timers from ``now`` inside the block (no-op for None)."""
    token = _virtual_now.set(now)
    try:
        yield
    finally:
        _virtual_now.reset(token)


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall time ``months`` calendar months later (or earlier), clamped to the month's last day."""
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


@dataclass(frozen=True)
class Period:
    """An ISO 8601 duration with its calendar part (months, years as 12 months) kept apart from fixed time."""

    text: str
    months: float
    fixed: timedelta

    @classmethod
    def parse(cls, text: str) -> Period:
        try:
            parts = TimerEventDefinition.parse_iso_duration(text)
        except Exception as exc:  # Spiff raises a bare Exception for malformed durations
            raise ValueError(f"'{text}' is not an ISO 8601 duration") from exc
        months = parts.pop("years", 0) * 12 + parts.pop("months", 0)
        return cls(text, months, timedelta(**parts))

    def after(self, start: datetime, times: int = 1) -> datetime:
        """``start`` plus ``times`` periods; the months are added in one go so clamping never accumulates."""
        months = self.months * times
        whole = math.floor(months)
        moment = add_months(start, whole)
        if months != whole:  # a fraction of the month it lands in, as Spiff does
            moment += timedelta(days=(months - whole) * monthrange(moment.year, moment.month)[1])
        return moment + self.fixed * times

    def before(self, end: datetime) -> datetime:
        whole = math.floor(self.months)
        moment = add_months(end, -whole)
        if self.months != whole:
            moment -= timedelta(days=(self.months - whole) * monthrange(moment.year, moment.month)[1])
        return moment - self.fixed

    def approximate(self) -> timedelta:
        return self.fixed + _AVERAGE_MONTH * self.months


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date-time keeping its UTC offset (naive ones are local, as in Spiff)."""
    if "W" in text.upper():
        return TimerEventDefinition.parse_iso_week(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an ISO 8601 date-time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCALTZ)


@dataclass(frozen=True)
class Cycle:
    """``R[n]/start/period``, ``R[n]/period/end`` or ``R[n]/period``: occurrence i is start + i × period."""

    repetitions: int  # -1: for ever
    start: datetime
    period: Period

    @classmethod
    def parse(cls, expression: str, now: datetime) -> Cycle:
        parts = expression.strip().upper().replace("--", "/").split("/")
        if len(parts) not in (2, 3) or not parts[0].startswith("R"):
            raise ValueError(f"'{expression}' is not an ISO 8601 repeating interval (R[n]/start/period)")
        try:
            repetitions = int(parts[0][1:]) if parts[0][1:] else -1
        except ValueError as exc:
            raise ValueError(f"'{parts[0]}' is not a repetition count") from exc
        if len(parts) == 2:
            period = Period.parse(parts[1])
            cycle = cls(repetitions, period.after(now), period)
        elif parts[1].startswith("P"):
            period = Period.parse(parts[1])
            cycle = cls(repetitions, period.before(parse_moment(parts[2])), period)
        else:
            cycle = cls(repetitions, parse_moment(parts[1]), Period.parse(parts[2]))
        if cycle.period.approximate() <= timedelta(0):
            raise ValueError(f"'{expression}': the period of a cycle must be longer than zero")
        return cycle

    def occurrence(self, index: int) -> datetime:
        return self.period.after(self.start, index)

    def exhausted(self, index: int) -> bool:
        """Whether occurrence ``index`` lies beyond the repetitions."""
        return 0 <= self.repetitions <= index

    def index_after(self, moment: datetime) -> int:
        """The first occurrence strictly after ``moment`` (an estimate, corrected by stepping)."""
        index = max(0, int((moment - self.start) / self.period.approximate()))
        while index > 0 and self.occurrence(index - 1) > moment:
            index -= 1
        while self.occurrence(index) <= moment:
            index += 1
        return index

    def state(self, index: int) -> dict[str, Any]:
        """JSON form, positioned at occurrence ``index``; ``cycles``/``next`` keep Spiff's keys and meaning."""
        remaining = -1 if self.repetitions < 0 else max(self.repetitions - index, 0)
        return {"cycles": remaining, "next": self.occurrence(index).isoformat(), "start": self.start.isoformat(),
                "period": self.period.text, "repetitions": self.repetitions, "index": index}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Cycle:
        return cls(int(state["repetitions"]), datetime.fromisoformat(state["start"]), Period.parse(state["period"]))

    def following(self, state: dict[str, Any], now: datetime) -> int:
        """After firing at ``now``: the next occurrence to wait for (catch-up: skips every overdue one)."""
        return max(self.index_after(now), int(state["index"]) + 1)


def _as_task_error(task: Any, compute: Callable[[], _T]) -> _T:
    """A malformed timer value becomes a task error, which the engine reports as a process error."""
    try:
        return compute()
    except ValueError as exc:
        raise WorkflowTaskException(f"timer: {exc}", task=task, exception=exc) from exc


class CalendarDurationTimer(DurationTimerEventDefinition):
    """A duration timer (``P1M``) due a calendar duration after it started waiting."""

    def has_fired(self, my_task: Any) -> bool:
        due = my_task._get_internal_data("event_value")
        if due is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            due = _as_task_error(my_task, lambda: Period.parse(str(expression)).after(current_time()).isoformat())
            my_task._set_internal_data(event_value=due)
        if TimerEventDefinition.get_datetime(due) <= current_time():
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class CalendarCycleTimer(CycleTimerEventDefinition):
    """A cycle timer on calendar occurrences that fires once however many occurrences are overdue."""

    def cycle_complete(self, my_task: Any) -> bool:
        state = my_task._get_internal_data("event_value")
        if state is not None and "period" not in state:
            return bool(super().cycle_complete(my_task))  # armed before calendar cycles existed
        now = current_time()
        if state is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            state = _as_task_error(my_task, lambda: Cycle.parse(str(expression), now).state(0))
        if state["cycles"] == 0:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        ready = datetime.fromisoformat(state["next"]) <= now
        if ready:
            cycle = Cycle.from_state(state)
            state = cycle.state(cycle.following(state, now))
        my_task._set_internal_data(event_value=state)
        return ready


_CALENDAR_TIMERS: dict[type[Any], type[Any]] = {
    DurationTimerEventDefinition: CalendarDurationTimer,
    CycleTimerEventDefinition: CalendarCycleTimer,
}


# What Camunda and other tools write unquoted: a duration (PT1H), a cycle (R6/P1D, R/PT15S) or a date-time.
_ISO_LITERAL = re.compile(r"^(R\d*/\S+|-?PT?\d[\w.,]*|\d{4}-\d{2}-\d{2}\S*)$", re.IGNORECASE)


def timer_expression(expression: str | None) -> str | None:
    """A timer value as the Python expression Spiff evaluates: an unquoted ISO 8601 literal becomes a string
    literal; anything else is already an expression (``"PT1H"``, ``reminder_after``)."""
    if expression is None:
        return None
    text = expression.strip()
    return repr(text) if _ISO_LITERAL.match(text) else text


def timer_problem(definition: Any) -> str | None:
    """Why a timer can never run, when its value is a constant we can check at deploy (None: fine, or an
    expression over the instance data that only a run can tell)."""
    if not (definition.expression or "").strip():
        return "the timer has no value"
    try:
        value = ast.literal_eval(definition.expression)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, str):
        return f"{value!r} is not an ISO 8601 value"
    try:
        if isinstance(definition, CycleTimerEventDefinition):
            Cycle.parse(value, current_time())
        elif isinstance(definition, DurationTimerEventDefinition):
            Period.parse(value)
        elif isinstance(definition, TimeDateEventDefinition):
            parse_moment(value)
    except (ValueError, OverflowError) as exc:
        return str(exc)
    return None


def timer_definitions(task_spec: Any) -> list[Any]:
    """The timer event definitions of a task spec (an event-based gateway's wait holds several)."""
    definition = getattr(task_spec, "event_definition", None)
    members = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
    return [d for d in members if isinstance(d, TimerEventDefinition)]


def _calendar(definition: Any) -> Any:
    if isinstance(definition, TimerEventDefinition):
        definition.expression = timer_expression(definition.expression)
    replacement = _CALENDAR_TIMERS.get(type(definition))
    if replacement is None:
        return definition
    calendar_definition = replacement(definition.name, definition.expression)
    calendar_definition.__dict__.update(definition.__dict__)  # description and whatever else Spiff keeps
    return calendar_definition


def use_calendar_timers(task_spec: Any) -> None:
    """Give a parsed task spec calendar timers (its own event and those of an event-based gateway's wait), with
    unquoted ISO 8601 literals read as text."""
    definition = getattr(task_spec, "event_definition", None)
    if definition is None:
        return
    if isinstance(definition, MultipleEventDefinition):
        definition.event_definitions = [_calendar(d) for d in definition.event_definitions]
    else:
        task_spec.event_definition = _calendar(definition)


def register_calendar_timers(registry: Any) -> None:
    """Serialize calendar timers (a gateway's seen events hold them) under Spiff's type names, so states saved
    before them restore as calendar timers too."""
    for spiff_class, calendar_class in _CALENDAR_TIMERS.items():
        TimerConditionalEventDefinitionConverter(calendar_class, registry, typename=spiff_class.__name__)
