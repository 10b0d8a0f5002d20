"""Dashboard figures (sales pipeline, today's appointments) and the appointments page, over real HTTP (Uvicorn
on loopback, SQLite and PostgreSQL) and once in Chromium: booking with the collision refused next to the
participants field, week navigation, .ics downloads, the opportunity list behind the pipeline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm.accounts import ContactInput, create_account, create_contact
from crm.appointments import AppointmentInput, create_appointment
from crm.opportunities import OpportunityInput, create_opportunity, set_stage
from crm.schema import appointment
from tests.support.live_app import Api, live_app
from tests.support.sessions import login

from .test_start_and_phone_capture import browser_login, unlabelled

PASSWORD = "clara-password"  # clara (clerk, sales) comes with every live app


@dataclass
class Office:
    app: Api
    client: httpx.Client
    csrf: str
    account_id: int
    contact_id: int

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.client.post(path, data={**data, "csrf_token": self.csrf})

    def appointments(self) -> list[Any]:
        with self.app.engine.db.read() as conn:
            return list(conn.execute(sa.select(appointment).order_by(appointment.c.id)))


@pytest.fixture
def office(db_url: str) -> Iterator[Office]:
    with live_app(db_url) as app:
        with app.engine.db.transaction() as conn:
            account_id = create_account(conn, "Muster Netz GmbH")
            contact_id = create_contact(conn, ContactInput("Weber", "Herr", "Karl"), account_id)
        client, token = login(app.base_url, "clara", PASSWORD)
        try:
            yield Office(app, client, token, account_id, contact_id)
        finally:
            client.close()


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute).astimezone()


def _field(html: str, name: str) -> str:
    match = re.search(rf'data-field="{name}"[^>]*>.*?</div>', html, re.S)
    assert match is not None, name
    return match.group(0)


def test_dashboard_pipeline_and_todays_appointments_link_to_their_lists(office: Office) -> None:
    now = datetime.now().astimezone()
    with office.app.engine.db.transaction() as conn:
        for title, revenue, stage in (("Standleitung", "1000.00", "lead"), ("VoIP", "2000.00", "proposal"),
                                      ("Housing", "500.00", "proposal"), ("SDSL", "9999.00", "negotiation")):
            created = create_opportunity(conn, OpportunityInput(office.account_id, title, Decimal(revenue),
                                                                date.today() + timedelta(days=30), stage=stage))
        set_stage(conn, created, "won")
        for topic, participant, start in (("Jour fixe", "clara", now - timedelta(minutes=30)),
                                          ("Morgen", "clara", now + timedelta(days=1, hours=1)),
                                          ("Fremder Termin", "otto", now - timedelta(minutes=30))):
            create_appointment(conn, AppointmentInput(topic, start, start + timedelta(hours=1), [participant],
                                                      account_id=office.account_id))
    page = office.client.get("/").text
    assert re.search(r'data-figure="pipeline-lead">100,00\xa0€', page)  # 1000 × 10 %
    assert re.search(r'data-figure="pipeline-proposal">1.250,00\xa0€', page)  # (2000 + 500) × 50 %
    assert re.search(r'data-figure="pipeline-total">1.350,00\xa0€', page)  # won is no longer pipeline
    assert 'href="/opportunities?stage=proposal"' in page
    today = re.search(r'data-figure="appointments-today">(.*?)</ul>', page, re.S)
    assert today is not None and "Jour fixe" in today.group(1) and "Muster Netz GmbH" in today.group(1)
    assert "Morgen" not in today.group(1) and "Fremder Termin" not in today.group(1)

    listed = office.client.get("/opportunities?stage=proposal").text
    assert listed.count('data-stage="proposal"') == 2 and "VoIP" in listed and "Standleitung" not in listed
    assert "Muster Netz GmbH" in listed
    assert office.client.get("/opportunities?stage=nonsense").status_code == 200  # unknown stage: all
    english = office.client.get("/", headers={"Accept-Language": "en"}).text
    assert "Sales pipeline" in english and "My appointments today" in english and "Negotiation" in english


def test_book_an_appointment_collision_inline_week_view_and_ics(office: Office) -> None:
    day = date.today() + timedelta(days=7)
    form = office.client.get(f"/appointments/new?account_id={office.account_id}")
    assert form.status_code == 200 and "Muster Netz GmbH" in form.text and "Karl Weber" in form.text
    for label in ("topic", "starts_at", "ends_at", "place", "participants", "account", "contact_id"):
        assert f'<label for="{label}">' in form.text
    assert 'value="clara"' in form.text  # the user is a participant unless removed

    data = {"topic": "", "starts_at": f"{day}T10:00", "ends_at": f"{day}T09:00", "place": "Beim Kunden",
            "participants": "clara, otto", "account": str(office.account_id), "contact_id": str(office.contact_id)}
    refused = office.post("/appointments/new", data)
    assert refused.status_code == 422
    assert "Bitte ein Thema angeben" in _field(refused.text, "topic")
    assert "nach dem Beginn" in _field(refused.text, "ends_at") and "Beim Kunden" in refused.text
    assert not office.appointments()

    booked = office.post("/appointments/new", {**data, "topic": "Vertragsgespräch", "ends_at": f"{day}T11:00"})
    assert booked.status_code == 303 and booked.headers["location"].startswith(f"/appointments?date={day}")
    [row] = office.appointments()
    assert (row.topic, row.place, row.account_id, row.contact_id) == \
        ("Vertragsgespräch", "Beim Kunden", office.account_id, office.contact_id)
    assert row.starts_at == _local(day, 10)

    clash = office.post("/appointments/new", {**data, "topic": "Zweiter Termin", "participants": "otto",
                                              "starts_at": f"{day}T10:30", "ends_at": f"{day}T12:00"})
    assert clash.status_code == 422 and len(office.appointments()) == 1
    message = _field(clash.text, "participants")
    assert "otto hat zu dieser Zeit schon „Vertragsgespräch“" in message and 'role="alert"' in message
    foreign = office.post("/appointments/new", {**data, "topic": "x", "starts_at": f"{day}T14:00",
                                                "ends_at": f"{day}T15:00", "account": "K-99999"})
    assert foreign.status_code == 422 and "Kunde nicht gefunden" in _field(foreign.text, "account")

    week = office.client.get(booked.headers["location"]).text
    assert "Termin gebucht." in week and f'id="appointment-{row.id}"' in week
    column = re.search(rf'data-day="{day}".*?</section>', week, re.S)
    assert column is not None and "Vertragsgespräch" in column.group(0) and "clara, otto" in column.group(0)
    following = re.search(r'href="/appointments\?view=week&(?:amp;)?date=([0-9-]+)" rel="next"', week)
    assert following is not None
    assert "Vertragsgespräch" not in office.client.get(f"/appointments?view=week&date={following.group(1)}").text
    assert "Vertragsgespräch" in office.client.get(f"/appointments?view=day&date={day}").text
    assert "Vertragsgespräch" not in office.client.get(f"/appointments?view=day&date={day + timedelta(1)}").text

    single = office.client.get(f"/appointments/{row.id}.ics")
    assert single.headers["content-type"].startswith("text/calendar")
    assert "SUMMARY:Vertragsgespräch" in single.text and f"UID:appointment-{row.id}@silverflow" in single.text
    whole_week = office.client.get(f"/appointments/week.ics?date={day}")
    assert "SUMMARY:Vertragsgespräch" in whole_week.text
    assert "VEVENT" not in office.client.get(f"/appointments/week.ics?date={day + timedelta(days=7)}").text
    assert office.client.get("/appointments/424242.ics").status_code == 404
    assert office.client.get("/appointments/abc.ics").status_code == 404
    customer = office.client.get(f"/customers/{office.account_id}").text
    assert f'href="/appointments/new?account_id={office.account_id}"' in customer
    assert office.client.post("/appointments/new", data=data).status_code == 403  # no CSRF token


def test_appointments_in_the_browser(page: Any, app: Api) -> None:
    """Book today's meeting, be refused a clashing one next to the field, see the first on the dashboard."""
    today = datetime.now().astimezone().replace(second=0, microsecond=0)
    start, end = today - timedelta(minutes=30), today + timedelta(minutes=30)  # always overlaps today
    problems = browser_login(page, app, "clara", "/", PASSWORD)
    page.get_by_role("link", name="Termine", exact=True).click()
    page.wait_for_url("**/appointments")
    page.get_by_role("link", name="Neuer Termin").click()
    page.wait_for_url("**/appointments/new")
    assert not unlabelled(page)
    page.get_by_label("Thema").fill("Angebot besprechen")
    page.get_by_label("Beginn").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Ende").fill(end.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Ort").fill("Telefon")
    page.get_by_role("button", name="Termin buchen").click()
    page.wait_for_url("**/appointments?date=*")
    assert page.locator("[role=status]").inner_text() == "Termin gebucht."

    page.goto(app.base_url + "/appointments/new")
    page.get_by_label("Thema").fill("Doppelt gebucht")
    page.get_by_label("Beginn").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Ende").fill(end.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Termin buchen").click()
    error = page.locator("[data-field=participants] .field-error")
    assert "clara hat zu dieser Zeit schon „Angebot besprechen“" in error.inner_text()
    assert page.get_by_label("Teilnehmer (Benutzernamen, durch Komma getrennt)").get_attribute("aria-invalid") == "true"
    assert len(problems) == 1 and "422" in problems[0]  # the refused form's status, nothing else
    problems.clear()

    page.click("a.brand")
    page.wait_for_url(app.base_url + "/")
    assert "Angebot besprechen" in page.locator("[data-figure=appointments-today]").inner_text()
    assert "Doppelt gebucht" not in page.locator("[data-figure=appointments-today]").inner_text()
    with page.expect_download() as download:
        page.goto(app.base_url + "/appointments")
        page.get_by_role("link", name="Woche als .ics").click()
    assert download.value.suggested_filename.endswith(".ics")
    assert not problems
