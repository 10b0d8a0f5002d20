"""CRM service and relationship resources: incidents, problems, opportunities, campaigns, activities, appointments
and staff requests.

Business rules live in ``crm``; this layer maps JSON to its services. Its ``DomainError`` becomes a 422 problem
naming the (camelCase) field, an unknown id in the path a 404, and a state change not allowed now (a status
transition, an appointment collision) a 409 whose body names what is in the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, AwareDatetime, Field

from crm import activities as crm_activities
from crm import appointments as crm_appointments
from crm import campaigns as crm_campaigns
from crm import opportunities as crm_opportunities
from crm import service_desk as crm_desk
from crm import service_queries as crm_lists
from crm import sla as crm_sla
from crm import staff as crm_staff
from crm import validation as crm_checks
from crm.accounts import get_account
from crm.errors import DomainError
from engine.errors import NotFound

from ..identity import Principal
from ..listing import camel_key, camel_row, page
from ..models import MAX_INT, Camel
from ..problems import ApiProblem
from ..security import require
from .definitions import engine_of

router = APIRouter(tags=["service desk"])

Reader = Annotated[Principal, Depends(require())]
Writer = Annotated[Principal, Depends(require("clerk", "manager", "integration"))]
Approver = Annotated[Principal, Depends(require("manager", "integration"))]
Id = Annotated[int, Path(ge=1, le=MAX_INT)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]
FilterId = Annotated[int | None, Query(ge=1, le=MAX_INT)]
# a list answers JSON by default and CSV with format=csv (or Accept: text/csv)
LIST: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/csv": {}}}}
ICS: dict[int | str, dict[str, Any]] = {200: {"content": {"text/calendar": {}}}}
EARLIEST, LATEST = 1900, 2200  # beyond these years an instant is a typing error (and overflows on conversion)
INCIDENT_STATUSES = tuple(sorted(set(crm_desk.INCIDENT_TRANSITIONS)
                                 | {s for targets in crm_desk.INCIDENT_TRANSITIONS.values() for s in targets}))


def _plain(value: str) -> str:
    """Text both databases can store: PostgreSQL refuses NUL, and lone surrogates cannot be encoded."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def _instant(value: datetime) -> datetime:
    if not EARLIEST <= value.year <= LATEST:
        raise ValueError(f"must be between the years {EARLIEST} and {LATEST}")
    return value


def _day(value: date) -> date:
    if not EARLIEST <= value.year <= LATEST:
        raise ValueError(f"must be between the years {EARLIEST} and {LATEST}")
    return value


Text = Annotated[str, AfterValidator(_plain)]
Search = Annotated[Text, Query(max_length=200)]
FilterText = Annotated[Text | None, Query(min_length=1, max_length=200)]
When = Annotated[AwareDatetime, AfterValidator(_instant)]
Day = Annotated[date, AfterValidator(_day)]
RefId = Annotated[int, Field(ge=1, le=MAX_INT)]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _fields(**renames: str) -> Iterator[None]:
    """Name the field of a CRM error as the JSON body spells it (``booked_service_id`` → ``serviceId``)."""
    try:
        yield
    except DomainError as exc:
        name = renames.get(exc.field, camel_key(exc.field))
        if name == exc.field:
            raise
        raise DomainError(name, exc.message) from exc


def _conflict(detail: str, errors: list[dict[str, Any]] | None = None) -> ApiProblem:
    return ApiProblem(409, "Conflict", detail, "conflict", errors)


@contextmanager
def _conflicts(*fields: str) -> Iterator[None]:
    """CRM errors on these fields mean "not allowed in the current state": 409 instead of 422."""
    try:
        yield
    except DomainError as exc:
        if camel_key(exc.field) not in {camel_key(f) for f in fields}:  # named as in crm or already renamed
            raise
        raise _conflict(str(exc), [{"field": camel_key(exc.field), "message": exc.message}]) from exc


def _found(read: Callable[..., Any], *args: Any) -> Any:
    """The record of a path id, or 404 (an unknown id in a body stays a 422 from the CRM rules)."""
    try:
        return read(*args)
    except DomainError as exc:
        raise NotFound(str(exc)) from exc


def _choice(field: str, value: str | None, options: tuple[str, ...]) -> str | None:
    """A filter value must be one the CRM knows: a typo is a 422, not an empty list."""
    return None if value is None else crm_checks.one_of(field, value, options)


