"""``Idempotency-Key``: a retried request returns the first result instead of doing the work twice.

The key is reserved (a row with status 0) before the work starts, in its own transaction, so two
concurrent requests with one key cannot both run; the second gets 409 until the first has answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from engine.database import utcnow

from .identity import Principal, idempotency_record
from .problems import ApiProblem

HEADER = "Idempotency-Key"


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
    try:
        with db.transaction() as conn:
            conn.execute(idempotency_record.insert().values(key=key, principal=principal.name, endpoint=endpoint,
                                                            status_code=0, response="", created_at=utcnow()))
    except IntegrityError:
        with db.read() as conn:
            row = conn.execute(sa.select(idempotency_record).where(where)).one()
        if row.endpoint != endpoint:
            raise ApiProblem(422, "Invalid request", f"{HEADER} '{key}' was used for another request",
                             "idempotency-mismatch") from None
        if row.status_code == 0:
            raise ApiProblem(409, "Conflict", f"a request with {HEADER} '{key}' is still being processed",
                             "conflict") from None
        return Response(row.response, status_code=row.status_code, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})
    try:
        result = work()
    except BaseException:
        with db.transaction() as conn:
            conn.execute(idempotency_record.delete().where(where))
        raise
    body = result.model_dump(mode="json", by_alias=True)
    with db.transaction() as conn:
        conn.execute(idempotency_record.update().where(where).values(status_code=status, response=json.dumps(body)))
    return result
