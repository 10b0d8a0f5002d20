"""Service levels: the impact × urgency priority matrix and the SLA deadlines per SLA class and priority.

Deadlines are in calendar time (24/7 support, as the ISP's network operations centre runs); a business-hours
calendar would plug into :func:`deadlines`. A deadline is missed when the work was done after it, or is
still not done and it has passed; such incidents drive escalation and the customer's SLA report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import validation as v
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
    return Deadlines(opened + response, opened + resolution)


def missed(due: datetime, done_at: datetime | None, now: datetime) -> bool:
    """Whether a deadline is missed: done late, or not done and already past."""
    return (done_at if done_at is not None else now) > due
