"""Process instances: query, read, cancel, history, change variables — each need-to-know (``api/access.py``):
an instance the caller may not see answers 404 like an unknown one, and lists leave it out."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from engine.history import MAX_PAGE, history_page
from engine.queries import InstanceFilter

from .. import access
from ..deps import engine_of
from ..identity import Principal
from ..models import MAX_INT, HistoryOut, InstanceOut, InstanceSummaryOut, Page, VariablesPatch
from ..problems import ApiProblem
from ..security import require

router = APIRouter(tags=["instances"])


def _parse_variable_filters(values: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for value in values:
        name, sep, raw = value.partition("=")
        if not sep or not name:
            raise ApiProblem(400, "Invalid query", f"variable filter '{value}' must look like name=value",
                             "invalid-query", [{"field": "variable", "message": "expected name=value"}])
        try:
            parsed[name] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[name] = raw
    return parsed


@router.get("/process-instances", response_model=Page[InstanceSummaryOut])
def list_instances(request: Request, principal: Annotated[Principal, Depends(require())],
                   key: str | None = None, state: str | None = None,
                   business_key: Annotated[str | None, Query(alias="businessKey")] = None,
                   started_after: Annotated[datetime | None, Query(alias="startedAfter")] = None,
                   started_before: Annotated[datetime | None, Query(alias="startedBefore")] = None,
                   variable: Annotated[list[str] | None, Query(description="name=value (JSON value or text)")] = None,
                   sort: str = "-started", limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                   offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> Page[InstanceSummaryOut]:
    items, total = engine_of(request).query_instances(InstanceFilter(
        process_key=key, state=state, business_key=business_key, started_after=started_after,
        started_before=started_before, variables=_parse_variable_filters(variable or []),
        audience=access.audience(request, principal), sort=sort, limit=limit, offset=offset))
    return Page[InstanceSummaryOut](items=[InstanceSummaryOut(**i.__dict__) for i in items], total=total,
                                    limit=limit, offset=offset)


@router.get("/process-instances/{instance_id}", response_model=InstanceOut)
def get_instance(request: Request, instance_id: str,
                 principal: Annotated[Principal, Depends(require())]) -> InstanceOut:
    access.visible_instance(request, principal, instance_id)
    return InstanceOut(**engine_of(request).get_instance(instance_id).__dict__)


@router.delete("/process-instances/{instance_id}", response_model=InstanceOut)
def cancel_instance(request: Request, instance_id: str,
                    principal: Annotated[Principal, Depends(require("manager", "integration"))],
                    reason: Annotated[str | None, Query(max_length=1000)] = None) -> InstanceOut:
    access.visible_instance(request, principal, instance_id)
    return InstanceOut(**engine_of(request).cancel(instance_id, reason, user=principal.name).__dict__)


def encode_cursor(after: int, newest_first: bool) -> str:
    """An opaque continuation token: the order and the last event id of the page."""
    return base64.urlsafe_b64encode(f"{'d' if newest_first else 'a'}{after}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, bool]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if text[:1] not in ("a", "d") or not text[1:].isdigit():
            raise ValueError(cursor)
        return int(text[1:]), text[0] == "d"
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiProblem(400, "Invalid query", "cursor is not one this API handed out", "invalid-query",
                         [{"field": "cursor", "message": "use the cursor of a Link header as it is"}]) from exc


@router.get("/process-instances/{instance_id}/history", response_model=list[HistoryOut])
def instance_history(request: Request, response: Response, instance_id: str,
                     principal: Annotated[Principal, Depends(require())],
                     limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                     cursor: Annotated[str | None, Query(max_length=100,
                                                         description="from the previous page's Link header")] = None,
                     order: Annotated[Literal["asc", "desc"], Query(
                         description="asc: oldest first (default); desc: newest first")] = "asc",
                     ) -> list[HistoryOut]:
    """One page of the history; ``Link: <…>; rel="next"`` names the next page while there is one. Pages are cut
    by event id, so events appended meanwhile never shift them (oldest first: they appear on the last page)."""
    access.visible_instance(request, principal, instance_id)  # 404 for an unknown or hidden instance
    after, newest_first = decode_cursor(cursor) if cursor else (None, order == "desc")
    with engine_of(request).db.read() as conn:
        page = history_page(conn, instance_id, limit, after, newest_first)
    if page.next_after is not None:
        next_url = request.url.include_query_params(cursor=encode_cursor(page.next_after, newest_first),
                                                    limit=limit)
        response.headers["Link"] = f'<{next_url.path}?{next_url.query}>; rel="next"'
    return [HistoryOut(**h.__dict__) for h in page.items]


@router.patch("/process-instances/{instance_id}/variables", response_model=InstanceOut)
def patch_variables(request: Request, instance_id: str, body: VariablesPatch,
                    principal: Annotated[Principal, Depends(require("manager", "integration"))]) -> InstanceOut:
    access.visible_instance(request, principal, instance_id)
    view = engine_of(request).set_variables(instance_id, body.variables, body.remove, user=principal.name)
    return InstanceOut(**view.__dict__)
