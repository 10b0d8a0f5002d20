"""State machines of accounts, quotes, orders, incidents: one helper checks and applies every transition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import DomainError

Transitions = Mapping[str, frozenset[str]]


def check_transition(transitions: Transitions, current: str, target: str, field: str = "status") -> None:
    """Raise unless ``current → target`` is an allowed edge; unknown targets are named as such."""
    known = set(transitions) | {s for targets in transitions.values() for s in targets}
    if target not in known:
        raise DomainError(field, f"{field} {target!r} is unknown (allowed: {', '.join(sorted(known))})")
    if target not in transitions.get(current, frozenset()):
        raise DomainError(field, f"{field} cannot change from {current!r} to {target!r}")


def change_status(
    conn: Connection,
    table: sa.Table,
    row_id: int,
    transitions: Transitions,
    target: str,
    **values: Any,
) -> str:
    """Move one row to ``target`` (compare-and-set on the old status, so a concurrent change is never lost).

    Returns the previous status. Extra ``values`` are written in the same UPDATE (e.g. timestamps).
    """
    current = conn.execute(sa.select(table.c.status).where(table.c.id == row_id)).scalar_one_or_none()
    if current is None:
        raise DomainError("id", f"{table.name} {row_id} does not exist")
    check_transition(transitions, current, target)
    result = conn.execute(
        table.update().where(table.c.id == row_id, table.c.status == current).values(status=target, **values)
    )
    if result.rowcount != 1:
        raise DomainError("status", f"{table.name} {row_id} was changed concurrently; reload and retry")
    return str(current)
