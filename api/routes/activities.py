"""Activities (``crm.activities``): contact moments (calls, mails, meetings, notes) and an account's
timeline of them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from crm import activities as crm_activities
from crm import service_queries as crm_lists
from crm.accounts import get_account

from ..deps import (
    LIST,
    FilterId,
    FilterText,
    Id,
    Limit,
    Offset,
    Reader,
    RefId,
    Text,
    When,
    Writer,
    choice,
    crm_errors,
    engine_of,
    found,
)
from ..listing import camel_row, page
from ..models import Camel

router = APIRouter(tags=["service desk"])


class ActivityIn(Camel):
    kind: str = Field(max_length=20)
    subject: Text = Field(max_length=300)
    body: Text | None = Field(default=None, max_length=100000)
    account_id: RefId | None = None
    contact_id: RefId | None = None
    campaign_id: RefId | None = None
    occurred_at: When | None = None


class ActivityPatch(Camel):
    """What a contact moment says and its campaign (``null``: none); author, time and people stay."""

    subject: Text | None = Field(default=None, max_length=300)
    body: Text | None = Field(default=None, max_length=100000)
    campaign_id: RefId | None = None


@router.get("/activities", responses=LIST)
def list_activities(request: Request, _p: Reader,
                    account_id: Annotated[FilterId, Query(alias="accountId")] = None,
                    contact_id: Annotated[FilterId, Query(alias="contactId")] = None,
                    campaign_id: Annotated[FilterId, Query(alias="campaignId")] = None,
                    kind: FilterText = None, limit: Limit = 50, offset: Offset = 0) -> Any:
    """Contact moments newest first."""
    choice("kind", kind, crm_activities.KINDS)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_activities(conn, account_id=account_id, contact_id=contact_id,
                                                campaign_id=campaign_id, kind=kind, limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "activities")


@router.post("/activities", status_code=201)
def create_activity(request: Request, body: ActivityIn, principal: Writer) -> dict[str, Any]:
    """Record a contact moment by the caller; one about a contact is filed on its account too."""
    data = crm_activities.ActivityInput(author=principal.name, **body.model_dump())
    with engine_of(request).db.transaction() as conn, crm_errors():
        activity_id = crm_activities.log_activity(conn, data)
        return camel_row(crm_lists.get_activity(conn, activity_id))


@router.get("/activities/{activity_id}")
def get_activity(request: Request, activity_id: Id, _p: Reader) -> dict[str, Any]:
    """One contact moment (the list's row, for a link from a mail log or a document)."""
    with engine_of(request).db.read() as conn:
        return camel_row(found(crm_lists.get_activity, conn, activity_id))


@router.patch("/activities/{activity_id}")
def patch_activity(request: Request, activity_id: Id, body: ActivityPatch, _p: Writer) -> dict[str, Any]:
    """Correct subject, text or campaign link of a contact moment (checked as on creation)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_activity, conn, activity_id)
        with crm_errors():
            crm_activities.update_activity(conn, activity_id, **body.model_dump(exclude_unset=True))
        return camel_row(crm_lists.get_activity(conn, activity_id))


@router.get("/accounts/{account_id}/timeline", responses=LIST)
def account_timeline(request: Request, account_id: Id, _p: Reader, kind: FilterText = None,
                     limit: Limit = 50, offset: Offset = 0) -> Any:
    """Everything said with the customer and any of its people, newest first."""
    choice("kind", kind, crm_activities.KINDS)
    with engine_of(request).db.read() as conn:
        found(get_account, conn, account_id)
        rows, total = crm_lists.list_activities(conn, account_id=account_id, kind=kind, limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "timeline")
