"""Opportunity won: setting the stage to *won* through REST starts ``opportunity-won`` (message start); the back
office turns the pre-filled positions into an accepted quote, and the order process takes it over."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm.accounts import ContactInput, create_account, create_contact
from crm.products import ProductInput, create_product
from crm.schema import order, quote

from .conftest import World


def test_won_opportunity_becomes_a_quote_and_an_order(world: World) -> None:
    with world.api.engine.db.transaction() as conn:
        account = create_account(conn, "Weber Consulting GmbH")
        contact = create_contact(conn, ContactInput("Weber", salutation="Herr", email="weber@weber.example"), account)
        product = create_product(conn, ProductInput("VOIP-10", "VoIP Anlage 10 Kanäle", "voice", "recurring_monthly",
                                                    Decimal("89.00")))
    sales = world.api.client("sales")
    created = sales.post("/opportunities", json={
        "accountId": account, "contactId": contact, "productId": product, "title": "Telefonanlage",
        "expectedRevenue": "1068.00", "expectedClose": (date.today() + timedelta(days=30)).isoformat()})
    assert created.status_code == 201, created.text
    opportunity_id = created.json()["id"]

    won = sales.post(f"/opportunities/{opportunity_id}/stage", json={"stage": "won"})
    assert won.status_code == 200, won.text
    [instance] = won.json()["startedInstanceIds"]
    assert world.instance(instance)["businessKey"] == f"OPP-{opportunity_id}"

    task = world.task(instance, "prepare_order", "backoffice")
    assert task["candidateGroups"] == ["backoffice"]
    variables = world.wait_for(lambda: (v := world.instance(instance)["variables"]).get("positions") is not None and v,
                               "the pre-filled form")
    assert variables["positions"] == [{"product_code": "VOIP-10", "quantity": 1}]  # the product of interest
    assert variables["opportunity"]["expected_revenue"] == "1068.00"
    assert variables["opportunity"]["account_name"] == "Weber Consulting GmbH"
    world.complete(instance, "prepare_order", "backoffice", {
        "positions": [{"product_code": "VOIP-10", "quantity": 1}, {"product_code": "NO-SUCH", "quantity": 1}],
        "valid_days": 30})
    refused = world.wait_for(lambda: world.instance(instance)["variables"].get("quote_error"), "the refusal")
    assert refused["field"] == "positions[1].product_code"
    world.complete(instance, "prepare_order", "backoffice", {
        "positions": [{"product_code": "VOIP-10", "quantity": 1, "discount_percent": 5}], "valid_days": 30})
    world.complete(instance, "review", "backoffice", {"drop_lines": [], "adjustments": [], "delivery_address": {
        "name": "Weber Consulting GmbH", "street": "Marktplatz 2", "postal_code": "04109", "city": "Leipzig"}})

    def ordered() -> Any:
        with world.api.engine.db.read() as conn:
            return conn.execute(sa.select(order.c.id, order.c.net, quote.c.status)
                                .join(quote, quote.c.id == order.c.quote_id)
                                .where(quote.c.account_id == account)).one_or_none()
    row = world.wait_for(ordered, "the order")
    assert row.status == "accepted" and row.net == Decimal("84.55")
    again = sales.post(f"/opportunities/{opportunity_id}/stage", json={"stage": "lost"})
    assert again.status_code == 409  # won is final
