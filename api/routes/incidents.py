"""Incidents and the problems that group them (``crm.service_desk``): open, route, move along the life
cycle, log; group incidents with the same cause into a problem whose resolution resolves them.

Business rules live in ``crm``; CRM errors are translated by ``deps.crm_errors``: a 422 naming the (camelCase)
field, an unknown id in the path a 404, a state change not allowed now (a status transition, linking an incident
no longer open) a 409 naming what is in the way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from crm import service_desk as crm_desk
from crm import service_queries as crm_lists
from crm import sla as crm_sla
from crm import validation as crm_checks
from crm.errors import DomainError

from ..deps import (
    LIST,
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
    conflict,
    crm_errors,
    engine_of,
    found,
    record,
    utc_now,
)
from ..listing import camel_row, page
from ..models import Camel

router = APIRouter(tags=["service desk"])

INCIDENT_STATUSES = tuple(sorted(set(crm_desk.INCIDENT_TRANSITIONS)
                                 | {s for targets in crm_desk.INCIDENT_TRANSITIONS.values() for s in targets}))


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
    row = crm_lists.with_sla_state(dict(found(crm_desk.get_incident, conn, incident_id)._mapping), utc_now())
    out = camel_row(row)
    if with_log:
        out["log"] = [record(r) for r in crm_desk.incident_log_entries(conn, incident_id)]
    return out


@router.get("/incidents", responses=LIST)
def list_incidents(request: Request, _p: Reader, q: Search = "", status: FilterText = None,
                   account_id: Annotated[FilterId, Query(alias="accountId")] = None,
                   group: FilterText = None, priority: FilterText = None,
                   sla_state: Annotated[FilterText, Query(alias="slaState")] = None,
                   limit: Limit = 50, offset: Offset = 0) -> Any:
    """Incidents newest first; ``slaState`` (within, at_risk, breached) keeps open ones in that state."""
    choice("status", status, INCIDENT_STATUSES)
    choice("priority", priority, crm_sla.PRIORITIES)
    choice("sla_state", sla_state, crm_lists.SLA_STATES)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_incidents(conn, now=utc_now(), status=status, account_id=account_id,
                                               group=group, priority=priority, sla=sla_state, text=q,
                                               limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, "incidents")


@router.post("/incidents", status_code=201)
def create_incident(request: Request, body: IncidentIn, _p: Writer) -> dict[str, Any]:
    """Priority (impact × urgency) and the SLA deadlines of the account's class are computed by the CRM."""
    with engine_of(request).db.transaction() as conn, crm_errors(booked_service_id="serviceId"):
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
        out["log"] = [record(r) for r in crm_desk.incident_log_entries(conn, incident_id, public_only)]
    return out


@router.patch("/incidents/{incident_id}")
def assign_incident(request: Request, incident_id: Id, body: IncidentAssign, _p: Writer) -> dict[str, Any]:
    """Route to a group (and person) as the board does: a new, pending or resolved incident becomes assigned (the
    first routing is the first response of the SLA), an assigned one is re-routed; a closed one is a 409."""
    with engine_of(request).db.transaction() as conn:
        current = found(crm_desk.get_incident, conn, incident_id)
        group = body.assigned_group if "assigned_group" in body.model_fields_set else current.assigned_group
        with crm_errors("status"):
            crm_desk.route_incident(conn, incident_id, group or "", body.assignee)
        return _incident(conn, incident_id)


@router.post("/incidents/{incident_id}/status")
def set_incident_status(request: Request, incident_id: Id, body: IncidentStatusIn, _p: Writer) -> dict[str, Any]:
    """Move the incident along its life cycle; a move not allowed from its current status is a 409."""
    with engine_of(request).db.transaction() as conn:
        found(crm_desk.get_incident, conn, incident_id)
        with crm_errors():
            crm_checks.one_of("status", body.status, INCIDENT_STATUSES)
        with crm_errors("status"):
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
        found(crm_desk.get_incident, conn, incident_id)
        with crm_errors():
            entry_id = crm_desk.add_log_entry(conn, incident_id, principal.name, body.text,
                                              "public" if body.public else "internal")
        entries = crm_desk.incident_log_entries(conn, incident_id)
        return next(record(r) for r in entries if r.id == entry_id)


# --- problems -----------------------------------------------------------------------------------------------------

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
    out = camel_row(found(crm_lists.get_problem, conn, problem_id))
    out["incidents"] = [camel_row(r) for r in crm_lists.problem_incidents(conn, problem_id)]
    return out


def _link(conn: Any, problem_id: int, incident_id: int, field: str) -> None:
    """Link one incident; an unknown one is bad input (422), one no longer open a conflict (409)."""
    try:
        status = crm_desk.get_incident(conn, incident_id).status
    except DomainError as exc:
        raise DomainError(field, exc.message) from exc
    if status not in crm_desk.OPEN_INCIDENT:
        raise conflict(f"incident {incident_id} is already {status}",
                        [{"field": field, "message": f"incident {incident_id} is already {status}"}])
    with crm_errors("problem_id"):
        crm_desk.link_incident(conn, problem_id, incident_id)


@router.get("/problems", responses=LIST)
def list_problems(request: Request, _p: Reader, q: Search = "", status: FilterText = None,
                  limit: Limit = 50, offset: Offset = 0) -> Any:
    choice("status", status, ("open", "resolved"))
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_problems(conn, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "problems")


@router.post("/problems", status_code=201)
def create_problem(request: Request, body: ProblemIn, _p: Writer) -> dict[str, Any]:
    """A problem grouping open incidents with the same cause."""
    with engine_of(request).db.transaction() as conn:
        with crm_errors():
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
        found(crm_lists.get_problem, conn, problem_id)
        with crm_errors():
            crm_desk.record_analysis(conn, problem_id, body.model_dump(exclude_unset=True), require_open=False)
        return _problem(conn, problem_id)


@router.post("/problems/{problem_id}/incidents")
def link_incident(request: Request, problem_id: Id, body: LinkIn, _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_problem, conn, problem_id)
        _link(conn, problem_id, body.incident_id, "incidentId")
        return _problem(conn, problem_id)


@router.post("/problems/{problem_id}/resolve")
def resolve_problem(request: Request, problem_id: Id, body: ResolutionIn, _p: Writer) -> dict[str, Any]:
    """Resolve the problem and every incident of it still open; ``resolvedIncidentIds`` lists those."""
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_problem, conn, problem_id)
        with crm_errors("problem_id", "status"):
            resolved = crm_desk.resolve_problem(conn, problem_id, body.resolution)
        return {**_problem(conn, problem_id), "resolvedIncidentIds": resolved}