def _row(row: Any) -> dict[str, Any]:
    return camel_row(row if isinstance(row, dict) else dict(row._mapping))


# --- incidents ---------------------------------------------------------------------------------------------------

class IncidentIn(Camel):
    origin: str = Field(max_length=20)
    account_id: RefId
    contact_id: RefId | None = None
    service_id: RefId | None = None
    category: Text | None = Field(default=None, max_length=50)
    impact: str = Field(max_length=10)
    urgency: str = Field(max_length=10)
    summary: Text = Field(max_length=300)
    description: Text | None = Field(default=None, max_length=20000)


class IncidentAssign(Camel):
    """The routing of an incident: its group (default: the one it has) and person (omitted or null: nobody yet)."""

    assigned_group: Text | None = Field(default=None, max_length=100)
    assignee: Text | None = Field(default=None, max_length=200)


class IncidentStatusIn(Camel):
    status: str = Field(max_length=20)
    resolution: Text | None = Field(default=None, max_length=10000, description="required to resolve")
    assigned_group: Text | None = Field(default=None, max_length=100, description="required to (re)assign")
    assignee: Text | None = Field(default=None, max_length=200)


class LogIn(Camel):
    text: Text = Field(max_length=20000)
    public: bool = False


def _incident(conn: Any, incident_id: int, with_log: bool = True) -> dict[str, Any]:
    row = crm_lists.with_sla_state(dict(_found(crm_desk.get_incident, conn, incident_id)._mapping), _utc_now())
    out = camel_row(row)
    if with_log:
        out["log"] = [_row(r) for r in crm_desk.incident_log_entries(conn, incident_id)]
    return out


@router.get("/incidents", responses=LIST)
def list_incidents(request: Request, _p: Reader, q: Search = "", status: FilterText = None,
                   account_id: Annotated[FilterId, Query(alias="accountId")] = None,
                   group: FilterText = None, priority: FilterText = None,
                   sla_state: Annotated[FilterText, Query(alias="slaState")] = None,
                   limit: Limit = 50, offset: Offset = 0) -> Any:
    """Incidents newest first; ``slaState`` (within, at_risk, breached) keeps open ones in that state."""
    with _fields():
        _choice("status", status, INCIDENT_STATUSES)
        _choice("priority", priority, crm_sla.PRIORITIES)
        _choice("sla_state", sla_state, crm_lists.SLA_STATES)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_incidents(conn, now=_utc_now(), status=status, account_id=account_id,
                                               group=group, priority=priority, sla=sla_state, text=q,
                                               limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "incidents")


@router.post("/incidents", status_code=201)
def create_incident(request: Request, body: IncidentIn, _p: Writer) -> dict[str, Any]:
    """Priority (impact × urgency) and the SLA deadlines of the account's class are computed by the CRM."""
    with engine_of(request).db.transaction() as conn, _fields(booked_service_id="serviceId"):
        incident_id = crm_desk.open_incident(
            conn, body.account_id, body.summary, impact=body.impact, urgency=body.urgency, origin=body.origin,
            contact_id=body.contact_id, booked_service_id=body.service_id, category=body.category,
            description=body.description)
        return _incident(conn, incident_id)


@router.get("/incidents/{incident_id}")
def get_incident(request: Request, incident_id: Id, _p: Reader,
                 public_only: Annotated[bool, Query(alias="publicOnly")] = False) -> dict[str, Any]:
    """The incident with its log (``publicOnly``: what the customer sees)."""
    with engine_of(request).db.read() as conn:
        out = _incident(conn, incident_id, with_log=False)
        out["log"] = [_row(r) for r in crm_desk.incident_log_entries(conn, incident_id, public_only)]
    return out


@router.patch("/incidents/{incident_id}")
def assign_incident(request: Request, incident_id: Id, body: IncidentAssign, _p: Writer) -> dict[str, Any]:
    """Route to a group (and person) as the board does: a new, pending or resolved incident becomes assigned (the
    first routing is the first response of the SLA), an assigned one is re-routed; a closed one is a 409."""
    with engine_of(request).db.transaction() as conn:
        current = _found(crm_desk.get_incident, conn, incident_id)
        group = body.assigned_group if "assigned_group" in body.model_fields_set else current.assigned_group
        with _conflicts("status"), _fields():
            crm_desk.route_incident(conn, incident_id, group or "", body.assignee)
        return _incident(conn, incident_id)


