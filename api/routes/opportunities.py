"""Opportunities (``crm.opportunities``): product interest, expected revenue, probability and close
date; the pipeline per stage; setting one to *won* sends the message that starts the order work.
"""

from __future__ import annotations

from contextlib import suppress
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from crm import opportunities as crm_opportunities
from crm import service_queries as crm_lists
from crm import validation as crm_checks
from engine.errors import NotFound

from ..deps import (
    LIST,
    Day,
    FilterId,
    FilterText,
    Id,
    Limit,
    Offset,
    Reader,
    RefId,
    Search,
    Text,
    Writer,
    choice,
    crm_errors,
    engine_of,
    found,
)
from ..listing import camel_row, page
from ..models import Camel

router = APIRouter(tags=["service desk"])


class OpportunityIn(Camel):
    account_id: RefId
    title: Text = Field(max_length=300)
    expected_revenue: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    expected_close: Day
    stage: str = Field(default="lead", max_length=20)
    probability: int | None = Field(default=None, ge=0, le=100)
    source: str = Field(default="other", max_length=20)
    product_id: RefId | None = None
    contact_id: RefId | None = None
    campaign_id: RefId | None = None
    owner: Text | None = Field(default=None, max_length=200)


OPPORTUNITY_WON = "opportunity_won"  # the message that starts the order work of a won opportunity


class StageIn(Camel):
    stage: str = Field(max_length=20)
    probability: int | None = Field(default=None, ge=0, le=100)


@router.get("/opportunities", responses=LIST)
def list_opportunities(request: Request, _p: Reader, q: Search = "", stage: FilterText = None,
                       account_id: Annotated[FilterId, Query(alias="accountId")] = None,
                       owner: FilterText = None, limit: Limit = 50, offset: Offset = 0) -> Any:
    choice("stage", stage, crm_opportunities.STAGES)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_opportunities(conn, stage=stage, account_id=account_id, owner=owner, text=q,
                                                   limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "opportunities")


@router.get("/opportunities/pipeline")
def pipeline(request: Request, _p: Reader, close_from: Annotated[Day | None, Query(alias="closeFrom")] = None,
             close_until: Annotated[Day | None, Query(alias="closeUntil")] = None) -> dict[str, Any]:
    """Per open stage: count, expected revenue and revenue weighted by probability (optionally by close date)."""
    with engine_of(request).db.read() as conn:
        stages = crm_opportunities.pipeline(conn, close_from, close_until)
    rows = [camel_row(s.__dict__) for s in stages]
    return {"stages": rows,
            "revenue": str(sum((s.revenue for s in stages), Decimal("0.00"))),
            "weighted": str(sum((s.weighted for s in stages), Decimal("0.00")))}


@router.post("/opportunities", status_code=201)
def create_opportunity(request: Request, body: OpportunityIn, principal: Writer) -> dict[str, Any]:
    data = body.model_dump()
    data["owner"] = data["owner"] or principal.name
    with engine_of(request).db.transaction() as conn, crm_errors():
        opportunity_id = crm_opportunities.create_opportunity(conn, crm_opportunities.OpportunityInput(**data))
        return camel_row(crm_lists.get_opportunity(conn, opportunity_id))


@router.get("/opportunities/{opportunity_id}")
def get_opportunity(request: Request, opportunity_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return camel_row(found(crm_lists.get_opportunity, conn, opportunity_id))


class OpportunityPatch(Camel):
    """An open opportunity's facts; ``probability: null`` goes back to the stage's default."""

    title: Text | None = Field(default=None, max_length=300)
    expected_revenue: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    probability: int | None = Field(default=None, ge=0, le=100)
    expected_close: Day | None = None
    owner: Text | None = Field(default=None, max_length=200)
    product_id: RefId | None = None


@router.patch("/opportunities/{opportunity_id}")
def patch_opportunity(request: Request, opportunity_id: Id, body: OpportunityPatch, _p: Writer) -> dict[str, Any]:
    """Change an open opportunity (checked as on creation); the stage moves with ``POST …/stage``, and a won or
    lost opportunity stays as it closed (409)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_opportunity, conn, opportunity_id)
        with crm_errors("stage"):
            crm_opportunities.update_opportunity(conn, opportunity_id, **body.model_dump(exclude_unset=True))
        return camel_row(crm_lists.get_opportunity(conn, opportunity_id))


@router.post("/opportunities/{opportunity_id}/stage")
def set_stage(request: Request, opportunity_id: Id, body: StageIn, principal: Writer) -> dict[str, Any]:
    """Move an open opportunity to a stage; won and lost are final (a later move is a 409). Won sends the
    message ``opportunity_won``, which starts the order work (``startedInstanceIds``)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_opportunity, conn, opportunity_id)
        with crm_errors():
            crm_checks.one_of("stage", body.stage, crm_opportunities.STAGES)
        with crm_errors("stage"):
            previous = crm_opportunities.set_stage(conn, opportunity_id, body.stage, body.probability)
        row = crm_lists.get_opportunity(conn, opportunity_id)
    started: list[str] = []
    # without a deployed process that starts with the message, the stage change stands on its own
    with suppress(NotFound):
        if body.stage == "won":
            started = [view.id for view in engine_of(request).correlate(
                OPPORTUNITY_WON, {"opportunity_id": opportunity_id, "account_id": row["account_id"],
                                  "contact_id": row["contact_id"]},
                business_key=f"OPP-{opportunity_id}", user=principal.name).started]
    return {**camel_row(row), "previousStage": previous, "startedInstanceIds": started}
