"""``crm.*`` of acquisition and opportunity-won: duplicates found, creations safe to repeat, refusals as
``CrmRejected`` naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from connectors import sales_actions
from connectors.registry import BusinessError, ConnectorContext, Registry
from crm.accounts import ContactInput, create_account, create_contact
from crm.products import ProductInput, create_product
from crm.schema import account, activity, appointment, quote
from engine.database import create_db_engine

LEAD = {"company": "Krause Bau GmbH", "last_name": "Krause", "email": "info@krause-bau.example",
        "channel": "web_form", "message": "Bitte um Rückruf"}


@pytest.fixture
def actions(db_url: str) -> Iterator[tuple[Registry, sa.engine.Engine]]:
    engine = create_db_engine(db_url)
    registry = Registry()
    sales_actions.register(registry, engine)
    with engine.begin() as conn:
        create_product(conn, ProductInput("SDSL20", "SDSL 20", "access", "recurring_monthly", Decimal("199.00")))
    yield registry, engine
    engine.dispose()


def ctx() -> ConnectorContext:
    return ConnectorContext("job-1", "instance", "element", "L-1")


def test_a_lead_is_captured_once_and_found_as_duplicate_by_name_or_email(
        actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    assert registry.run("crm.find_duplicates", {"company": LEAD["company"], "email": LEAD["email"]}, ctx()) == \
        {"found": False, "candidates": []}
    first = registry.run("crm.capture_lead", LEAD, ctx())
    again = registry.run("crm.capture_lead", LEAD, ctx())  # a retried job
    assert (again["account_id"], again["contact_id"]) == (first["account_id"], first["contact_id"])
    by_email = registry.run("crm.find_duplicates", {"company": "Krause", "email": "INFO@krause-bau.example"}, ctx())
    assert [(c["account_id"], c["matched_by"]) for c in by_email["candidates"]] == [(first["account_id"], ["email"])]
    by_name = registry.run("crm.find_duplicates", {"company": "krause  bau gmbh"}, ctx())
    assert [(c["account_id"], c["matched_by"]) for c in by_name["candidates"]] == [(first["account_id"], ["name"])]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(account)).scalar() == 1
        kinds = conn.execute(sa.select(activity.c.kind).where(activity.c.account_id == first["account_id"])).all()
    assert {k.kind for k in kinds} == {"email_in"}


def test_booking_is_safe_to_repeat_and_a_collision_is_a_business_error(
        actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    meeting = {"topic": "Vor-Ort-Termin", "starts_at": "2027-05-03T09:00:00+02:00",
               "ends_at": "2027-05-03T10:00:00+02:00", "participants": "anna, ben", "place": "Kunde"}
    first = registry.run("crm.book_appointment", meeting, ctx())
    assert registry.run("crm.book_appointment", meeting, ctx()) == first
    with pytest.raises(BusinessError) as refused:
        registry.run("crm.book_appointment", {**meeting, "topic": "Anderer Termin"}, ctx())
    assert refused.value.code == "CrmRejected" and refused.value.data == {"field": "participants"}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(appointment)).scalar() == 1


def test_quote_from_the_catalogue_is_revised_in_place_and_moves_through_its_statuses(
        actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    with engine.begin() as conn:
        customer = create_account(conn, "Lang KG")
        person = create_contact(conn, ContactInput("Lang", email="lang@lang.example"), customer)
    params = {"account_id": customer, "contact_id": person, "valid_days": 14,
              "positions": [{"product_code": "SDSL20", "quantity": 2, "discount_percent": 20}]}
    draft = registry.run("crm.prepare_quote", params, ctx())
    assert registry.run("crm.prepare_quote", params, ctx())["quote_id"] == draft["quote_id"]  # a retried job
    assert draft["max_discount"] == 20.0 and draft["net"] == "318.40" and draft["status"] == "draft"
    assert draft["expires_at"] == datetime.combine(date.today() + timedelta(days=15), datetime.min.time(),
                                                   UTC).isoformat()
    revised = registry.run("crm.prepare_quote", {**params, "quote_id": draft["quote_id"], "positions": [
        {"product_code": "SDSL20", "quantity": 2, "discount_percent": 10}]}, ctx())
    assert revised["quote_id"] == draft["quote_id"] and revised["net"] == "358.20"
    with pytest.raises(BusinessError) as unknown:
        registry.run("crm.prepare_quote", {**params, "positions": [{"product_code": "NOPE"}]}, ctx())
    assert unknown.value.data == {"field": "positions[0].product_code"}
    for status in ("sent", "sent", "expired"):
        assert registry.run("crm.quote_status", {"quote_id": draft["quote_id"], "status": status}, ctx())["status"] \
            == status
    with pytest.raises(BusinessError):
        registry.run("crm.quote_status", {"quote_id": draft["quote_id"], "status": "accepted"}, ctx())
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(quote)).scalar() == 1