@router.post("/incidents/{incident_id}/status")
def set_incident_status(request: Request, incident_id: Id, body: IncidentStatusIn, _p: Writer) -> dict[str, Any]:
    """Move the incident along its life cycle; a move not allowed from its current status is a 409."""
    with engine_of(request).db.transaction() as conn:
        _found(crm_desk.get_incident, conn, incident_id)
        with _fields():
            crm_checks.one_of("status", body.status, INCIDENT_STATUSES)
        with _conflicts("status"), _fields():
            if body.status == "assigned":
                crm_desk.assign_incident(conn, incident_id, body.assigned_group or "", body.assignee)
            elif body.status == "pending":
                crm_desk.set_pending(conn, incident_id)
            elif body.status == "resolved":
                crm_desk.resolve_incident(conn, incident_id, body.resolution or "")
            elif body.status == "closed":
                crm_desk.close_incident(conn, incident_id)
            else:
                current = crm_desk.get_incident(conn, incident_id).status
                raise DomainError("status", f"status cannot change from {current!r} to {body.status!r}")
        return _incident(conn, incident_id)


@router.post("/incidents/{incident_id}/log", status_code=201)
def add_log_entry(request: Request, incident_id: Id, body: LogIn, principal: Writer) -> dict[str, Any]:
    """A log entry by the caller: ``public`` ones are shown to the customer."""
    with engine_of(request).db.transaction() as conn:
        _found(crm_desk.get_incident, conn, incident_id)
        with _fields():
            entry_id = crm_desk.add_log_entry(conn, incident_id, principal.name, body.text,
                                              "public" if body.public else "internal")
        entries = crm_desk.incident_log_entries(conn, incident_id)
        return next(_row(r) for r in entries if r.id == entry_id)


# --- problems ----------------------------------------------------------------------------------------------------

class ProblemIn(Camel):
    title: Text = Field(max_length=300)
    incident_ids: list[RefId] = Field(default_factory=list, max_length=500)
    root_cause: Text | None = Field(default=None, max_length=20000)
    workaround: Text | None = Field(default=None, max_length=20000)


class ProblemPatch(Camel):
    root_cause: Text | None = Field(default=None, max_length=20000)
    workaround: Text | None = Field(default=None, max_length=20000)


class LinkIn(Camel):
    incident_id: RefId


class ResolutionIn(Camel):
    resolution: Text = Field(max_length=10000)


def _problem(conn: Any, problem_id: int) -> dict[str, Any]:
    out = camel_row(_found(crm_lists.get_problem, conn, problem_id))
    out["incidents"] = [camel_row(r) for r in crm_lists.problem_incidents(conn, problem_id)]
    return out


def _link(conn: Any, problem_id: int, incident_id: int, field: str) -> None:
    """Link one incident; an unknown one is bad input (422), one no longer open a conflict (409)."""
    try:
        status = crm_desk.get_incident(conn, incident_id).status
    except DomainError as exc:
        raise DomainError(field, exc.message) from exc
    if status not in crm_desk.OPEN_INCIDENT:
        raise _conflict(f"incident {incident_id} is already {status}",
                        [{"field": field, "message": f"incident {incident_id} is already {status}"}])
    with _conflicts("problem_id"):
        crm_desk.link_incident(conn, problem_id, incident_id)


@router.get("/problems", responses=LIST)
def list_problems(request: Request, _p: Reader, q: Search = "", status: FilterText = None,
                  limit: Limit = 50, offset: Offset = 0) -> Any:
    with _fields():
        _choice("status", status, ("open", "resolved"))
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_problems(conn, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "problems")


@router.post("/problems", status_code=201)
def create_problem(request: Request, body: ProblemIn, _p: Writer) -> dict[str, Any]:
    """A problem grouping open incidents with the same cause."""
    with engine_of(request).db.transaction() as conn:
        with _fields():
            problem_id = crm_desk.create_problem(conn, body.title, body.root_cause, body.workaround)
        for i, incident_id in enumerate(body.incident_ids):
            _link(conn, problem_id, incident_id, f"incidentIds[{i}]")
        return _problem(conn, problem_id)


