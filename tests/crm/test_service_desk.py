"""Incidents (priority matrix, SLA deadlines, status rules) and problems resolving their incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from crm import service_desk as sd
from crm import sla
from crm.accounts import ContactInput, create_account, create_contact
from crm.errors import DomainError

from .conftest import NOW


@pytest.mark.parametrize(
    ("impact", "urgency", "expected"),
    [
        ("high", "high", "P1"),
        ("high", "medium", "P2"),
        ("medium", "high", "P2"),
        ("high", "low", "P3"),
        ("medium", "medium", "P3"),
        ("low", "high", "P3"),
        ("medium", "low", "P4"),
        ("low", "medium", "P4"),
        ("low", "low", "P4"),
    ],
)
def test_priority_matrix(impact: str, urgency: str, expected: str) -> None:
    assert sla.priority(impact, urgency) == expected


def test_priority_input_errors_name_the_field() -> None:
    with pytest.raises(DomainError) as err:
        sla.priority("huge", "high")
    assert err.value.field == "impact"
    with pytest.raises(DomainError) as err:
        sla.priority("high", "now")
    assert err.value.field == "urgency"


@pytest.mark.parametrize(
    ("sla_class", "prio", "response", "resolution"),
    [
        ("gold", "P1", timedelta(minutes=15), timedelta(hours=4)),
        ("silver", "P2", timedelta(hours=1), timedelta(hours=16)),
        ("bronze", "P4", timedelta(hours=24), timedelta(days=10)),
    ],
)
def test_sla_deadlines(sla_class: str, prio: str, response: timedelta, resolution: timedelta) -> None:
    """Gold runs round the clock; silver P2 and bronze run on office hours (Mo–Fr 8–18 Berlin)."""
    due = sla.deadlines(sla_class, prio, NOW)
    calendar = sla.sla_calendar(sla_class, prio)
    assert calendar.working_time(NOW, due.response_due) == response
    assert calendar.working_time(NOW, due.resolution_due) == resolution
    if sla_class == "gold":
        assert due == sla.Deadlines(NOW + response, NOW + resolution)
    if sla_class == "silver":  # Monday 10:00 CET + 16 working hours = Tuesday 16:00 CET
        assert due.resolution_due == datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def test_sla_deadline_input_errors() -> None:
    for args, field in [
        (("platinum", "P1", NOW), "sla_class"),
        (("gold", "P9", NOW), "priority"),
        (("gold", "P1", NOW.replace(tzinfo=None)), "opened_at"),
    ]:
        with pytest.raises(DomainError) as err:
            sla.deadlines(*args)  # type: ignore[arg-type]
        assert err.value.field == field


def test_deadline_missed() -> None:
    due = NOW + timedelta(hours=1)
    assert not sla.missed(due, None, NOW)
    assert sla.missed(due, None, due + timedelta(seconds=1))
    assert not sla.missed(due, due, due + timedelta(days=1))  # done exactly on time
    assert sla.missed(due, due + timedelta(minutes=1), due + timedelta(minutes=1))


def test_incident_gets_priority_and_deadlines_from_the_account(conn: Connection, account_id: int) -> None:
    contact_id = create_contact(conn, ContactInput("Meier"), account_id)
    incident_id = sd.open_incident(
        conn,
        account_id,
        "Leitung tot",
        impact="high",
        urgency="high",
        origin="monitoring",
        contact_id=contact_id,
        now=NOW,
    )
    row = sd.get_incident(conn, incident_id)
    assert (row.number, row.priority, row.status) == ("I-2026-00001", "P1", "new")
    assert row.response_due == NOW + timedelta(minutes=15)  # the account is gold
    assert row.resolution_due == NOW + timedelta(hours=4)
    bronze = create_account(conn, "Klein KG")
    other = sd.open_incident(conn, bronze, "Langsam", impact="medium", urgency="medium", now=NOW)
    due = sd.get_incident(conn, other).resolution_due
    assert sla.sla_calendar("bronze", "P3").working_time(NOW, due) == timedelta(hours=96)


def test_incident_input_errors(conn: Connection, account_id: int) -> None:
    stranger = create_contact(conn, ContactInput("Fremd"))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"origin": "pigeon"}, "origin"),
        ({"contact_id": stranger}, "contact_id"),
        ({"impact": "x"}, "impact"),
    ]
    for extra, field in cases:
        kwargs: dict[str, Any] = {"impact": "low", "urgency": "low", **extra}
        with pytest.raises(DomainError) as err:
            sd.open_incident(conn, account_id, "x", **kwargs)
        assert err.value.field == field
    with pytest.raises(DomainError) as err:
        sd.open_incident(conn, account_id, " ", impact="low", urgency="low")
    assert err.value.field == "summary"


def test_incident_lifecycle(conn: Connection, account_id: int) -> None:
    incident_id = sd.open_incident(conn, account_id, "VoIP rauscht", impact="medium", urgency="high", now=NOW)
    with pytest.raises(DomainError, match="from 'new' to 'closed'"):
        sd.close_incident(conn, incident_id)
    sd.assign_incident(conn, incident_id, "voice", "anna", now=NOW + timedelta(minutes=5))
    sd.set_pending(conn, incident_id)
    sd.assign_incident(conn, incident_id, "voice", "bert", now=NOW + timedelta(hours=2))
    row = sd.get_incident(conn, incident_id)
    assert row.responded_at == NOW + timedelta(minutes=5)  # the first response counts
    assert row.assignee == "bert"
    sd.resolve_incident(conn, incident_id, "Codec umgestellt", now=NOW + timedelta(hours=3))
    sd.close_incident(conn, incident_id, now=NOW + timedelta(days=1))
    assert sd.get_incident(conn, incident_id).status == "closed"
    with pytest.raises(DomainError):
        sd.assign_incident(conn, incident_id, "voice")


def test_resolving_a_problem_resolves_its_open_incidents(conn: Connection, account_id: int) -> None:
    ids = [
        sd.open_incident(conn, account_id, f"Ausfall {i}", impact="high", urgency="medium", now=NOW)
        for i in range(4)
    ]
    unrelated = sd.open_incident(conn, account_id, "Anderes", impact="low", urgency="low", now=NOW)
    problem_id = sd.create_problem(conn, "DSLAM Frankfurt defekt", root_cause="Netzteil", now=NOW)
    for incident_id in ids:
        sd.link_incident(conn, problem_id, incident_id)
    sd.assign_incident(conn, ids[1], "access")
    sd.assign_incident(conn, ids[2], "access")
    sd.set_pending(conn, ids[2])
    sd.resolve_incident(conn, ids[3], "Selbst erledigt", now=NOW)
    resolved = sd.resolve_problem(conn, problem_id, "Netzteil getauscht", now=NOW + timedelta(hours=2))
    assert resolved == ids[:3]
    for incident_id in ids[:3]:
        row = sd.get_incident(conn, incident_id)
        assert row.status == "resolved"
        assert "Netzteil getauscht" in row.resolution
    assert sd.get_incident(conn, ids[3]).resolution == "Selbst erledigt"
    assert sd.get_incident(conn, unrelated).status == "new"
    with pytest.raises(DomainError) as err:
        sd.resolve_problem(conn, problem_id, "again")
    assert err.value.field == "problem_id"
    with pytest.raises(DomainError) as err:
        sd.link_incident(conn, problem_id, unrelated)
    assert err.value.field == "problem_id"


def test_only_open_incidents_can_join_a_problem(conn: Connection, account_id: int) -> None:
    incident_id = sd.open_incident(conn, account_id, "x", impact="low", urgency="low", now=NOW)
    sd.resolve_incident(conn, incident_id, "done", now=NOW)
    problem_id = sd.create_problem(conn, "p", now=NOW)
    with pytest.raises(DomainError) as err:
        sd.link_incident(conn, problem_id, incident_id)
    assert err.value.field == "incident_id"


def test_incident_log_public_and_internal(conn: Connection, account_id: int) -> None:
    incident_id = sd.open_incident(conn, account_id, "Kein Sync", impact="high", urgency="high", now=NOW)
    sd.add_log_entry(
        conn, incident_id, "anna", "Wir prüfen die Leitung.", "public", now=NOW + timedelta(minutes=1)
    )
    sd.add_log_entry(conn, incident_id, "anna", "DSLAM-Port 7 flappt", now=NOW + timedelta(minutes=2))
    assert [e.visibility for e in sd.incident_log_entries(conn, incident_id)] == ["public", "internal"]
    assert [e.text for e in sd.incident_log_entries(conn, incident_id, public_only=True)] == [
        "Wir prüfen die Leitung."
    ]
    for args, field in [
        (("anna", "x", "secret"), "visibility"),
        (("", "x"), "author"),
        (("anna", " "), "text"),
    ]:
        with pytest.raises(DomainError) as err:
            sd.add_log_entry(conn, incident_id, *args)
        assert err.value.field == field


def test_incident_on_a_booked_service(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    from crm.booked_services import book_service

    service_id = book_service(conn, account_id, catalogue["ADSL50"])
    incident_id = sd.open_incident(
        conn, account_id, "Langsam", impact="low", urgency="low", booked_service_id=service_id, now=NOW
    )
    assert sd.get_incident(conn, incident_id).booked_service_id == service_id
    other = create_account(conn, "Fremd AG")
    with pytest.raises(DomainError) as err:
        sd.open_incident(conn, other, "x", impact="low", urgency="low", booked_service_id=service_id)
    assert err.value.field == "booked_service_id"


def test_overdue_incidents_and_sla_report(conn: Connection, account_id: int) -> None:
    """Gold P1: respond within 15 min, resolve within 4 h."""
    late_response = sd.open_incident(conn, account_id, "a", impact="high", urgency="high", now=NOW)
    answered = sd.open_incident(conn, account_id, "b", impact="high", urgency="high", now=NOW)
    sd.assign_incident(conn, answered, "access", now=NOW + timedelta(minutes=10))
    done_late = sd.open_incident(conn, account_id, "c", impact="high", urgency="high", now=NOW)
    sd.assign_incident(conn, done_late, "access", now=NOW + timedelta(minutes=5))
    sd.resolve_incident(conn, done_late, "ok", now=NOW + timedelta(hours=5))
    assert sd.overdue_incidents(conn, NOW + timedelta(minutes=14)) == []
    assert sd.overdue_incidents(conn, NOW + timedelta(minutes=16)) == [(late_response, "response")]
    assert sd.overdue_incidents(conn, NOW + timedelta(hours=4, minutes=1)) == [
        (late_response, "response"),
        (answered, "resolution"),
    ]
    report = sd.sla_violations(conn, account_id, NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert [(r["incident_id"], r["missed"]) for r in report] == [
        (late_response, ["response", "resolution"]),
        (answered, ["resolution"]),
        (done_late, ["resolution"]),
    ]
    with pytest.raises(DomainError) as err:
        sd.sla_violations(conn, account_id, NOW, NOW)
    assert err.value.field == "until"


def test_the_response_is_a_persons_not_the_automatic_routing(conn: Connection, account_id: int) -> None:
    incident_id = sd.open_incident(conn, account_id, "DNS", impact="low", urgency="low", now=NOW)
    sd.assign_incident(conn, incident_id, "servicedesk", now=NOW + timedelta(milliseconds=7), by_person=False)
    sd.add_log_entry(conn, incident_id, "silverflow", "SLA-Hinweis", now=NOW + timedelta(minutes=1), by_agent=False)
    sd.add_log_entry(conn, incident_id, "kunde@example.org", "Noch da?", "public", NOW + timedelta(minutes=2),
                     by_agent=False)
    assert sd.get_incident(conn, incident_id).responded_at is None
    sd.add_log_entry(conn, incident_id, "anna", "Schaue ich mir an", "public", NOW + timedelta(minutes=30))
    sd.add_log_entry(conn, incident_id, "bert", "Zweite Antwort", "public", NOW + timedelta(minutes=40))
    assert sd.get_incident(conn, incident_id).responded_at == NOW + timedelta(minutes=30)


def test_pending_stops_the_clock_and_reopening_gives_fresh_deadlines(conn: Connection, account_id: int) -> None:
    bronze = create_account(conn, "Uhr KG")
    incident_id = sd.open_incident(conn, bronze, "Fax", impact="medium", urgency="medium", now=NOW)
    before = sd.get_incident(conn, incident_id)
    sd.assign_incident(conn, incident_id, "servicedesk", now=NOW, by_person=False)
    paused = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 16:00 Berlin
    sd.set_pending(conn, incident_id, now=paused)
    assert sd.get_incident(conn, incident_id).responded_at == paused  # asking the customer is a response
    sd.resume_incident(conn, incident_id, now=paused + timedelta(hours=17))  # Wednesday 09:00: 3 working hours
    after = sd.get_incident(conn, incident_id)
    calendar = sla.sla_calendar("bronze", "P3")
    assert after.status == "assigned" and after.pending_since is None
    assert calendar.working_time(before.resolution_due, after.resolution_due) == timedelta(hours=3)
    sd.resolve_incident(conn, incident_id, "Leitung geprüft", now=paused + timedelta(days=1))
    reopened_at = paused + timedelta(days=2)
    sd.reopen_incident(conn, incident_id, "support2", now=reopened_at)
    row = sd.get_incident(conn, incident_id)
    assert (row.status, row.assigned_group, row.resolved_at) == ("assigned", "support2", None)
    assert row.resolution_due == sla.deadlines("bronze", "P3", reopened_at).resolution_due


def test_unknown_sender_incident_waits_for_triage(conn: Connection, account_id: int) -> None:
    incident_id = sd.open_incident(conn, None, "Hilfe", impact="medium", urgency="medium", origin="mail",
                                   reporter_email="neu@example.org", now=NOW)
    row = sd.get_incident(conn, incident_id)
    assert row.account_id is None and row.reporter_email == "neu@example.org"
    contact_id = create_contact(conn, ContactInput("Neu", email="neu@example.org"), account_id)
    assert sd.sender_of(conn, "NEU@example.org") == (account_id, contact_id)
    assert sd.sender_of(conn, "fremd@example.org") == (None, None)
    sd.attach_account(conn, incident_id, account_id, contact_id)
    row = sd.get_incident(conn, incident_id)
    assert row.account_id == account_id and row.resolution_due == sla.deadlines("gold", "P3", NOW).resolution_due


def test_a_reply_reaches_its_incident_only_from_its_people(conn: Connection, account_id: int) -> None:
    create_contact(conn, ContactInput("Kunde", email="kunde@example.org"), account_id)
    incident_id = sd.open_incident(conn, account_id, "Mail", impact="low", urgency="low", now=NOW)
    number = str(sd.get_incident(conn, incident_id).number)
    assert sd.incident_numbers_in(f"Re: [{number}] <b>x</b> {number}") == [number]
    assert sd.reply_target(conn, [number], "Kunde@Example.org").id == incident_id  # type: ignore[union-attr]
    assert sd.reply_target(conn, [number], "angreifer@evil.example") is None
    assert sd.reply_target(conn, [number], "kollege@example.org", answers_our_mail=True) is not None
    assert sd.reply_target(conn, ["I-1999-00001"], "kunde@example.org") is None
