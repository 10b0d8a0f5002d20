"""A web lead for a DSL line with a modem, from the integration's start (only the lead and the channel) through
appointment, quote, the customer's acceptance and the order review — where the back office types the delivery
address the lead never gave — to production with the supplier's shipment and delivery. Nothing but what a person
or the partner systems supply enters the process."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from crm.products import ProductInput, create_product
from crm.schema import booked_service, order

from .conftest import World
from .test_acquisition import LEAD, MEETING, NOTE

SITE = {"name": "Schneider Logistik GmbH", "street": "Lagerweg 3", "postal_code": "28195", "city": "Bremen",
        "country": "DE"}


def test_web_lead_with_a_modem_is_ordered_produced_and_delivered_to_the_typed_address(world: World) -> None:
    with world.api.engine.db.transaction() as conn:
        create_product(conn, ProductInput("ADSL100", "ADSL 100", "access", "recurring_monthly", Decimal("49.90"),
                                          provisioning_steps=("ip",)))
        create_product(conn, ProductInput("MODEM-7590", "FRITZ!Box 7590", "hardware", "hardware",
                                          Decimal("259.00"), provisioning_steps=("hardware",)))
    instance = world.start("acquisition", {"lead": LEAD, "channel": "web_form"}, business_key="L-3001")
    world.complete(instance, "schedule", "sales", MEETING)
    world.complete(instance, "note", "sales", NOTE)
    world.complete(instance, "assemble", "sales", {"positions": [{"product_code": "ADSL100", "quantity": 1},
                                                                 {"product_code": "MODEM-7590", "quantity": 1}],
                                                   "valid_days": 30})
    quote_id = world.wait_for(lambda: (v := world.instance(instance)["variables"]).get("quote_state")
                              and v["quote_id"], "the quote sent")
    answer = world.api.client("integration").post("/messages", json={
        "name": "quote_answer", "correlationKeys": {"quote_id": quote_id}, "variables": {"answer": "accepted"}})
    assert answer.status_code == 200 and answer.json()["deliveredTo"] == [instance]

    form = world.form_data(instance, "review", "backoffice")
    assert form["delivery_address"] is None  # the web form asks for no address: the review is where it arises
    incomplete = world.api.client("backoffice").post(f"/tasks/{world.task(instance, 'review', 'backoffice')['id']}"
                                                     "/complete", json={"data": {"drop_lines": [], "adjustments": []}})
    assert incomplete.status_code == 422 and "delivery_address" in incomplete.text
    world.complete(instance, "review", "backoffice", {"drop_lines": [], "adjustments": [], "delivery_address": SITE})

    world.complete(instance, "technician", "provisioning", {
        "starts_at": "2027-03-10T09:00:00+01:00", "ends_at": "2027-03-10T11:00:00+01:00", "technician": "Kai"})
    world.complete(instance, "deliver", "backoffice", {"delivered_on": "2027-03-10"})
    world.wait_state(instance, "completed")

    [placed] = world.supplier.orders()
    shipped_to = placed.request.deliveryAddress
    assert (shipped_to.name, shipped_to.street, shipped_to.postalCode, shipped_to.city) == \
        ("Schneider Logistik GmbH", "Lagerweg 3", "28195", "Bremen")
    with world.api.engine.db.read() as conn:
        the_order = conn.execute(sa.select(order).where(order.c.quote_id == quote_id)).one()
        services = conn.execute(sa.select(booked_service).where(booked_service.c.order_id == the_order.id)).all()
    assert the_order.status == "delivered"
    assert (the_order.delivery_street, the_order.delivery_city) == ("Lagerweg 3", "Bremen")
    [line] = services
    assert line.status == "active" and line.ip_address and line.modem_serial == placed.serial_numbers[0]