@router.get("/problems/{problem_id}")
def get_problem(request: Request, problem_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return _problem(conn, problem_id)


@router.patch("/problems/{problem_id}")
def patch_problem(request: Request, problem_id: Id, body: ProblemPatch, _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _found(crm_lists.get_problem, conn, problem_id)
        with _fields():
            crm_desk.record_analysis(conn, problem_id, body.model_dump(exclude_unset=True), require_open=False)
        return _problem(conn, problem_id)


@router.post("/problems/{problem_id}/incidents")
def link_incident(request: Request, problem_id: Id, body: LinkIn, _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _found(crm_lists.get_problem, conn, problem_id)
        _link(conn, problem_id, body.incident_id, "incidentId")
        return _problem(conn, problem_id)


@router.post("/problems/{problem_id}/resolve")
def resolve_problem(request: Request, problem_id: Id, body: ResolutionIn, _p: Writer) -> dict[str, Any]:
    """Resolve the problem and every incident of it still open; ``resolvedIncidentIds`` lists those."""
    with engine_of(request).db.transaction() as conn:
        _found(crm_lists.get_problem, conn, problem_id)
        with _conflicts("problem_id", "status"), _fields():
            resolved = crm_desk.resolve_problem(conn, problem_id, body.resolution)
        return {**_problem(conn, problem_id), "resolvedIncidentIds": resolved}


# --- opportunities -----------------------------------------------------------------------------------------------

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
    with _fields():
        _choice("stage", stage, crm_opportunities.STAGES)
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
    with engine_of(request).db.transaction() as conn, _fields():
        opportunity_id = crm_opportunities.create_opportunity(conn, crm_opportunities.OpportunityInput(**data))
        return camel_row(crm_lists.get_opportunity(conn, opportunity_id))


@router.get("/opportunities/{opportunity_id}")
def get_opportunity(request: Request, opportunity_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return camel_row(_found(crm_lists.get_opportunity, conn, opportunity_id))


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
        _found(crm_lists.get_opportunity, conn, opportunity_id)
        with _conflicts("stage"), _fields():
            crm_opportunities.update_opportunity(conn, opportunity_id, **body.model_dump(exclude_unset=True))
        return camel_row(crm_lists.get_opportunity(conn, opportunity_id))


@router.post("/opportunities/{opportunity_id}/stage")
def set_stage(request: Request, opportunity_id: Id, body: StageIn, principal: Writer) -> dict[str, Any]:
    """Move an open opportunity to a stage; won and lost are final (a later move is a 409). Won sends the
    message ``opportunity_won``, which starts the order work (``startedInstanceIds``)."""
    with engine_of(request).db.transaction() as conn:
        _found(crm_lists.get_opportunity, conn, opportunity_id)
        with _fields():
            crm_checks.one_of("stage", body.stage, crm_opportunities.STAGES)
        with _conflicts("stage"), _fields():
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


# --- campaigns ---------------------------------------------------------------------------------------------------

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
    out = camel_row(_found(crm_lists.get_campaign, conn, campaign_id))
    out["members"] = [_row(r) for r in crm_campaigns.members(conn, campaign_id)]
    return out


@router.get("/campaigns", responses=LIST)
def list_campaigns(request: Request, _p: Reader, q: Search = "", kind: FilterText = None,
                   limit: Limit = 50, offset: Offset = 0) -> Any:
    with _fields():
        _choice("kind", kind, crm_campaigns.KINDS)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_campaigns(conn, kind, q, limit, offset)
    return page(request, rows, total, limit, offset, "campaigns")


@router.post("/campaigns", status_code=201)
def create_campaign(request: Request, body: CampaignIn, _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn, _fields():
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
        _found(crm_lists.get_campaign, conn, campaign_id)
        with _fields():
            crm_campaigns.update_campaign(conn, campaign_id, **body.model_dump(exclude_unset=True))
        return _campaign(conn, campaign_id)


@router.post("/campaigns/{campaign_id}/members")
def add_members(request: Request, campaign_id: Id, body: MembersIn, _p: Writer) -> dict[str, Any]:
    """Tag contacts; those already tagged stay as they are (``added`` counts the new ones)."""
    with engine_of(request).db.transaction() as conn:
        _found(crm_lists.get_campaign, conn, campaign_id)
        with _fields():
            added = crm_campaigns.add_members(conn, campaign_id, body.contact_ids)
        return {**_campaign(conn, campaign_id), "added": added}


# --- activities --------------------------------------------------------------------------------------------------

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
    with _fields():
        _choice("kind", kind, crm_activities.KINDS)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_activities(conn, account_id=account_id, contact_id=contact_id,
                                                campaign_id=campaign_id, kind=kind, limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "activities")


@router.post("/activities", status_code=201)
def create_activity(request: Request, body: ActivityIn, principal: Writer) -> dict[str, Any]:
    """Record a contact moment by the caller; one about a contact is filed on its account too."""
    data = crm_activities.ActivityInput(author=principal.name, **body.model_dump())
    with engine_of(request).db.transaction() as conn, _fields():
        activity_id = crm_activities.log_activity(conn, data)
        return camel_row(crm_lists.get_activity(conn, activity_id))


@router.get("/activities/{activity_id}")
def get_activity(request: Request, activity_id: Id, _p: Reader) -> dict[str, Any]:
    """One contact moment (the list's row, for a link from a mail log or a document)."""
    with engine_of(request).db.read() as conn:
        return camel_row(_found(crm_lists.get_activity, conn, activity_id))


@router.patch("/activities/{activity_id}")
def patch_activity(request: Request, activity_id: Id, body: ActivityPatch, _p: Writer) -> dict[str, Any]:
    """Correct subject, text or campaign link of a contact moment (checked as on creation)."""
    with engine_of(request).db.transaction() as conn:
        _found(crm_lists.get_activity, conn, activity_id)
        with _fields():
            crm_activities.update_activity(conn, activity_id, **body.model_dump(exclude_unset=True))
        return camel_row(crm_lists.get_activity(conn, activity_id))


@router.get("/accounts/{account_id}/timeline", responses=LIST)
def account_timeline(request: Request, account_id: Id, _p: Reader, kind: FilterText = None,
                     limit: Limit = 50, offset: Offset = 0) -> Any:
    """Everything said with the customer and any of its people, newest first."""
    with _fields():
        _choice("kind", kind, crm_activities.KINDS)
    with engine_of(request).db.read() as conn:
        _found(get_account, conn, account_id)
        rows, total = crm_lists.list_activities(conn, account_id=account_id, kind=kind, limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "timeline")


# --- appointments ------------------------------------------------------------------------------------------------

Participant = Annotated[Text, Field(min_length=1, max_length=200)]


class AppointmentIn(Camel):
    topic: Text = Field(max_length=300)
    starts_at: When
    ends_at: When
    participants: list[Participant] = Field(min_length=1, max_length=100)
    place: Text | None = Field(default=None, max_length=300)
    account_id: RefId | None = None
    contact_id: RefId | None = None


class RescheduleIn(Camel):
    starts_at: When
    ends_at: When


@contextmanager
def _no_collision(conn: Any, names: list[str], start: datetime, end: datetime,
                  exclude_id: int | None = None) -> Iterator[None]:
    """A participant already booked then is a 409 that names the appointment in the way."""
    try:
        yield
    except DomainError as exc:
        found = crm_appointments.collisions(conn, names, start, end, exclude_id) if exc.field == "participants" else []
        if not found:
            raise
        errors = [{"field": "participants", "participant": c.participant, "appointmentId": c.appointment_id,
                   "topic": c.topic, "startsAt": c.starts_at.isoformat(), "endsAt": c.ends_at.isoformat(),
                   "message": f"{c.participant} already has appointment {c.appointment_id} ({c.topic!r}) "
                              f"from {c.starts_at.isoformat()} to {c.ends_at.isoformat()}"} for c in found]
        raise _conflict(str(errors[0]["message"]), errors) from exc


def _calendar(content: bytes, filename: str) -> Response:
    return Response(content, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.ics"'})


@router.get("/appointments", responses=LIST)
def list_appointments(request: Request, _p: Reader, participant: FilterText = None,
                      since: Annotated[When | None, Query(alias="from")] = None, until: When | None = None,
                      status: FilterText = None, account_id: Annotated[FilterId, Query(alias="accountId")] = None,
                      limit: Limit = 50, offset: Offset = 0) -> Any:
    """Appointments overlapping [from, until) by start time, each with its participants."""
    with _fields():
        _choice("status", status, ("planned", "cancelled"))
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_appointments(conn, participant=participant, since=since, until=until,
                                                  status=status, account_id=account_id, limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "appointments")


@router.get("/appointments.ics", response_class=Response, responses=ICS)
def participant_calendar(request: Request, _p: Reader,
                         participant: Annotated[Text, Query(min_length=1, max_length=200)],
                         since: Annotated[When | None, Query(alias="from")] = None,
                         until: When | None = None) -> Response:
    """A participant's appointments as iCalendar (cancelled ones as CANCELLED, so a subscribed calendar
    drops them)."""
    start = since or datetime(EARLIEST, 1, 1, tzinfo=UTC)
    end = until or datetime(LATEST, 12, 31, tzinfo=UTC)
    with engine_of(request).db.read() as conn, _fields():
        ids = crm_appointments.calendar_of(conn, participant, start, end)
        return _calendar(crm_appointments.to_ics(conn, ids), "calendar")


@router.post("/appointments", status_code=201)
def create_appointment(request: Request, body: AppointmentIn, _p: Writer) -> dict[str, Any]:
    """Book an appointment; a participant already booked then is a 409 naming the appointment in the way."""
    data = crm_appointments.AppointmentInput(**{**body.model_dump(), "participants": tuple(body.participants)})
    with engine_of(request).db.transaction() as conn, _fields():
        with _no_collision(conn, list(body.participants), body.starts_at, body.ends_at):
            appointment_id = crm_appointments.create_appointment(conn, data)
        return camel_row(crm_lists.get_appointment(conn, appointment_id))


@router.get("/appointments/{appointment_id}.ics", response_class=Response, responses=ICS)
def appointment_ics(request: Request, appointment_id: Id, _p: Reader) -> Response:
    with engine_of(request).db.read() as conn:
        _found(crm_lists.get_appointment, conn, appointment_id)
        return _calendar(crm_appointments.to_ics(conn, [appointment_id]), f"appointment-{appointment_id}")


@router.get("/appointments/{appointment_id}")
def get_appointment(request: Request, appointment_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return camel_row(_found(crm_lists.get_appointment, conn, appointment_id))


@router.patch("/appointments/{appointment_id}")
def reschedule(request: Request, appointment_id: Id, body: RescheduleIn, _p: Writer) -> dict[str, Any]:
    """Move a planned appointment; the same collision rule applies (it does not collide with itself)."""
    with engine_of(request).db.transaction() as conn:
        current = _found(crm_lists.get_appointment, conn, appointment_id)
        with _conflicts("status"), _fields(), _no_collision(conn, current["participants"], body.starts_at,
                                                            body.ends_at, appointment_id):
            crm_appointments.reschedule(conn, appointment_id, body.starts_at, body.ends_at)
        return camel_row(crm_lists.get_appointment(conn, appointment_id))


@router.post("/appointments/{appointment_id}/cancel")
def cancel_appointment(request: Request, appointment_id: Id, _p: Writer) -> dict[str, Any]:
    """Free the time; cancelling twice is a 409."""
    with engine_of(request).db.transaction() as conn:
        _found(crm_lists.get_appointment, conn, appointment_id)
        with _conflicts("status"):
            crm_appointments.cancel_appointment(conn, appointment_id)
        return camel_row(crm_lists.get_appointment(conn, appointment_id))


# --- staff requests ----------------------------------------------------------------------------------------------

class StaffKind(StrEnum):
    """The path segment of each kind of staff request."""

    time_entries = "time-entries"
    expense_claims = "expense-claims"
    vacation_requests = "vacation-requests"
    sick_notes = "sick-notes"


CRM_KIND = {StaffKind.time_entries: "time_entry", StaffKind.expense_claims: "expense_claim",
            StaffKind.vacation_requests: "vacation_request", StaffKind.sick_notes: "sick_note"}
STAFF_STATUSES = ("submitted", "approved", "rejected", "cancelled")
Employee = Annotated[Text, Field(min_length=1, max_length=200)]


class TimeEntryIn(Camel):
    employee: Employee | None = None
    work_date: Day
    project: Text = Field(max_length=100)
    hours: Decimal = Field(gt=0, le=24, max_digits=4, decimal_places=2)
    description: Text | None = Field(default=None, max_length=500)


class ExpenseItemIn(Camel):
    category: str = Field(max_length=20)
    description: Text = Field(max_length=300)
    amount: Decimal = Field(gt=0, le=1_000_000, max_digits=9, decimal_places=2)
    receipt_document_id: RefId | None = None


class ExpenseClaimIn(Camel):
    employee: Employee | None = None
    purpose: Text = Field(max_length=300)
    trip_start: Day
    trip_end: Day
    items: list[ExpenseItemIn] = Field(min_length=1, max_length=100)


class PeriodIn(Camel):
    employee: Employee | None = None
    first_day: Day
    last_day: Day


class SickNoteIn(PeriodIn):
    certificate_document_id: RefId | None = None


class EntitlementIn(Camel):
    employee: Employee
    year: int = Field(ge=EARLIEST, le=LATEST)
    days: Decimal = Field(ge=0, le=100, max_digits=4, decimal_places=1)


class DecisionIn(Camel):
    approve: bool


class CertificateIn(Camel):
    document_id: RefId


def _acting_for(principal: Principal, named: str | None) -> str:
    """Whose request it is: the caller's own, or anyone's for a manager or an integration."""
    if named is None or named == principal.name:
        return principal.name
    if not principal.has("manager", "integration"):
        raise ApiProblem(403, "Forbidden", "only a manager or an integration can act for another employee",
                         "forbidden")
    return named


def _visible_to(principal: Principal, named: str | None) -> str | None:
    """Staff requests (sick notes!) are personal: a clerk sees their own, managers and integrations anyone's."""
    if principal.has("manager", "integration"):
        return named
    return _acting_for(principal, named)


def _staff_request(conn: Any, principal: Principal, kind: StaffKind, request_id: int) -> dict[str, Any]:
    row: dict[str, Any] = _found(crm_lists.get_staff_request, conn, CRM_KIND[kind], request_id)
    _visible_to(principal, str(row["employee"]))
    out = camel_row(row)
    if "items" in row:
        out["items"] = [camel_row(item) for item in row["items"]]
    return out


def _staff_list(request: Request, principal: Principal, kind: StaffKind, employee: str | None, status: str | None,
                since: date | None, until: date | None, limit: int, offset: int) -> Any:
    with _fields():
        _choice("status", status, STAFF_STATUSES)
    who = _visible_to(principal, employee)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_staff_requests(conn, CRM_KIND[kind], employee=who, status=status,
                                                    since=since, until=until, limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, kind.value)


def _remaining(conn: Any, employee: str, year: int) -> str | None:
    try:
        return str(crm_staff.remaining_vacation(conn, employee, year))
    except DomainError:
        return None


StaffFrom = Annotated[Day | None, Query(alias="from")]


@router.get("/staff/time-entries", responses=LIST)
def list_time_entries(request: Request, principal: Reader, employee: FilterText = None, status: FilterText = None,
                      since: StaffFrom = None, until: Day | None = None, limit: Limit = 50,
                      offset: Offset = 0) -> Any:
    """Time-sheet entries by work date, newest first (a clerk sees their own)."""
    return _staff_list(request, principal, StaffKind.time_entries, employee, status, since, until, limit, offset)


@router.post("/staff/time-entries", status_code=201)
def submit_time_entry(request: Request, body: TimeEntryIn, principal: Writer) -> dict[str, Any]:
    """Book hours on a project (at most 10 h a day, ArbZG § 3)."""
    who = _acting_for(principal, body.employee)
    with engine_of(request).db.transaction() as conn:
        with _fields():
            entry_id = crm_staff.submit_time_entry(conn, who, body.work_date, body.project, body.hours,
                                                   body.description)
        return _staff_request(conn, principal, StaffKind.time_entries, entry_id)


@router.get("/staff/expense-claims", responses=LIST)
def list_expense_claims(request: Request, principal: Reader, employee: FilterText = None,
                        status: FilterText = None, since: StaffFrom = None, until: Day | None = None,
                        limit: Limit = 50, offset: Offset = 0) -> Any:
    return _staff_list(request, principal, StaffKind.expense_claims, employee, status, since, until, limit, offset)


@router.post("/staff/expense-claims", status_code=201)
def submit_expense_claim(request: Request, body: ExpenseClaimIn, principal: Writer) -> dict[str, Any]:
    """A travel expense claim; every item but a per diem needs a receipt document."""
    who = _acting_for(principal, body.employee)
    items = [crm_staff.ExpenseInput(**item.model_dump()) for item in body.items]
    with engine_of(request).db.transaction() as conn:
        with _fields():
            claim_id = crm_staff.submit_expense_claim(conn, who, body.purpose, body.trip_start, body.trip_end, items)
        return _staff_request(conn, principal, StaffKind.expense_claims, claim_id)


@router.get("/staff/vacation-requests", responses=LIST)
def list_vacation_requests(request: Request, principal: Reader, employee: FilterText = None,
                           status: FilterText = None, since: StaffFrom = None, until: Day | None = None,
                           limit: Limit = 50, offset: Offset = 0) -> Any:
    return _staff_list(request, principal, StaffKind.vacation_requests, employee, status, since, until, limit,
                       offset)


@router.post("/staff/vacation-requests", status_code=201)
def request_vacation(request: Request, body: PeriodIn, principal: Writer) -> dict[str, Any]:
    """Ask for vacation (working days, within what is left of the year); the answer tells what remains."""
    who = _acting_for(principal, body.employee)
    with engine_of(request).db.transaction() as conn:
        with _fields():
            request_id = crm_staff.request_vacation(conn, who, body.first_day, body.last_day)
        out = _staff_request(conn, principal, StaffKind.vacation_requests, request_id)
        return {**out, "remainingDays": _remaining(conn, who, body.first_day.year)}


@router.get("/staff/vacation-balance")
def vacation_balance(request: Request, principal: Reader,
                     year: Annotated[int, Query(ge=EARLIEST, le=LATEST)],
                     employee: FilterText = None) -> dict[str, Any]:
    """Vacation days left in a year: the entitlement minus submitted and approved requests."""
    who = _visible_to(principal, employee) or principal.name
    with engine_of(request).db.read() as conn:
        remaining = _remaining(conn, who, year)
    if remaining is None:
        raise NotFound(f"{who} has no vacation entitlement for {year}")
    return {"employee": who, "year": year, "remainingDays": remaining}


@router.put("/staff/vacation-entitlements")
def set_entitlement(request: Request, body: EntitlementIn, _p: Approver) -> dict[str, Any]:
    """The year's vacation days of an employee (contract plus carry-over), replacing what was set."""
    with engine_of(request).db.transaction() as conn:
        with _fields():
            crm_staff.set_entitlement(conn, body.employee, body.year, body.days)
        return {"employee": body.employee, "year": body.year, "days": str(body.days),
                "remainingDays": _remaining(conn, body.employee, body.year)}


@router.get("/staff/sick-notes", responses=LIST)
def list_sick_notes(request: Request, principal: Reader, employee: FilterText = None, status: FilterText = None,
                    since: StaffFrom = None, until: Day | None = None, limit: Limit = 50,
                    offset: Offset = 0) -> Any:
    return _staff_list(request, principal, StaffKind.sick_notes, employee, status, since, until, limit, offset)


@router.post("/staff/sick-notes", status_code=201)
def report_sickness(request: Request, body: SickNoteIn, principal: Writer) -> dict[str, Any]:
    """Report a sickness; more than three days need a doctor's certificate before it is acknowledged."""
    who = _acting_for(principal, body.employee)
    with engine_of(request).db.transaction() as conn:
        with _fields():
            note_id = crm_staff.report_sickness(conn, who, body.first_day, body.last_day,
                                                body.certificate_document_id)
        return _staff_request(conn, principal, StaffKind.sick_notes, note_id)


@router.post("/staff/sick-notes/{note_id}/certificate")
def attach_certificate(request: Request, note_id: Id, body: CertificateIn, principal: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _staff_request(conn, principal, StaffKind.sick_notes, note_id)
        with _fields():
            crm_staff.attach_certificate(conn, note_id, body.document_id)
        return _staff_request(conn, principal, StaffKind.sick_notes, note_id)


@router.get("/staff/{kind}/{request_id}")
def get_staff_request(request: Request, kind: StaffKind, request_id: Id, principal: Reader) -> dict[str, Any]:
    """One staff request (an expense claim with its items)."""
    with engine_of(request).db.read() as conn:
        return _staff_request(conn, principal, kind, request_id)


@router.post("/staff/{kind}/{request_id}/decision")
def decide(request: Request, kind: StaffKind, request_id: Id, body: DecisionIn, principal: Approver
           ) -> dict[str, Any]:
    """Approve or reject a submitted request (not one's own); a request already decided is a 409."""
    with engine_of(request).db.transaction() as conn:
        _staff_request(conn, principal, kind, request_id)
        with _conflicts("status", "certificate_document_id"), _fields():
            crm_staff.decide(conn, CRM_KIND[kind], request_id, body.approve, principal.name)
        return _staff_request(conn, principal, kind, request_id)


@router.post("/staff/{kind}/{request_id}/cancel")
def cancel_request(request: Request, kind: StaffKind, request_id: Id, principal: Writer) -> dict[str, Any]:
    """The employee withdraws a request (an approved vacation gives its days back)."""
    with engine_of(request).db.transaction() as conn:
        row = _staff_request(conn, principal, kind, request_id)
        _acting_for(principal, str(row["employee"]))
        with _conflicts("status"):
            crm_staff.cancel_request(conn, CRM_KIND[kind], request_id)
        return _staff_request(conn, principal, kind, request_id)
