"""Appointments: collision detection per participant, moving and cancelling, iCalendar export."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import icalendar
import pytest
from sqlalchemy.engine import Connection, Engine

from crm import appointments as ap
from crm.accounts import ContactInput, create_contact
from crm.errors import DomainError

from .conftest import NOW

H = timedelta(hours=1)


def _book(conn: Connection, start: datetime, hours: int, *who: str, topic: str = "Termin") -> int:
    return ap.create_appointment(
        conn, ap.AppointmentInput(topic, start, start + hours * H, list(who)), now=NOW
    )


def test_a_participant_cannot_be_in_two_places(conn: Connection) -> None:
    first = _book(conn, NOW, 2, "anna", "bert", topic="Vor-Ort-Termin")
    _book(conn, NOW + 2 * H, 1, "anna")  # back to back is fine: ranges are half-open
    _book(conn, NOW, 1, "carla")  # someone else at the same time
    with pytest.raises(DomainError) as err:
        _book(conn, NOW + H / 2, 1, "dora", "bert")
    assert err.value.field == "participants"
    assert (
        "bert already has 'Vor-Ort-Termin' from 2026-03-02 09:00 to 2026-03-02 11:00 UTC" in err.value.message
    )
    found = ap.collisions(conn, ["anna", "bert", "carla"], NOW - H, NOW + H / 4)
    assert sorted(c.participant for c in found) == ["anna", "bert", "carla"]
    assert ap.collisions(conn, ["anna"], NOW + 3 * H, NOW + 4 * H) == []
    # the same instant in another time zone collides too
    berlin = timezone(timedelta(hours=1))
    assert [
        c.appointment_id
        for c in ap.collisions(
            conn,
            ["bert"],
            datetime(2026, 3, 2, 11, 59, tzinfo=berlin),
            datetime(2026, 3, 2, 12, 30, tzinfo=berlin),
        )
    ] == [first]


def test_moving_and_cancelling(conn: Connection) -> None:
    first = _book(conn, NOW, 1, "anna")
    second = _book(conn, NOW + 2 * H, 1, "anna")
    ap.reschedule(conn, first, NOW + H / 2, NOW + 3 * H / 2)  # overlaps only itself
    with pytest.raises(DomainError):
        ap.reschedule(conn, first, NOW + H, NOW + 5 * H / 2)
    ap.cancel_appointment(conn, second)
    ap.reschedule(conn, first, NOW + H, NOW + 5 * H / 2)  # the cancelled one no longer blocks
    assert ap.get_appointment(conn, first).starts_at == NOW + H
    with pytest.raises(DomainError) as err:
        ap.reschedule(conn, second, NOW, NOW + H)
    assert err.value.field == "status"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ends_at": NOW}, "ends_at"),
        ({"ends_at": NOW + timedelta(days=15)}, "ends_at"),
        ({"starts_at": NOW.replace(tzinfo=None)}, "starts_at"),
        ({"participants": []}, "participants"),
        ({"participants": "anna"}, "participants"),
        ({"topic": " "}, "topic"),
        ({"account_id": 999}, "account_id"),
    ],
)
def test_appointment_validation(conn: Connection, kwargs: dict[str, object], field: str) -> None:
    data = {"topic": "T", "starts_at": NOW, "ends_at": NOW + H, "participants": ["anna"], **kwargs}
    with pytest.raises(DomainError) as err:
        ap.create_appointment(conn, ap.AppointmentInput(**data))  # type: ignore[arg-type]
    assert err.value.field == field


def test_ics_export(conn: Connection, account_id: int) -> None:
    person = create_contact(conn, ContactInput("Müller", "Herr", "Hans", email="hans@example.de"), account_id)
    meeting = ap.create_appointment(
        conn,
        ap.AppointmentInput(
            "Netzplanung Standort Süd",
            NOW,
            NOW + 2 * H,
            ["anna", "bert"],
            place="Hauptstr. 1, Berlin",
            account_id=account_id,
            contact_id=person,
        ),
        now=NOW,
    )
    call = _book(conn, NOW + 3 * H, 1, "anna", topic="Telefonat")
    ap.cancel_appointment(conn, call)
    data = ap.to_ics(conn, ap.calendar_of(conn, "anna", NOW, NOW + timedelta(days=1)), now=NOW)
    parsed = icalendar.Calendar.from_ical(data)
    events = list(parsed.walk("VEVENT"))
    assert [str(e["uid"]) for e in events] == [
        f"appointment-{meeting}@silverflow",
        f"appointment-{call}@silverflow",
    ]
    first = events[0]
    assert first.decoded("dtstart") == NOW and first.decoded("dtend") == NOW + 2 * H
    assert first.decoded("dtstart").tzinfo is not None and first.decoded("dtstart").utcoffset() == timedelta(
        0
    )
    assert (str(first["summary"]), str(first["location"])) == (
        "Netzplanung Standort Süd",
        "Hauptstr. 1, Berlin",
    )
    assert "Teilnehmer: anna, bert" in str(first["description"]) and "Muster GmbH" in str(
        first["description"]
    )
    assert (
        str(first["attendee"]) == "mailto:hans@example.de" and first["attendee"].params["cn"] == "Hans Müller"
    )
    assert str(events[1]["status"]) == "CANCELLED"
    assert b"PRODID:-//Silverflow//CRM appointments//DE" in data
    with pytest.raises(DomainError) as err:
        ap.to_ics(conn, [meeting, 9999])
    assert err.value.field == "appointment_id"


def test_simultaneous_bookings_of_one_slot(engine: Engine) -> None:
    """Eight requests book the same person into overlapping slots at once: exactly one gets the slot."""
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def book(n: int) -> None:
        start = NOW + n * timedelta(minutes=5)
        barrier.wait()
        try:
            with engine.begin() as conn:
                _book(conn, start, 1, "anna", f"helper-{n}")
            outcomes.append("booked")
        except DomainError:
            outcomes.append("collision")

    threads = [threading.Thread(target=book, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["booked"] + ["collision"] * 7
