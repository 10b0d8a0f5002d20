"""Billing through the REST API with the real billing and mail connectors: the invoice of a delivered order
(PDF with the EN 16931 e-invoice) is mailed, paid by the ``invoice_paid`` message or reminded twice by the due
timers and handed over to collections; the monthly run bills recurring services once per month."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import facturx
import sqlalchemy as sa

from crm import booked_services, orders, quotes
from crm.accounts import ContactInput, add_address, create_account, create_contact
from crm.positions import PositionInput
from crm.products import ProductInput, create_product
from crm.schema import document, invoice
from engine.start_timers import START_TIMER

from .conftest import World


def _customer(world: World, name: str, email: str | None = "buchhaltung@kunde.example") -> dict[str, int]:
    with world.api.engine.db.transaction() as conn:
        account = create_account(conn, name)
        add_address(conn, account, kind="billing", street="Hauptstraße 1", postal_code="10115", city="Berlin")
        contact = create_contact(conn, ContactInput(last_name="Krause", salutation="Frau", email=email), account)
    return {"account_id": account, "contact_id": contact}


def _delivered_order(world: World) -> dict[str, int]:
    """Quote → order → every sub-order done: an order production hands over to billing."""
    keys = _customer(world, "Krause Logistik GmbH")
    with world.api.engine.db.transaction() as conn:
        adsl = create_product(conn, ProductInput("ADSL50-B", "ADSL 50", "access", "recurring_monthly",
                                                 Decimal("39.90"), provisioning_steps=("ip",)))
        setup = create_product(conn, ProductInput("SETUP-B", "Einrichtung", "access", "setup_fee", Decimal("99.00")))
        quote = quotes.create_quote(conn, keys["account_id"], [PositionInput(Decimal(1), adsl),
                                                               PositionInput(Decimal(1), setup)],
                                    date.today() + timedelta(days=30), contact_id=keys["contact_id"])
        quotes.send_quote(conn, quote)
        quotes.accept_quote(conn, quote)
        order_id = orders.create_order_from_quote(conn, quote)
        orders.start_production(conn, order_id)
        for sub in orders.sub_orders(conn, order_id):
            orders.set_sub_order_status(conn, sub["id"], "in_progress")
            orders.set_sub_order_status(conn, sub["id"], "done")
        for service_id in booked_services.book_order_services(conn, order_id):  # as production books them
            booked_services.activate_service(conn, service_id, date.today().replace(day=1))  # a whole first month
    return {**keys, "order_id": order_id}


def _request_billing(world: World, variables: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Send ``billing_requested`` as production does; return the billing instance once it waits for payment."""
    response = world.api.client("integration").post("/messages", json={"name": "billing_requested",
                                                                       "variables": variables})
    assert response.status_code == 200, response.text
    instance = _billing_instances(world, variables["account_id"])[0]
    return instance, _waiting_for_payment(world, instance)


def _waiting_for_payment(world: World, instance: str) -> dict[str, Any]:
    """The instance's variables once it has mailed the invoice and waits for payment or the due date."""
    waiting = world.wait_for(lambda: (i := world.instance(instance))["activeElements"] == ["wait_0"] and i,
                             "billing waiting for payment")
    return dict(waiting["variables"])


def _billing_instances(world: World, account_id: int) -> list[str]:
    items = world.api.client("admin").get("/process-instances", params={
        "key": "billing", "variable": f"account_id={account_id}", "sort": "started"}).json()["items"]
    return [str(i["id"]) for i in items]


def _attachments(mail: EmailMessage) -> list[str]:
    return [str(p.get_filename()) for p in mail.walk() if p.get_content_disposition() == "attachment"]


def _mail_about(world: World, text: str, count: int = 1) -> list[EmailMessage]:
    return list(world.wait_for(lambda: len(found := [m for m in world.inbox.messages if text in str(m["Subject"])])
                               >= count and found, f"{count} mail(s) about {text}"))


def _invoice_row(world: World, invoice_id: int) -> sa.Row[tuple[object, ...]]:
    with world.api.engine.db.read() as conn:
        return conn.execute(sa.select(invoice).where(invoice.c.id == invoice_id)).one()


def _timer_at(day: str) -> datetime:
    """The moment the process's dunning timer for ``day`` (06:00 German time) has passed."""
    return datetime.fromisoformat(f"{day}T06:01:00+01:00")


