"""``Idempotency-Key``: a retried request returns the first result instead of doing the work twice.

The key is reserved (a row with status 0) before the work starts, in its own transaction, so two
concurrent requests with one key cannot both run; the second gets 409 while the first is running.

A reservation whose request died (server killed, database gone mid-way) does not block its key forever: the
pending row names its owner (host, process id and the process's start time), and a retry takes the key over
at once when that owner process is gone (same host), or after ``PENDING_SECONDS`` (default 60 s,
``SILVERFLOW_IDEMPOTENCY_PENDING_SECONDS``) when the owner cannot be checked (another host). The take-over is a
compare-and-set on the row, so of several retries exactly one runs the work afresh. Once the work has answered,
its result is stored and every retry replays it (the instance id of a start, for example).

Residual window: if a server dies after the work committed but before its result was stored (the two are
separate transactions, a few milliseconds apart), a retry after the take-over runs the work again.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from engine.database import Database, as_utc, utcnow

from .identity import Principal, idempotency_record
from .problems import ApiProblem

HEADER = "Idempotency-Key"


def _pending_seconds() -> float:
    try:
        return max(float(os.environ.get("SILVERFLOW_IDEMPOTENCY_PENDING_SECONDS", "60")), 0.0)
    except ValueError:
        return 60.0


def _start_ticks(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (Linux), telling a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def owner_token() -> str:
    """This process as the owner of a reservation: ``host pid start-ticks``."""
    pid = os.getpid()
    return json.dumps({"owner": [socket.gethostname(), pid, _start_ticks(pid)]})


def _owner_gone(response: str) -> bool:
    """Whether the reservation's owner was a process on this host that no longer runs."""
    try:
        host, pid, ticks = json.loads(response)["owner"]
    except (ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return ticks is not None and _start_ticks(pid) != ticks


def reserve(db: Database, key: str, principal: str, endpoint: str) -> sa.Row | None:
    """Reserve ``key`` for this request; None when reserved (the caller runs the work), else the existing row
    (finished, or pending and still owned). A pending row whose owner died, or older than the bound, is taken over."""
    where = sa.and_(idempotency_record.c.key == key, idempotency_record.c.principal == principal)
    mine = owner_token()
    try:
        with db.transaction() as conn:
            conn.execute(idempotency_record.insert().values(key=key, principal=principal, endpoint=endpoint,
                                                            status_code=0, response=mine, created_at=utcnow()))
        return None
    except IntegrityError:
        pass
    with db.read() as conn:
        row = conn.execute(sa.select(idempotency_record).where(where)).one()
    if row.status_code != 0 or row.endpoint != endpoint:
        return row
    created = as_utc(row.created_at) or utcnow()
    expired = utcnow() - created > timedelta(seconds=_pending_seconds())
    if not (expired or _owner_gone(row.response)):
        return row
    with db.transaction() as conn:  # compare-and-set: of several retries one takes it over
        taken = conn.execute(idempotency_record.update().where(where).where(idempotency_record.c.status_code == 0)
                             .where(idempotency_record.c.response == row.response)
                             .values(response=mine, created_at=utcnow())).rowcount
    if taken == 1:
        return None
    with db.read() as conn:
        return conn.execute(sa.select(idempotency_record).where(where)).one()


def idempotent(request: Request, principal: Principal, endpoint: str, status: int,
               work: Callable[[], BaseModel]) -> BaseModel | Response:
    key = request.headers.get(HEADER)
    if not key:
        return work()
    if len(key) > 200:
        raise ApiProblem(422, "Invalid request", f"{HEADER} must be at most 200 characters", "validation",
                         [{"field": HEADER, "message": "too long"}])
    db = request.app.state.engine.db
    where = sa.and_(idempotency_record.c.key == key, idempotency_record.c.principal == principal.name)
    row = reserve(db, key, principal.name, endpoint)
    if row is not None:
        if row.endpoint != endpoint:
            raise ApiProblem(422, "Invalid request", f"{HEADER} '{key}' was used for another request",
                             "idempotency-mismatch")
        if row.status_code == 0:
            raise ApiProblem(409, "Conflict", f"a request with {HEADER} '{key}' is still being processed; retry "
                             f"later (an abandoned one is released after {_pending_seconds():g} s)", "conflict",
                             headers={"Retry-After": "1"})
        return Response(row.response, status_code=row.status_code, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})
    try:
        result = work()
    except BaseException:
        with db.transaction() as conn:
            conn.execute(idempotency_record.delete().where(where).where(idempotency_record.c.status_code == 0))
        raise
    body = result.model_dump(mode="json", by_alias=True)
    with db.transaction() as conn:
        conn.execute(idempotency_record.update().where(where).values(status_code=status, response=json.dumps(body)))
    return result
