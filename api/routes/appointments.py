"""Appointments (``crm.appointments``): book, move and cancel; a participant booked twice at once is a
409 naming the appointment in the way; single appointments and a participant's calendar as iCalendar.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field

from crm import appointments as crm_appointments
from crm import service_queries as crm_lists
from crm.errors import DomainError

from .. import access
from ..deps import (
    EARLIEST,
    ICS,
    LATEST,
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
    conflict,
    crm_errors,
    engine_of,
    found,
)
from ..identity import Principal
from ..listing import camel_row, page
from ..models import Camel
from ..problems import ApiProblem

router = APIRouter(tags=["service desk"])


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
def _no_collision(conn: Any, principal: Principal, names: list[str], start: datetime, end: datetime,
                  exclude_id: int | None = None) -> Iterator[None]:
    """A participant already booked then is a 409 that names the appointment in the way (its topic only to
    whom may see it)."""
    try:
        yield
    except DomainError as exc:
        found = crm_appointments.collisions(conn, names, start, end, exclude_id) if exc.field == "participants" else []
        if not found:
            raise
        topics = [access.collision_topic(principal, crm_appointments.participants_of(conn, c.appointment_id), c.topic)
                  for c in found]
        errors = [{"field": "participants", "participant": c.participant, "appointmentId": c.appointment_id,
                   "topic": topic, "startsAt": c.starts_at.isoformat(), "endsAt": c.ends_at.isoformat(),
                   "message": f"{c.participant} already has appointment {c.appointment_id} ({topic!r}) "
                              f"from {c.starts_at.isoformat()} to {c.ends_at.isoformat()}"}
                  for c, topic in zip(found, topics, strict=True)]
        raise conflict(str(errors[0]["message"]), errors) from exc


def _calendar(content: bytes, filename: str) -> Response:
    return Response(content, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.ics"'})


@router.get("/appointments", responses=LIST)
def list_appointments(request: Request, principal: Reader, participant: FilterText = None,
                      since: Annotated[When | None, Query(alias="from")] = None, until: When | None = None,
                      status: FilterText = None, account_id: Annotated[FilterId, Query(alias="accountId")] = None,
                      limit: Limit = 50, offset: Offset = 0) -> Any:
    """Appointments overlapping [from, until) by start time, each with its participants."""
    choice("status", status, ("planned", "cancelled"))
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_appointments(conn, participant=participant, since=since, until=until,
                                                  status=status, account_id=account_id, limit=limit, offset=offset)
    return page(request, [access.appointment_for(principal, row) for row in rows], total, limit, offset,
                "appointments")


@router.get("/appointments.ics", response_class=Response, responses=ICS)
def participant_calendar(request: Request, principal: Reader,
                         participant: Annotated[Text, Query(min_length=1, max_length=200)],
                         since: Annotated[When | None, Query(alias="from")] = None,
                         until: When | None = None) -> Response:
    """A participant's appointments as iCalendar (cancelled ones as CANCELLED, so a subscribed calendar
    drops them)."""
    if not access.may_see_appointment(principal, [participant]):
        raise ApiProblem(403, "Forbidden", "a calendar is its owner's (or a manager's) to subscribe to", "forbidden")
    start = since or datetime(EARLIEST, 1, 1, tzinfo=UTC)
    end = until or datetime(LATEST, 12, 31, tzinfo=UTC)
    with engine_of(request).db.read() as conn, crm_errors():
        ids = crm_appointments.calendar_of(conn, participant, start, end)
        return _calendar(crm_appointments.to_ics(conn, ids), "calendar")


@router.post("/appointments", status_code=201)
def create_appointment(request: Request, body: AppointmentIn, principal: Writer) -> dict[str, Any]:
    """Book an appointment; a participant already booked then is a 409 naming the appointment in the way."""
    data = crm_appointments.AppointmentInput(**{**body.model_dump(), "participants": tuple(body.participants)})
    with engine_of(request).db.transaction() as conn, crm_errors():
        with _no_collision(conn, principal, list(body.participants), body.starts_at, body.ends_at):
            appointment_id = crm_appointments.create_appointment(conn, data)
        return camel_row(crm_lists.get_appointment(conn, appointment_id))


@router.get("/appointments/{appointment_id}.ics", response_class=Response, responses=ICS)
def appointment_ics(request: Request, appointment_id: Id, principal: Reader) -> Response:
    with engine_of(request).db.read() as conn:
        row = found(crm_lists.get_appointment, conn, appointment_id)
        if not access.may_see_appointment(principal, row["participants"]):
            raise ApiProblem(403, "Forbidden", "the appointment is its participants' (or a manager's)", "forbidden")
        return _calendar(crm_appointments.to_ics(conn, [appointment_id]), f"appointment-{appointment_id}")


@router.get("/appointments/{appointment_id}")
def get_appointment(request: Request, appointment_id: Id, principal: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return camel_row(access.appointment_for(principal, found(crm_lists.get_appointment, conn, appointment_id)))


@router.patch("/appointments/{appointment_id}")
def reschedule(request: Request, appointment_id: Id, body: RescheduleIn, principal: Writer) -> dict[str, Any]:
    """Move a planned appointment; the same collision rule applies (it does not collide with itself)."""
    with engine_of(request).db.transaction() as conn:
        current = found(crm_lists.get_appointment, conn, appointment_id)
        with crm_errors("status"), _no_collision(conn, principal, current["participants"], body.starts_at,
                                                            body.ends_at, appointment_id):
            crm_appointments.reschedule(conn, appointment_id, body.starts_at, body.ends_at)
        return camel_row(crm_lists.get_appointment(conn, appointment_id))


@router.post("/appointments/{appointment_id}/cancel")
def cancel_appointment(request: Request, appointment_id: Id, _p: Writer) -> dict[str, Any]:
    """Free the time; cancelling twice is a 409."""
    with engine_of(request).db.transaction() as conn:
        found(crm_lists.get_appointment, conn, appointment_id)
        with crm_errors("status"):
            crm_appointments.cancel_appointment(conn, appointment_id)
        return camel_row(crm_lists.get_appointment(conn, appointment_id))
