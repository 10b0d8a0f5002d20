"""Order → production → provisioning, through the REST API with the real connectors on loopback: the domain
registrar simulator (a taken name first), IPAM, the supplier simulator whose shipment webhook continues the
process, SMTP for the order confirmation (with its PDF) and the access data."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm.accounts import ContactInput, add_address, create_account, create_contact
from crm.business_calendar import office_calendar
from crm.positions import PositionInput
from crm.products import ProductInput, create_product
from crm.quotes import accept_quote, create_quote, send_quote
from crm.schema import booked_service, order

from .conftest import World

PRODUCTS = [("ADSL100", "ADSL 100", "access", "recurring_monthly", "49.90", ("ip",)),
            ("DOMAIN-DE", "Domain .de", "domain", "recurring_yearly", "12.00", ("domain",)),
            ("MODEM-7590", "FRITZ!Box 7590", "hardware", "hardware", "259.00", ("hardware",)),
            ("SETUP-DSL", "Einrichtung", "access", "setup_fee", "99.00", ())]


def _accepted_quote(world: World, wished_domain: str, extra: Decimal = Decimal(0)) -> dict[str, int]:
    with world.api.engine.db.transaction() as conn:
        account = create_account(conn, "Müller Bau GmbH", sla_class="gold")
        add_address(conn, account, kind="billing", street="Hauptstraße 1", postal_code="10115", city="Berlin")
        contact = create_contact(conn, ContactInput(last_name="Müller", salutation="Herr", academic_title="Dr.",
                                                    email="mueller@mueller-bau.example"), account)
        ids = {code: create_product(conn, ProductInput(code, name, cat, kind, Decimal(price), provisioning_steps=steps))
               for code, name, cat, kind, price, steps in PRODUCTS}
        positions = [PositionInput(Decimal(1), ids["ADSL100"]),
                     PositionInput(Decimal(1), ids["DOMAIN-DE"], description=f"Domain .de: {wished_domain}"),
                     PositionInput(Decimal(1), ids["MODEM-7590"]), PositionInput(Decimal(1), ids["SETUP-DSL"])]
        if extra:
            positions.append(PositionInput(Decimal(1), description="Sonderleistung", unit_price=extra,
                                           vat_rate=Decimal(19)))
        quote = create_quote(conn, account, positions, date.today() + timedelta(days=30), contact_id=contact)
        send_quote(conn, quote)
        accept_quote(conn, quote)
    return {"quote_id": quote, "account_id": account, "contact_id": contact}


ADDRESS = {"name": "Müller Bau GmbH", "street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
           "country": "DE"}  # the account's address: what the review offers as the delivery address


def _review(world: World, instance: str, **decision: Any) -> dict[str, Any]:
    """The back office confirms the positions and the delivery address the form offers (as they stand)."""
    offered = world.form_data(instance, "review", "backoffice")["delivery_address"]
    assert offered == ADDRESS
    world.complete(instance, "review", "backoffice", {"delivery_address": offered, **decision})
    return dict(offered)


def test_order_is_produced_with_domain_ip_and_modem_and_the_customer_gets_mails(world: World) -> None:
    keys = _accepted_quote(world, "example.com")  # taken at the registrar: sales asks for another name
    instance = world.start("order", keys, business_key="K-1001")
    _review(world, instance, drop_lines=[4], adjustments=[])
    world.complete(instance, "ask_domain", "sales", {"domain_name": "mueller-bau.de", "note": "telefonisch"})
    # the supplier ships and calls our webhook; the modem goes with a technician appointment
    world.complete(instance, "technician", "provisioning", {
        "starts_at": "2026-12-01T09:00:00+01:00", "ends_at": "2026-12-01T11:00:00+01:00", "technician": "Kai"})
    world.complete(instance, "deliver", "backoffice", {"delivered_on": "2026-12-02"})
    done = world.wait_state(instance, "completed")
    assert done["variables"]["credit"]["risky"] is False

    with world.api.engine.db.read() as conn:
        the_order = conn.execute(sa.select(order).where(order.c.quote_id == keys["quote_id"])).one()
        services = conn.execute(sa.select(booked_service).where(booked_service.c.order_id == the_order.id)
                                .order_by(booked_service.c.id)).all()
    assert the_order.status == "delivered" and the_order.net == Decimal("320.90")
    assert [s.status for s in services] == ["active", "active"]
    assert services[0].ip_address.startswith("192.0.2.") and services[0].modem_serial
    assert services[1].domain_name == "mueller-bau.de"

    subjects = world.wait_for(lambda: len(world.inbox.messages) >= 2 and world.inbox.subjects(), "two mails")
    confirmation = next(m for m in world.inbox.messages if the_order.number in str(m["Subject"]))
    attachments = [p.get_filename() for p in confirmation.walk() if p.get_content_disposition() == "attachment"]
    assert attachments == [f"order_confirmation-{the_order.number}.pdf"]
    assert all(m["To"].endswith("mueller@mueller-bau.example>") or m["To"] == "mueller@mueller-bau.example"
               for m in world.inbox.messages), subjects
    access = next(m for m in world.inbox.messages if m is not confirmation)
    body = next(p for p in access.walk() if p.get_content_type() == "text/plain").get_content()
    assert "mueller-bau.de" in body and services[0].ip_address in body and "Sehr geehrter Herr Dr. Müller" in body


def test_risky_order_rejected_by_management_is_cancelled(world: World) -> None:
    keys = _accepted_quote(world, "neu-gmbh.de", extra=Decimal("9000.00"))
    instance = world.start("order", keys, business_key="K-1002")
    _review(world, instance, drop_lines=[], adjustments=[{"line_no": 3, "quantity": 2}])
    approval = world.task(instance, "approve", "manager")
    assert approval["candidateGroups"] == ["management"]
    world.complete(instance, "approve", "manager", {"approved": False, "comment": "Vorkasse nötig"})
    world.wait_state(instance, "completed")
    with world.api.engine.db.read() as conn:
        the_order = conn.execute(sa.select(order).where(order.c.quote_id == keys["quote_id"])).one()
    assert the_order.status == "cancelled"
    assert the_order.net == Decimal("320.90") + Decimal("259.00") + Decimal("99.00") + Decimal("9000.00")
    assert world.inbox.messages == []


def test_late_supplier_is_chased_after_5_working_days_and_the_late_shipment_continues_production(
        world: World) -> None:
    world.supplier.ship_after_seconds = 3600  # the supplier accepts the modem order but does not ship in time
    keys = _accepted_quote(world, "spaet-bau.de")
    instance = world.start("order", keys, business_key="K-1003")
    site = {**ADDRESS, "street": "Baustelle Am Hafen 7", "postal_code": "20457", "city": "Hamburg"}
    world.form_data(instance, "review", "backoffice")
    world.complete(instance, "review", "backoffice", {"drop_lines": [4], "adjustments": [], "delivery_address": site})
    [placed] = world.wait_for(lambda: world.supplier.orders(), "the modem ordered at the supplier")
    shipped_to = placed.request.deliveryAddress  # the address the back office typed, read from the order
    assert (shipped_to.street, shipped_to.postalCode, shipped_to.city) == ("Baustelle Am Hafen 7", "20457", "Hamburg")
    world.wait_for(lambda: "wait_hw" in world.instance(instance)["activeElements"], "waiting for the shipment")
    timers = world.api.client("admin").get("/jobs", params={"kind": "timer", "instanceId": instance}).json()
    [late] = [j for j in timers if j["elementId"] == "wait_hw" and j["state"] == "pending"]  # the gateway's timer
    due = datetime.fromisoformat(late["dueAt"].replace("Z", "+00:00"))
    office = office_calendar()  # "5 Arbeitstage": five working days, weekends and public holidays not counted
    today, due_day = datetime.now(office.zone).date(), due.astimezone(office.zone).date()
    working_days = [today + timedelta(days=d) for d in range(1, (due_day - today).days + 1)]
    assert office.is_working_time(due) and sum(map(office.is_working_day, working_days)) in (5, 6)
    world.api.engine.fire_due_timers(now=due - timedelta(minutes=1))
    assert not [t for t in world.api.client("provisioning").get("/tasks").json()["items"]
                if t["instanceId"] == instance and t["elementId"] == "chase"]
    world.api.engine.fire_due_timers(now=due + timedelta(minutes=1))
    chase = world.task(instance, "chase", "provisioning")
    assert chase["candidateGroups"] == ["provisioning"]
    world.complete(instance, "chase", "provisioning", {"contacted_supplier": True, "expected_on": "2026-12-10",
                                                       "note": "Lieferant sagt Versand morgen zu"})
    notice = {"orderId": placed.id, "reference": placed.request.reference, "trackingNumber": "JJD000000000099",
              "serialNumber": "SN-LATE-01", "article": placed.request.article}  # the supplier ships at last
    shipped = world.api.client("integration").post("/integrations/supplier/shipments", json=notice)
    assert shipped.status_code == 200, shipped.text
    world.complete(instance, "technician", "provisioning", {
        "starts_at": "2026-12-11T09:00:00+01:00", "ends_at": "2026-12-11T11:00:00+01:00", "technician": "Kai"})
    world.complete(instance, "deliver", "backoffice", {"delivered_on": "2026-12-11"})
    world.wait_state(instance, "completed")
    with world.api.engine.db.read() as conn:
        the_order = conn.execute(sa.select(order).where(order.c.quote_id == keys["quote_id"])).one()
        serials = [s.modem_serial for s in conn.execute(sa.select(booked_service).where(
            booked_service.c.order_id == the_order.id)) if s.modem_serial]
    assert serials == ["SN-LATE-01"]
