"""Webhooks: integrations subscribe a URL to events; each delivery is a job (retried with back-off).

The engine only decides what to deliver; the ``webhook.deliver`` connector signs the body with
HMAC-SHA256 and sends it.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .database import as_utc, utcnow
from .errors import NotFound
from .schema import job, webhook_subscription

EVENTS = ("instance.completed", "task.created", "incident.raised")
WEBHOOK_JOB = "webhook"
DELIVER_OPERATOR = "webhook.deliver"
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class WebhookView:
    id: str
    url: str
    events: list[str]
    created_by: str | None
    created_at: datetime
    secret: str | None = None  # only when just created


def subscribe(conn: Connection, url: str, events: list[str], created_by: str | None,
              secret: str | None = None) -> WebhookView:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        from .queries import QueryError

        raise QueryError("events", f"choose from {', '.join(EVENTS)}" + (f"; unknown: {unknown}" if unknown else ""))
    view = WebhookView(str(uuid.uuid4()), url, sorted(set(events)), created_by, utcnow(),
                       secret or secrets.token_urlsafe(32))
    conn.execute(webhook_subscription.insert().values(id=view.id, url=url, events=",".join(view.events),
                                                      secret=view.secret, created_by=created_by,
                                                      created_at=view.created_at))
    _forget(conn)
    return view


def list_subscriptions(conn: Connection) -> list[WebhookView]:
    return [WebhookView(r.id, r.url, r.events.split(","), r.created_by, as_utc(r.created_at) or utcnow())
            for r in conn.execute(sa.select(webhook_subscription).order_by(webhook_subscription.c.created_at))]


def unsubscribe(conn: Connection, subscription_id: str) -> None:
    if not conn.execute(webhook_subscription.delete().where(webhook_subscription.c.id == subscription_id)).rowcount:
        raise NotFound(f"webhook '{subscription_id}' does not exist")
    _forget(conn)


# Subscriptions change rarely but are looked at on most saves: read them at most once a second per database.
CACHE_SECONDS = 1.0
_cache: dict[int, tuple[float, list[Any]]] = {}


def _subscriptions(conn: Connection) -> list[Any]:
    key = id(conn.engine)
    cached = _cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    rows = list(conn.execute(sa.select(webhook_subscription)).all())
    _cache[key] = (time.monotonic() + CACHE_SECONDS, rows)
    return rows


def _forget(conn: Connection) -> None:
    _cache.pop(id(conn.engine), None)


def emit(conn: Connection, instance_id: str, process_key: str | None, events: list[tuple[str, dict[str, Any]]]) -> int:
    """Queue one delivery job per subscription and event; return how many jobs were written."""
    wanted = [(kind, data) for kind, data in events if kind in EVENTS]
    if not wanted:
        return 0
    subscriptions = _subscriptions(conn)
    if not subscriptions:
        return 0
    now = utcnow()
    rows = []
    for kind, data in wanted:
        body = {"event": kind, "instanceId": instance_id, "processKey": process_key, "at": now.isoformat(),
                "data": data}
        for sub in subscriptions:
            if kind not in sub.events.split(","):
                continue
            delivery = str(uuid.uuid4())
            rows.append(dict(
                id=delivery, kind=WEBHOOK_JOB, state="pending", instance_id=None, task_id=None,
                process_key=process_key, element_id=None, due_at=now, attempts=0, max_attempts=MAX_ATTEMPTS,
                payload=json.dumps({"operator": DELIVER_OPERATOR, "params": {
                    "url": sub.url, "secret": sub.secret, "event": kind, "delivery": delivery, "body": body}}),
                lock_owner=None, lock_expires_at=None, last_error=None, last_traceback=None,
                idempotency_key=delivery, created_at=now, finished_at=None))
    if rows:
        conn.execute(job.insert(), rows)
    return len(rows)
