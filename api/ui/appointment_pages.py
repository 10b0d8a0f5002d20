"""My appointments by day or week, booking a new one (a collision is refused next to the participants field),
and iCalendar downloads of one appointment or of the shown week.

Times are entered and shown on the server's wall clock, the same one the ``dt`` filter of every page uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData

from crm import appointments as appts
from crm import board_queries as bq
from crm import service_queries as crm_lists
from crm.errors import DomainError
from engine.errors import NotFound

from .. import access
from ..deps import engine_of
from ..identity import Principal
from .rendering import PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)

WRITERS = ("clerk", "manager")
VIEWS = ("week", "day")
WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
FIELD_MESSAGES = {
    "topic": "Bitte ein Thema angeben (höchstens 300 Zeichen).",
    "starts_at": "Bitte Beginn als Datum und Uhrzeit angeben.",
    "ends_at": "Das Ende muss nach dem Beginn liegen (höchstens 14 Tage später).",
    "place": "Der Ort darf höchstens 300 Zeichen lang sein.",
    "participants": "Bitte mindestens einen Teilnehmer angeben (Benutzernamen, durch Komma getrennt).",
    "account": "Kunde nicht gefunden.",
    "contact_id": "Dieser Ansprechpartner gehört nicht zum Kunden.",
}
FORM_FIELDS = ("topic", "starts_at", "ends_at", "place", "participants", "account", "contact_id")


@dataclass(frozen=True)
class Day:
    """One column of the calendar: its date and the appointments overlapping it."""

    day: date
    items: list[dict[str, Any]]


def local_midnight(day: date) -> datetime:
    """The start of ``day`` on the server's wall clock, as an aware instant."""
    return datetime.combine(day, time.min).astimezone()


def _parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw) if raw else datetime.now().astimezone().date()
    except ValueError:
        return datetime.now().astimezone().date()


def agenda(conn: Connection, participant: str, since: datetime, until: datetime,
           status: str | None = None) -> list[dict[str, Any]]:
    """The participant's appointments overlapping [since, until), each with participants and customer name."""
    rows, _total = crm_lists.list_appointments(conn, participant=participant, since=since, until=until,
                                               status=status, limit=500)
    names = appts.account_names(conn, [row["account_id"] for row in rows])
    return [{**row, "account_name": names.get(row["account_id"]) if row["account_id"] else None} for row in rows]


def _period(view: str, day: date) -> tuple[date, int]:
    """First day and length of the shown period: the ISO week (Monday first) or the single day."""
    return (day - timedelta(days=day.weekday()), 7) if view == "week" else (day, 1)


@router.get("/appointments", response_class=HTMLResponse)
def appointments_page(request: Request, date: str = "", view: str = "week") -> HTMLResponse:  # noqa: A002
    user = require_user(request)
    view = view if view in VIEWS else "week"
    first, length = _period(view, _parse_day(date))
    since, until = local_midnight(first), local_midnight(first + timedelta(days=length))
    with engine_of(request).db.read() as conn:
        items = agenda(conn, user.name, since, until)
    days = []
    for offset in range(length):
        start, end = local_midnight(first + timedelta(days=offset)), local_midnight(first + timedelta(days=offset + 1))
        days.append(Day(first + timedelta(days=offset), [i for i in items if i["starts_at"] < end and
                                                          i["ends_at"] > start]))
    step, today = timedelta(days=length), datetime.now().astimezone().date()
    return render(request, "appointments.html", user=user, days=days, view=view, first=first,
                  previous=(first - step).isoformat(), following=(first + step).isoformat(), today=today,
                  day_target=(today if first <= today < first + step else first).isoformat(), count=len(items),
                  weekdays=WEEKDAYS,
                  done=request.query_params.get("done") == "created")


@router.get("/appointments/week.ics", response_class=Response)
def week_calendar(request: Request, date: str = "") -> Response:  # noqa: A002
    """The user's appointments of the week containing ``date`` (cancelled ones as CANCELLED)."""
    user = require_user(request)
    first, length = _period("week", _parse_day(date))
    with engine_of(request).db.read() as conn:
        ids = appts.calendar_of(conn, user.name, local_midnight(first), local_midnight(first + timedelta(days=length)))
        content = appts.to_ics(conn, ids)
    return _calendar(content, f"termine-{first.isoformat()}")


@router.get("/appointments/{appointment_id}.ics", response_class=Response)
def appointment_calendar(request: Request, appointment_id: str) -> Response:
    require_user(request)
    if not appointment_id.isdigit() or len(appointment_id) > 18:
        raise NotFound(f"Termin {appointment_id!r} gibt es nicht")
    with engine_of(request).db.read() as conn:
        try:
            content = appts.to_ics(conn, [int(appointment_id)])
        except DomainError as exc:
            raise NotFound(f"Termin {appointment_id} gibt es nicht") from exc
    return _calendar(content, f"termin-{appointment_id}")


