"""Lead to quote (``acquisition``) through the REST API with the real connectors on loopback: duplicate check,
appointment booking with a collision, contact note, quote from the catalogue with the manager's discount
approval, PDF by mail (SMTP), the customer's answer as a message, the 7-day follow-up and the expiry timer —
and the order process taking over an accepted quote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm.accounts import ContactInput, create_account, create_contact
from crm.appointments import AppointmentInput, create_appointment
from crm.products import ProductInput, create_product
from crm.schema import account, activity, appointment, order, quote

from .conftest import World

LEAD = {"company": "Schneider Logistik GmbH", "last_name": "Schneider", "first_name": "Jana", "salutation": "Frau",
        "email": "jana.schneider@schneider-logistik.example", "phone": "030 1234567",
        "message": "Wir brauchen eine SDSL-Anbindung für zwei Standorte."}
MEETING = {"topic": "Bedarfsanalyse", "starts_at": "2027-03-02T10:00:00+01:00", "ends_at": "2027-03-02T11:00:00+01:00",
           "place": "Beim Kunden", "participants": "anna, ben"}
NOTE = {"note_kind": "meeting", "note_subject": "Bedarfsanalyse", "note_text": "Zwei Standorte, 20 Mbit/s symmetrisch."}


def _catalogue(world: World) -> None:
    with world.api.engine.db.transaction() as conn:
        create_product(conn, ProductInput("SDSL20", "SDSL 20 Mbit/s", "access", "recurring_monthly", Decimal("199.00")))
        create_product(conn, ProductInput("SETUP-SDSL", "Einrichtung SDSL", "access", "setup_fee", Decimal("299.00")))


def _quote_row(world: World, instance: str) -> Any:
    quote_id = world.wait_for(lambda: world.instance(instance)["variables"].get("quote_id"), "the quote")
    with world.api.engine.db.read() as conn:
        return conn.execute(sa.select(quote).where(quote.c.id == quote_id)).one()


def _waiting_for_answer(world: World, instance: str) -> int:
    """Up to the event gateway after the mail (marking the quote sent moves on to it); returns the quote id."""
    variables = world.wait_for(lambda: (v := world.instance(instance)["variables"]).get("quote_state") and v,
                               "the quote sent")
    assert variables["quote_state"]["status"] == "sent"
    return int(variables["quote_id"])


def _fire_timers(world: World, days: int) -> None:
    world.api.engine.fire_due_timers(now=datetime.now(UTC) + timedelta(days=days))


def _positions(discount: int) -> dict[str, Any]:
    return {"positions": [{"product_code": "SDSL20", "quantity": 2, "discount_percent": discount},
                          {"product_code": "SETUP-SDSL", "quantity": 2}], "valid_days": 30}


def _start_new_lead(world: World, discount: int, valid_days: int = 30) -> str:
    _catalogue(world)
    instance = world.start("acquisition", {"lead": LEAD, "channel": "trade_fair"}, business_key="L-2001")
    world.complete(instance, "schedule", "sales", MEETING)
    world.complete(instance, "note", "sales", NOTE)
    world.complete(instance, "assemble", "sales", {"positions": [
        {"product_code": "SDSL20", "quantity": 2, "discount_percent": discount}], "valid_days": valid_days})
    return instance


def test_web_lead_of_a_known_customer_becomes_an_accepted_quote_and_an_order(world: World) -> None:
    _catalogue(world)
    with world.api.engine.db.transaction() as conn:
        known = create_account(conn, "Schneider Logistik GmbH")
        jana = create_contact(conn, ContactInput("Schneider", salutation="Frau", email=LEAD["email"]), known)
        create_appointment(conn, AppointmentInput("Anderer Kunde", datetime(2027, 3, 2, 9, 30, tzinfo=UTC),
                                                  datetime(2027, 3, 2, 10, 30, tzinfo=UTC), ["ben"]))
    instance = world.start("acquisition", {"lead": LEAD, "channel": "web_form"}, business_key="L-1001")

    choice = world.task(instance, "choose_account", "sales")
    assert choice["candidateGroups"] == ["sales"]
    candidates = world.instance(instance)["variables"]["duplicates"]["candidates"]
    assert [(c["account_id"], c["matched_by"], c["contact_id"]) for c in candidates] == \
        [(known, ["name", "email"], jana)]
    world.complete(instance, "choose_account", "sales", {"use_existing": True, "account_id": known})

    world.complete(instance, "schedule", "sales", MEETING)  # ben is booked until 11:30 local time: refused
    world.wait_for(lambda: world.instance(instance)["variables"].get("appointment_error"), "the collision")
    error = world.instance(instance)["variables"]["appointment_error"]
    assert error["errorCode"] == "CrmRejected" and "ben" in error["errorMessage"]
    world.complete(instance, "schedule", "sales", {**MEETING, "starts_at": "2027-03-02T13:00:00+01:00",
                                                    "ends_at": "2027-03-02T14:00:00+01:00"})
    world.complete(instance, "note", "sales", NOTE)
    world.complete(instance, "assemble", "sales", _positions(discount=20))
    world.complete(instance, "approve_discount", "manager", {"discount_approved": False,
                                                             "approval_comment": "Höchstens 10 %"})
    world.complete(instance, "assemble", "sales", _positions(discount=10))
    quote_id = _waiting_for_answer(world, instance)

    mail = world.wait_for(lambda: world.inbox.messages, "the quote mail")[0]
    the_quote = _quote_row(world, instance)
    assert the_quote.status == "sent" and the_quote.net == Decimal("956.20")  # 2 × 179,10 + 2 × 299,00
    assert mail["To"].endswith(f"{LEAD['email']}>") and the_quote.number in str(mail["Subject"])
    assert [p.get_filename() for p in mail.walk() if p.get_content_disposition() == "attachment"] == \
        [f"quote-{the_quote.number}.pdf"]

    answer = world.api.client("integration").post("/messages", json={
        "name": "quote_answer", "correlationKeys": {"quote_id": quote_id}, "variables": {"answer": "accepted"}})
    assert answer.status_code == 200 and answer.json()["deliveredTo"] == [instance]
    review = world.task(instance, "review", "backoffice")  # the order process has taken the quote over
    assert review["candidateGroups"] == ["backoffice"]
    offered = world.form_data(instance, "review", "backoffice")["delivery_address"]
    assert offered is None  # the lead left no address: the back office types it
    world.complete(instance, "review", "backoffice", {"drop_lines": [], "adjustments": [], "delivery_address": {
        "name": "Schneider Logistik GmbH", "street": "Lagerweg 3", "postal_code": "28195", "city": "Bremen"}})

    with world.api.engine.db.read() as conn:
        assert conn.execute(sa.select(quote.c.status).where(quote.c.id == quote_id)).scalar() == "accepted"
        assert conn.execute(sa.select(sa.func.count()).select_from(account)).scalar() == 1  # no duplicate
        booked = conn.execute(sa.select(appointment).where(appointment.c.account_id == known)).one()
        history = conn.execute(sa.select(activity.c.kind, activity.c.subject).where(activity.c.account_id == known)
                               .order_by(activity.c.id)).all()
    assert booked.topic == "Bedarfsanalyse" and booked.starts_at == datetime(2027, 3, 2, 12, 0, tzinfo=UTC)
    assert [h.kind for h in history] == ["email_in", "meeting", "email_out"]
    assert history[0].subject == "Erstkontakt (Kontaktformular)"
    world.wait_for(lambda: _order_of(world, quote_id), "the order from the quote")


def _order_of(world: World, quote_id: int) -> Any:
    with world.api.engine.db.read() as conn:
        return conn.execute(sa.select(order.c.id).where(order.c.quote_id == quote_id)).scalar()


def test_approved_discount_then_silence_brings_a_follow_up_and_the_customer_declines(world: World) -> None:
    instance = _start_new_lead(world, discount=20)
    approval = world.task(instance, "approve_discount", "manager")
    assert approval["candidateGroups"] == ["management"]
    world.complete(instance, "approve_discount", "manager", {"discount_approved": True})
    quote_id = _waiting_for_answer(world, instance)

    _fire_timers(world, days=8)  # a week without an answer
    world.complete(instance, "follow_up", "sales", {"answer": "open", "follow_up_note": "Entscheidung nächste Woche"})
    _waiting_for_answer(world, instance)
    _fire_timers(world, days=15)
    world.complete(instance, "follow_up", "sales", {"answer": "rejected", "follow_up_note": "Zu teuer"})
    world.wait_state(instance, "completed")

    with world.api.engine.db.read() as conn:
        row = conn.execute(sa.select(quote).where(quote.c.id == quote_id)).one()
        new_account = conn.execute(sa.select(account).where(account.c.name == LEAD["company"])).one()
    assert row.status == "rejected" and row.account_id == new_account.id and row.net == Decimal("318.40")
    assert _order_of(world, quote_id) is None
    # the approval step recorded who approved which discount on the quote (what sending checked)
    assert (row.discount_approved_by, row.discount_approved_percent) == ("key:test-manager", Decimal("20"))


def test_unanswered_quote_expires_after_its_validity(world: World) -> None:
    instance = _start_new_lead(world, discount=5, valid_days=3)
    quote_id = _waiting_for_answer(world, instance)
    _fire_timers(world, days=5)  # past the validity, before the first follow-up
    world.wait_state(instance, "completed")
    with world.api.engine.db.read() as conn:
        assert conn.execute(sa.select(quote.c.status).where(quote.c.id == quote_id)).scalar() == "expired"
