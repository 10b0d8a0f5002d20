"""An instance's history in pages: keyset paging on the event id over the ``(instance_id, id)`` index.

A long-running instance collects tens of thousands of events; reading them all for one page or one diagram is
what made the instance page take seconds. A page is ``limit`` events after (oldest first) or before (newest
first) a given id, so appending events never shifts a page a client is walking through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .database import as_utc, utcnow
from .runtime import HistoryView
from .schema import history_event

MAX_PAGE = 1000


@dataclass(frozen=True)
class HistoryPage:
    items: list[HistoryView]
    next_after: int | None  # the id to continue from, or None on the last page


def history_page(conn: Connection, instance_id: str, limit: int = 100, after: int | None = None,
                 newest_first: bool = False) -> HistoryPage:
    """Up to ``limit`` events of the instance following the event id ``after`` in the chosen order."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    query = sa.select(history_event).where(history_event.c.instance_id == instance_id)
    if after is not None:
        query = query.where(history_event.c.id < after if newest_first else history_event.c.id > after)
    query = query.order_by(history_event.c.id.desc() if newest_first else history_event.c.id).limit(limit + 1)
    rows = conn.execute(query).all()
    more = len(rows) > limit
    items = [HistoryView(r.id, as_utc(r.at) or utcnow(), r.type, r.element_id, r.element_name, r.element_type,
                         r.task_id, r.user_id, json.loads(r.data) if r.data else None) for r in rows[:limit]]
    return HistoryPage(items, items[-1].id if more else None)


def completed_elements(conn: Connection, instance_id: str) -> list[str]:
    """The elements the instance has completed at least once (the diagram's highlights), from the index alone."""
    return sorted(e for (e,) in conn.execute(
        sa.select(history_event.c.element_id).distinct()
        .where(history_event.c.instance_id == instance_id, history_event.c.type == "element.completed",
               history_event.c.element_id.is_not(None))))