def _calendar(content: bytes, filename: str) -> Response:
    return Response(content, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.ics"'})


# -- booking --------------------------------------------------------------------------------------------
def _form_page(request: Request, user: Principal, values: dict[str, str], errors: dict[str, str] | None = None,
               collision: appts.Collision | None = None, status_code: int = 200) -> HTMLResponse:
    found, contacts = None, []
    if values.get("account"):
        with engine_of(request).db.read() as conn:
            found = bq.find_account(conn, values["account"])
            contacts = bq.contacts_of(conn, found["id"]) if found else []
    return render(request, "appointment_new.html", status_code, user=user, values=values, errors=errors or {},
                  account=found, contacts=contacts, collision=collision)


@router.get("/appointments/new", response_class=HTMLResponse)
def new_appointment(request: Request, account_id: str = "", account: str = "") -> HTMLResponse:
    """The booking form; from the customer view it comes with the customer filled in."""
    user = require_user(request, *WRITERS)
    return _form_page(request, user, {"account": account or account_id, "participants": user.name})


def _when(raw: str) -> datetime | None:
    """A ``datetime-local`` value (server wall clock) as an aware instant; None when it is no date and time."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed.astimezone() if parsed.tzinfo is None else parsed


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _checked_input(conn: Connection, values: dict[str, str]) -> tuple[appts.AppointmentInput | None,
                                                                     dict[str, str]]:
    """Field by field before the CRM sees the data (its own checks, and the collision rule, remain the last word)."""
    errors: dict[str, str] = {}
    starts_at, ends_at = _when(values["starts_at"]), _when(values["ends_at"])
    if starts_at is None:
        errors["starts_at"] = FIELD_MESSAGES["starts_at"]
    if ends_at is None or (starts_at is not None and ends_at <= starts_at):
        errors["ends_at"] = FIELD_MESSAGES["ends_at"]
    participants = [name.strip() for name in values["participants"].split(",") if name.strip()]
    if not participants:
        errors["participants"] = FIELD_MESSAGES["participants"]
    if not values["topic"] or len(values["topic"]) > 300:
        errors["topic"] = FIELD_MESSAGES["topic"]
    found = bq.find_account(conn, values["account"]) if values["account"] else None
    if values["account"] and found is None:
        errors["account"] = FIELD_MESSAGES["account"]
    contact_id = int(values["contact_id"]) if values["contact_id"].isdigit() else None
    own_contacts = {c["id"] for c in bq.contacts_of(conn, found["id"])} if found else set()
    if values["contact_id"] and contact_id not in own_contacts:
        errors["contact_id"] = FIELD_MESSAGES["contact_id"]
    if errors or starts_at is None or ends_at is None:
        return None, errors
    return appts.AppointmentInput(topic=values["topic"], starts_at=starts_at, ends_at=ends_at,
                                  participants=tuple(participants), place=values["place"] or None,
                                  account_id=int(found["id"]) if found else None, contact_id=contact_id), {}


class _Refused(Exception):
    """Leaves the booking transaction without a trace, carrying what to show next to the fields."""

    def __init__(self, errors: dict[str, str], collision: appts.Collision | None = None) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors
        self.collision = collision


@router.post("/appointments/new", response_model=None)
def book_appointment(request: Request, form: PageForm) -> Response:
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    values = {name: _text(form, name) for name in FORM_FIELDS}
    try:
        with engine_of(request).db.transaction() as conn:
            data, errors = _checked_input(conn, values)
            if data is None:
                raise _Refused(errors)
            try:
                appointment_id = appts.create_appointment(conn, data)
            except DomainError as exc:
                clash = appts.collisions(conn, data.participants, data.starts_at, data.ends_at) \
                    if exc.field == "participants" else []
                field = "account" if exc.field == "account_id" else exc.field
                shown = replace(clash[0], topic=access.collision_topic(
                    user, appts.participants_of(conn, clash[0].appointment_id), clash[0].topic)) if clash else None
                raise _Refused({field: FIELD_MESSAGES.get(field, exc.message)}, shown) from exc
    except _Refused as refused:
        return _form_page(request, user, values, refused.errors, refused.collision, 422)
    day = data.starts_at.astimezone().date().isoformat()
    return RedirectResponse(f"/appointments?date={day}&done=created#appointment-{appointment_id}", status_code=303)
