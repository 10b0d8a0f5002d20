"""Campaigns (``crm.campaigns``): a trade fair or a mailing with the contacts it tags.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from crm import campaigns as crm_campaigns
from crm import service_queries as crm_lists

from ..deps import (
    LIST,
    Day,
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
    record,
)
from ..listing import camel_row, page
from ..models import Camel

router = APIRouter(tags=["service desk"])


class CampaignIn(Camel):
    name: Text = Field(max_length=200)
    kind: str = Field(max_length=20)
    starts_on: Day
    ends_on: Day
    description: Text | None = Field(default=None, max_length=20000)


class MembersIn(Camel):
    contact_ids: list[RefId] = Field(min_length=1, max_length=1000)


class CampaignPatch(Camel):
    name: Text | None = Field(default=None, max_length=200)
    kind: str | None = Field(default=None, max_length=20)
    starts_on: Day | None = None
    ends_on: Day | None = None
    description: Text | None = Field(default=None, max_length=20000)


def _campaign(conn: Any, campaign_id: int) -> dict[str, Any]:
    out = camel_row(found(crm_lists.get_campaign, conn, campaign_id))
    out["members"] = [record(r) for r in crm_campaigns.members(conn, campaign_id)]
    return out


@router.get("/campaigns", responses=LIST)
def list_campaigns(request: Request, _p: Reader, q: Search = "", kind: FilterText = None,
                   limit: Limit = 50, offset: Offset = 0) -> Any:
    choice("kind", kind, crm_campaigns.KINDS)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_campaigns(conn, kind, q, limit, offset)
    return page(request, rows, total, limit, offset, "campaigns")


@router.post("/campaigns", status_code=201)
def create_campaign(request: Request, body: CampaignIn, _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn, crm_errors():
        campaign_id = crm_campaigns.create_campaign(conn, body.name, body.kind, body.starts_on, body.ends_on,
                                                    body.description)
        return _campaign(conn, campaign_id)


@router.get("/campaigns/{campaign_id}")
def get_campaign(request: Request, campaign_id: Id, _p: Reader) -> dict[str, Any]:
    """The campaign with its members (contacts with their account name)."""
    with engine_of(request).db.read() as conn:
        return _campaign(conn, campaign_id)


@router.patch("/campaigns/{campaign_id}")
def patch_campaign(request: Request, campaign_id: Id, body: CampaignPatch, _p: Writer) -> dict[str, Any]:
    """Change name, kind, period or description (checked as on creation: unique name, end not before start)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_campaign, conn, campaign_id)
        with crm_errors():
            crm_campaigns.update_campaign(conn, campaign_id, **body.model_dump(exclude_unset=True))
        return _campaign(conn, campaign_id)


@router.post("/campaigns/{campaign_id}/members")
def add_members(request: Request, campaign_id: Id, body: MembersIn, _p: Writer) -> dict[str, Any]:
    """Tag contacts; those already tagged stay as they are (``added`` counts the new ones)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_campaign, conn, campaign_id)
        with crm_errors():
            added = crm_campaigns.add_members(conn, campaign_id, body.contact_ids)
        return {**_campaign(conn, campaign_id), "added": added}
