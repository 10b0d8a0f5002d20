"""Service levels: the impact × urgency priority matrix and the SLA deadlines per SLA class and priority.

Deadlines run on a business calendar (``crm.business_calendar``): round the clock for the classes and
priorities the network operations centre covers (gold, and silver's P1), office hours (Mo–Fr 08:00–18:00
Europe/Berlin without public holidays) otherwise; ``SILVERFLOW_SLA_ALWAYS`` ("gold:*,silver:P1") and the office
calendar's variables change that. A deadline is missed when the work was done after it, or is still not done and
it has passed; such incidents drive escalation and the customer's SLA report. While an incident is pending
(waiting for the customer) its clock stops: :func:`shifted` moves a deadline by the working time of the pause.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import validation as v
from .business_calendar import ALWAYS, BusinessCalendar, office_calendar
from .errors import DomainError

LEVELS = ("high", "medium", "low")
PRIORITIES = ("P1", "P2", "P3", "P4")

# impact × urgency → priority (ITIL): rows are the impact, columns the urgency.
PRIORITY_MATRIX: dict[tuple[str, str], str] = {
    ("high", "high"): "P1",
    ("high", "medium"): "P2",
    ("high", "low"): "P3",
    ("medium", "high"): "P2",
    ("medium", "medium"): "P3",
    ("medium", "low"): "P4",
    ("low", "high"): "P3",
    ("low", "medium"): "P4",
    ("low", "low"): "P4",
}

H = timedelta(hours=1)
# SLA class → priority → (response time, resolution time).
SLA_TARGETS: dict[str, dict[str, tuple[timedelta, timedelta]]] = {
    "gold": {"P1": (H / 4, 4 * H), "P2": (H / 2, 8 * H), "P3": (2 * H, 24 * H), "P4": (8 * H, 72 * H)},
    "silver": {"P1": (H / 2, 8 * H), "P2": (H, 16 * H), "P3": (4 * H, 48 * H), "P4": (16 * H, 120 * H)},
    "bronze": {"P1": (H, 24 * H), "P2": (4 * H, 48 * H), "P3": (8 * H, 96 * H), "P4": (24 * H, 240 * H)},
}
SLA_CLASSES = tuple(SLA_TARGETS)


@dataclass(frozen=True)
class Deadlines:
    response_due: datetime
    resolution_due: datetime


def priority(impact: str, urgency: str) -> str:
    """P1 (high impact, high urgency) … P4, by the matrix above."""
    return PRIORITY_MATRIX[(v.one_of("impact", impact, LEVELS), v.one_of("urgency", urgency, LEVELS))]


def deadlines(sla_class: str, prio: str, opened_at: datetime) -> Deadlines:
    """Response and resolution deadline of an incident of ``prio`` opened at ``opened_at``."""
    targets = SLA_TARGETS.get(sla_class)
    if targets is None:
        raise DomainError("sla_class", f"sla_class must be one of {', '.join(SLA_CLASSES)}")
    if prio not in targets:
        raise DomainError("priority", f"priority must be one of {', '.join(PRIORITIES)}")
    opened = v.aware("opened_at", opened_at)
    response, resolution = targets[prio]
    calendar = sla_calendar(sla_class, prio)
    return Deadlines(calendar.add(opened, response), calendar.add(opened, resolution))


def targets_of(sla_class: str, prio: str) -> tuple[timedelta, timedelta]:
    """(response time, resolution time) in working time of the class's calendar."""
    targets = SLA_TARGETS.get(sla_class)
    if targets is None or prio not in targets:
        raise DomainError("sla_class", f"no SLA targets for {sla_class!r}/{prio!r}")
    return targets[prio]


def _round_the_clock() -> set[tuple[str, str]]:
    spec = os.environ.get("SILVERFLOW_SLA_ALWAYS", "gold:*,silver:P1")
    pairs: set[tuple[str, str]] = set()
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        sla_class, _, prio = item.partition(":")
        pairs.update((sla_class, p) for p in (PRIORITIES if prio in ("", "*") else (prio,)))
    return pairs


def sla_calendar(sla_class: str, prio: str) -> BusinessCalendar:
    """The calendar the deadlines of this class and priority run on."""
    return ALWAYS if (sla_class, prio) in _round_the_clock() else office_calendar()


def escalation_at(sla_class: str, prio: str, resolution_due: datetime, share: float = 0.75) -> datetime:
    """When ``share`` of the resolution time has passed: the rest of it counted back from the deadline."""
    _response, resolution = targets_of(sla_class, prio)
    return sla_calendar(sla_class, prio).add(v.aware("resolution_due", resolution_due), -resolution * (1 - share))


def shifted(sla_class: str, prio: str, due: datetime, paused_from: datetime, resumed_at: datetime) -> datetime:
    """A deadline after a pause: the working time that was left at ``paused_from`` counts on from ``resumed_at``
    (a deadline already passed when the pause began stays missed)."""
    due, start, end = (v.aware(n, x) for n, x in (("due", due), ("paused_from", paused_from),
                                                  ("resumed_at", resumed_at)))
    if due <= start or end <= start:
        return due
    calendar = sla_calendar(sla_class, prio)
    return calendar.add(end, calendar.working_time(start, due))


def missed(due: datetime, done_at: datetime | None, now: datetime) -> bool:
    """Whether a deadline is missed: done late, or not done and already past."""
    return (done_at if done_at is not None else now) > due
