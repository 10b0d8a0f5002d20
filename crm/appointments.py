"""Appointments with customers: a time range, place, topic and participants (user names).

A participant cannot be in two planned appointments at once: ranges are half-open, so one meeting may end at
10:00 and the next begin at 10:00. The check runs when an appointment is booked or moved, after taking a lock
per participant (their row in the counter table), so two bookings at the same moment cannot both pass it.
Appointments are exported as iCalendar (RFC 5545) with stable UIDs, so re-importing an export updates instead
of duplicating.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import icalendar
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .numbering import next_value
from .schema import account, appointment, appointment_participant, contact
from .status import Transitions, change_status

MAX_DURATION = timedelta(days=14)
TRANSITIONS: Transitions = {"planned": frozenset({"cancelled"})}
PRODID = "-//Silverflow//CRM appointments//DE"


@dataclass(frozen=True)
class AppointmentInput:
    topic: str
    starts_at: datetime
    ends_at: datetime
    participants: Sequence[str]
    place: str | None = None
    account_id: int | None = None
    contact_id: int | None = None


@dataclass(frozen=True)
class Collision:
    participant: str
    appointment_id: int
    topic: str
    starts_at: datetime
    ends_at: datetime


def _range(starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
    start, end = v.aware("starts_at", starts_at), v.aware("ends_at", ends_at)
    if end <= start:
        raise DomainError("ends_at", "ends_at must be after starts_at")
    if end - start > MAX_DURATION:
        raise DomainError("ends_at", f"an appointment lasts at most {MAX_DURATION.days} days")
    return start, end


def _participants(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        raise DomainError("participants", "participants must be a list of names")
    cleaned = sorted({v.required_text("participants", name, 200) for name in names})
    if not cleaned:
        raise DomainError("participants", "an appointment needs at least one participant")
    return cleaned


def collisions(
    conn: Connection,
    participants: Iterable[str],
    starts_at: datetime,
    ends_at: datetime,
    exclude_id: int | None = None,
) -> list[Collision]:
    """Planned appointments of any of ``participants`` overlapping [starts_at, ends_at)."""
    start, end = _range(starts_at, ends_at)
    query = (
        sa.select(
            appointment_participant.c.participant,
            appointment.c.id,
            appointment.c.topic,
            appointment.c.starts_at,
            appointment.c.ends_at,
        )
        .join(appointment, appointment.c.id == appointment_participant.c.appointment_id)
        .where(
            appointment_participant.c.participant.in_(_participants(participants)),
            appointment.c.status == "planned",
            appointment.c.starts_at < end,
            appointment.c.ends_at > start,
        )
        .order_by(appointment.c.starts_at, appointment_participant.c.participant)
    )
    if exclude_id is not None:
        query = query.where(appointment.c.id != exclude_id)
    return [Collision(r.participant, int(r.id), r.topic, r.starts_at, r.ends_at) for r in conn.execute(query)]


def _lock_calendars(conn: Connection, names: Iterable[str]) -> None:
    """Serialise bookings per participant until commit (row lock on PostgreSQL, write lock on SQLite).

    The counter row of each participant is bumped in name order, so two bookings never wait on each other
    crosswise. The key is a hash because counter kinds are short.
    """
    for name in sorted(names):
        next_value(conn, "calendar:" + hashlib.sha256(name.encode()).hexdigest()[:20])


def _refuse_collisions(found: list[Collision]) -> None:
    if found:
        first = found[0]
        raise DomainError(
            "participants",
            f"{first.participant} already has {first.topic!r} from {first.starts_at:%Y-%m-%d %H:%M} "
            f"to {first.ends_at:%Y-%m-%d %H:%M} UTC",
        )


def create_appointment(conn: Connection, data: AppointmentInput, now: datetime | None = None) -> int:
    """Book an appointment unless a participant is already booked at that time."""
    start, end = _range(data.starts_at, data.ends_at)
    names = _participants(data.participants)
    for table, row_id, field in (
        (account, data.account_id, "account_id"),
        (contact, data.contact_id, "contact_id"),
    ):
        if (
            row_id is not None
            and conn.execute(sa.select(table.c.id).where(table.c.id == row_id)).first() is None
        ):
            raise DomainError(field, f"{field} {row_id} does not exist")
    _lock_calendars(conn, names)
    _refuse_collisions(collisions(conn, names, start, end))
    values = {
        "topic": v.required_text("topic", data.topic, 300),
        "place": v.optional_text("place", data.place, 300),
        "starts_at": start,
        "ends_at": end,
        "account_id": data.account_id,
        "contact_id": data.contact_id,
        "status": "planned",
        "created_at": v.timestamp(now),
    }
    appointment_id = int(
        conn.execute(appointment.insert().values(**values).returning(appointment.c.id)).scalar_one()
    )
    conn.execute(
        appointment_participant.insert(),
        [{"appointment_id": appointment_id, "participant": name} for name in names],
    )
    return appointment_id


def participants_of(conn: Connection, appointment_id: int) -> list[str]:
    query = (
        sa.select(appointment_participant.c.participant)
        .where(appointment_participant.c.appointment_id == appointment_id)
        .order_by(appointment_participant.c.participant)
    )
    return [str(name) for name in conn.execute(query).scalars()]


def get_appointment(conn: Connection, appointment_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(appointment).where(appointment.c.id == appointment_id)).one_or_none()
    if row is None:
        raise DomainError("appointment_id", f"appointment {appointment_id} does not exist")
    return row


def reschedule(conn: Connection, appointment_id: int, starts_at: datetime, ends_at: datetime) -> None:
    """Move a planned appointment; the same collision rule applies (it does not collide with itself)."""
    if get_appointment(conn, appointment_id).status != "planned":
        raise DomainError("status", "only a planned appointment can be moved")
    start, end = _range(starts_at, ends_at)
    names = participants_of(conn, appointment_id)
    _lock_calendars(conn, names)
    _refuse_collisions(collisions(conn, names, start, end, exclude_id=appointment_id))
    conn.execute(
        appointment.update().where(appointment.c.id == appointment_id).values(starts_at=start, ends_at=end)
    )


def cancel_appointment(conn: Connection, appointment_id: int) -> None:
    """A cancelled appointment frees its time and is exported as CANCELLED."""
    change_status(conn, appointment, appointment_id, TRANSITIONS, "cancelled")


def to_ics(conn: Connection, appointment_ids: Iterable[int], now: datetime | None = None) -> bytes:
    """An iCalendar file with one VEVENT per appointment (times in UTC; the contact as attendee)."""
    stamp = v.timestamp(now)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    ids = sorted(set(appointment_ids))
    query = (
        sa.select(
            appointment,
            contact.c.email,
            contact.c.first_name,
            contact.c.last_name,
            account.c.name.label("account_name"),
        )
        .outerjoin(contact, contact.c.id == appointment.c.contact_id)
        .outerjoin(account, account.c.id == appointment.c.account_id)
        .where(appointment.c.id.in_(ids))
        .order_by(appointment.c.starts_at, appointment.c.id)
    )
    rows = list(conn.execute(query))
    if len(rows) != len(ids):
        missing = sorted(set(ids) - {int(r.id) for r in rows})
        raise DomainError("appointment_id", f"appointments {missing} do not exist")
    for row in rows:
        event = icalendar.Event()
        event.add("uid", f"appointment-{row.id}@silverflow")
        event.add("dtstamp", stamp)
        event.add("dtstart", row.starts_at)
        event.add("dtend", row.ends_at)
        event.add("summary", row.topic)
        event.add("status", "CANCELLED" if row.status == "cancelled" else "CONFIRMED")
        if row.place:
            event.add("location", row.place)
        lines = [f"Kunde: {row.account_name}"] if row.account_name else []
        lines.append("Teilnehmer: " + ", ".join(participants_of(conn, int(row.id))))
        event.add("description", "\n".join(lines))
        if row.email:
            attendee = icalendar.vCalAddress(f"mailto:{row.email}")
            attendee.params["cn"] = icalendar.vText(" ".join(p for p in (row.first_name, row.last_name) if p))
            event.add("attendee", attendee, encode=False)
        calendar.add_component(event)
    return bytes(calendar.to_ical())


def calendar_of(conn: Connection, participant: str, since: datetime, until: datetime) -> list[int]:
    """Ids of a participant's appointments (planned or cancelled) overlapping [since, until)."""
    start, end = v.aware("since", since), v.aware("until", until)
    query = (
        sa.select(appointment.c.id)
        .join(appointment_participant, appointment_participant.c.appointment_id == appointment.c.id)
        .where(
            appointment_participant.c.participant == participant,
            appointment.c.starts_at < end,
            appointment.c.ends_at > start,
        )
        .order_by(appointment.c.starts_at)
    )
    return [int(i) for i in conn.execute(query).scalars()]


def account_names(conn: Connection, account_ids: Iterable[int | None]) -> dict[int, str]:
    """Names of the customers a page of appointments is with, in one query (calendar views show them)."""
    ids = sorted({int(i) for i in account_ids if i is not None})
    if not ids:
        return {}
    query = sa.select(account.c.id, account.c.name).where(account.c.id.in_(ids))
    return {int(row.id): str(row.name) for row in conn.execute(query)}


def booked_appointment(conn: Connection, data: AppointmentInput) -> int | None:
    """The planned appointment with this topic, time and customer, if one is booked: a retried booking finds it
    instead of colliding with itself."""
    start, end = _range(data.starts_at, data.ends_at)
    query = sa.select(appointment.c.id).where(
        appointment.c.status == "planned",
        appointment.c.topic == data.topic,
        appointment.c.starts_at == start,
        appointment.c.ends_at == end,
        appointment.c.account_id.is_(None) if data.account_id is None else appointment.c.account_id == data.account_id,
    )
    found = conn.execute(query.order_by(appointment.c.id)).scalars().first()
    return int(found) if found is not None else None