def test_invoice_mailed_and_paid_before_due(world: World) -> None:
    keys = _delivered_order(world)
    instance, variables = _request_billing(world, keys)
    bill = variables["invoice"]
    assert bill["number"].startswith("R-") and Decimal(bill["gross"]) == Decimal("165.29")  # (39.90 + 99.00) * 1.19

    (mail,) = _mail_about(world, bill["number"])
    assert mail["To"].endswith("buchhaltung@kunde.example>")
    assert _attachments(mail) == [f"Rechnung_{bill['number']}.pdf"]
    pdf = next(p for p in mail.walk() if p.get_content_disposition() == "attachment").get_content()
    assert facturx.get_xml_from_pdf(pdf, check_xsd=True)[0] == "factur-x.xml"  # the e-invoice travels inside

    paid = world.api.client("integration").post("/messages", json={
        "name": "invoice_paid", "correlationKeys": {"invoice_id": bill["invoiceId"]},
        "variables": {"paid_at": "2026-12-03T10:00:00+00:00"}})
    assert paid.status_code == 200, paid.text
    world.wait_state(instance, "completed")
    row = _invoice_row(world, bill["invoiceId"])
    assert (row.status, row.order_id, row.reminders_sent) == ("paid", keys["order_id"], 0)
    assert row.paid_at.astimezone(UTC) == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_unpaid_invoice_is_reminded_twice_and_handed_to_collections(world: World) -> None:
    keys = _delivered_order(world)
    instance, variables = _request_billing(world, keys)
    bill = variables["invoice"]
    engine = world.api.engine

    assert engine.fire_due_timers(now=_timer_at(variables["reminder_1_on"])) >= 1  # daily start timers are due too
    (first,) = _mail_about(world, f"Zahlungserinnerung zur Rechnung {bill['number']}")
    assert _attachments(first) == [f"Zahlungserinnerung_{bill['number']}_1.pdf"]
    world.wait_for(lambda: world.instance(instance)["activeElements"] == ["wait_1"], "waiting after reminder 1")

    assert engine.fire_due_timers(now=_timer_at(variables["reminder_2_on"])) >= 1  # daily start timers are due too
    (second,) = _mail_about(world, f"Mahnung zur Rechnung {bill['number']}")
    body = next(p for p in second.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Mahngebühr von 5,00 €" in body
    assert _attachments(second) == [f"Mahnung_{bill['number']}_2.pdf"]
    world.wait_for(lambda: world.instance(instance)["activeElements"] == ["wait_2"], "waiting after reminder 2")

    assert engine.fire_due_timers(now=_timer_at(variables["collections_on"])) >= 1  # daily start timers are due too
    task = world.task(instance, "collections", "billing")
    assert task["candidateGroups"] == ["billing"] and task["formKey"] == "billing-collections"
    world.complete(instance, "collections", "billing", {"agency": "Inkasso Nord GmbH", "case_reference": "IN-4711"})
    world.wait_state(instance, "completed")

    row = _invoice_row(world, bill["invoiceId"])
    assert (row.status, row.reminders_sent, row.last_reminder_on.isoformat()) == ("open", 2, variables["reminder_2_on"])
    with engine.db.read() as conn:
        letters = sorted(conn.execute(sa.select(document.c.file_name)
                                      .where(document.c.invoice_id == bill["invoiceId"])).scalars())
    assert letters == [f"Mahnung_{bill['number']}_2.pdf", f"Rechnung_{bill['number']}.pdf",
                       f"Zahlungserinnerung_{bill['number']}_1.pdf"]


def _previous_month() -> tuple[str, date]:
    last = date.today().replace(day=1) - timedelta(days=1)
    return f"{last:%Y-%m}", last.replace(day=1)


def _run_monthly_billing(world: World) -> None:
    """Fire the recurring-billing start timer at its next due time, as the worker does (daily)."""
    engine = world.api.engine
    (job,) = [j for j in engine.jobs(kind=START_TIMER, state="pending") if j.process_key == "recurring-billing"]
    assert engine.fire_due_timers(now=job.due_at + timedelta(seconds=1)) >= 1
    items = world.api.client("admin").get("/process-instances", params={"key": "recurring-billing"}).json()["items"]
    world.wait_for(lambda: all(world.instance(i["id"])["state"] == "completed" for i in items), "monthly runs done")


def test_monthly_run_bills_recurring_services_once(world: World) -> None:
    period, first_day = _previous_month()
    keys = _customer(world, "Monatskunde AG")
    no_mail = _customer(world, "Ohne Mail KG", email=None)
    with world.api.engine.db.transaction() as conn:
        voip = create_product(conn, ProductInput("VOIP-M", "VoIP-Anschluss", "voice", "recurring_monthly",
                                                 Decimal("20.00")))
        for customer in (keys, no_mail):
            service = booked_services.book_service(conn, customer["account_id"], voip)
            booked_services.activate_service(conn, service, first_day - timedelta(days=40))

    _run_monthly_billing(world)
    (instance,) = _billing_instances(world, keys["account_id"])
    variables = _waiting_for_payment(world, instance)
    bill = variables["invoice"]
    assert variables["period"] == period and Decimal(bill["gross"]) == Decimal("23.80")
    (mail,) = _mail_about(world, bill["number"])
    assert _attachments(mail) == [f"Rechnung_{bill['number']}.pdf"]

    # no contact with an e-mail address: billing names the recipient, then the mail goes out
    (other,) = _billing_instances(world, no_mail["account_id"])
    world.task(other, "clarify_recipient", "billing")
    with world.api.engine.db.transaction() as conn:
        clerk = create_contact(conn, ContactInput(last_name="Ohne", salutation="Herr", email="rechnung@ohne.example"),
                               no_mail["account_id"])
    world.complete(other, "clarify_recipient", "billing", {"contact_id": clerk})
    _waiting_for_payment(world, other)
    assert any(m["To"].endswith("rechnung@ohne.example>") for m in world.inbox.messages)

    with world.api.engine.db.read() as conn:
        billed = conn.execute(sa.select(sa.func.count()).select_from(invoice).where(
            invoice.c.account_id.in_([keys["account_id"], no_mail["account_id"]]))).scalar_one()
    assert billed == 2

    _run_monthly_billing(world)  # the same month again: nothing left to bill, no billing started
    assert _billing_instances(world, keys["account_id"]) == [instance]
    with world.api.engine.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(invoice)).scalar_one() == 2
