"""Process instances: query, read, cancel, history, change variables."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from engine.queries import InstanceFilter

from ..identity import Principal
from ..models import MAX_INT, HistoryOut, InstanceOut, InstanceSummaryOut, Page, VariablesPatch
from ..problems import ApiProblem
from ..security import require
from .definitions import engine_of

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
def list_instances(request: Request, _p: Annotated[Principal, Depends(require())],
                   key: str | None = None, state: str | None = None,
                   business_key: Annotated[str | None, Query(alias="businessKey")] = None,
                   started_after: Annotated[datetime | None, Query(alias="startedAfter")] = None,
                   started_before: Annotated[datetime | None, Query(alias="startedBefore")] = None,
                   variable: Annotated[list[str] | None, Query(description="name=value (JSON value or text)")] = None,
                   sort: str = "-started", limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                   offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> Page[InstanceSummaryOut]:
    items, total = engine_of(request).query_instances(InstanceFilter(
        process_key=key, state=state, business_key=business_key, started_after=started_after,
        started_before=started_before, variables=_parse_variable_filters(variable or []), sort=sort, limit=limit,
        offset=offset))
    return Page[InstanceSummaryOut](items=[InstanceSummaryOut(**i.__dict__) for i in items], total=total,
                                    limit=limit, offset=offset)


@router.get("/process-instances/{instance_id}", response_model=InstanceOut)
def get_instance(request: Request, instance_id: str, _p: Annotated[Principal, Depends(require())]) -> InstanceOut:
    return InstanceOut(**engine_of(request).get_instance(instance_id).__dict__)


@router.delete("/process-instances/{instance_id}", response_model=InstanceOut)
def cancel_instance(request: Request, instance_id: str,
                    principal: Annotated[Principal, Depends(require("manager", "integration"))],
                    reason: Annotated[str | None, Query(max_length=1000)] = None) -> InstanceOut:
    return InstanceOut(**engine_of(request).cancel(instance_id, reason, user=principal.name).__dict__)


@router.get("/process-instances/{instance_id}/history", response_model=list[HistoryOut])
def instance_history(request: Request, instance_id: str,
                     _p: Annotated[Principal, Depends(require())]) -> list[HistoryOut]:
    engine = engine_of(request)
    engine.get_instance(instance_id)  # 404 for an unknown instance rather than an empty list
    return [HistoryOut(**h.__dict__) for h in engine.history(instance_id)]


@router.patch("/process-instances/{instance_id}/variables", response_model=InstanceOut)
def patch_variables(request: Request, instance_id: str, body: VariablesPatch,
                    principal: Annotated[Principal, Depends(require("manager", "integration"))]) -> InstanceOut:
    view = engine_of(request).set_variables(instance_id, body.variables, body.remove, user=principal.name)
    return InstanceOut(**view.__dict__)
