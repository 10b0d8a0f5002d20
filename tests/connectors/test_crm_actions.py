"""``crm.*``: the processes' path to business data — validated, safe to repeat, CRM refusals as BPMN errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from connectors import crm_actions
from connectors.registry import BusinessError, ConnectorContext, InvalidParameters, Registry
from crm.accounts import ContactInput, create_account, create_contact
from crm.positions import PositionInput
from crm.products import ProductInput, create_product
from crm.quotes import accept_quote, create_quote, send_quote
from crm.schema import activity, booked_service, order
from engine.database import create_db_engine


@pytest.fixture
def actions(db_url: str) -> Iterator[tuple[Registry, sa.engine.Engine]]:
    engine = create_db_engine(db_url)
    registry = Registry()
    crm_actions.register(registry, engine)
    yield registry, engine
    engine.dispose()


def ctx(key: str = "job-1") -> ConnectorContext:
    return ConnectorContext(key, "instance", "element", "K-1")


def _accepted_quote(engine: sa.engine.Engine, amount: str = "49.90") -> tuple[int, int, int]:
    with engine.begin() as conn:
        account = create_account(conn, "Hofmann KG")
        contact = create_contact(conn, ContactInput(last_name="Hofmann", salutation="Frau"), account)
        access = create_product(conn, ProductInput("ADSL", "ADSL", "access", "recurring_monthly", Decimal(amount),
                                                   provisioning_steps=("ip",)))
        modem = create_product(conn, ProductInput("MODEM", "Modem", "hardware", "hardware", Decimal("149.00"),
                                                  provisioning_steps=("hardware",)))
        quote = create_quote(conn, account, [PositionInput(Decimal(1), access), PositionInput(Decimal(1), modem)],
                             date.today() + timedelta(days=30), contact_id=contact)
        send_quote(conn, quote)
        accept_quote(conn, quote)
    return quote, account, contact


def test_order_production_and_booking_are_safe_to_repeat(actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    quote, account, _contact = _accepted_quote(engine)
    address = {"name": "Hofmann KG", "street": "Hauptstraße 1", "postal_code": "80331", "city": "München"}
    first = registry.run("crm.create_order", {"quote_id": quote, "adjustments": [{"line_no": 1, "quantity": 2}],
                                              "delivery_address": address}, ctx())
    again = registry.run("crm.create_order", {"quote_id": quote}, ctx())
    assert first == again and first["net"] == "248.80" and first["sub_orders"] == 2
    plan = registry.run("crm.start_production", {"order_id": first["order_id"]}, ctx())["sub_orders"]
    assert [p["step"] for p in plan] == ["ip", "hardware"] and plan[1]["on_site"] is True
    for sub in plan:
        registry.run("crm.sub_order_status", {"sub_order_id": sub["sub_order_id"], "status": "in_progress"}, ctx())
        registry.run("crm.sub_order_status", {"sub_order_id": sub["sub_order_id"], "status": "done"}, ctx())
        registry.run("crm.sub_order_status", {"sub_order_id": sub["sub_order_id"], "status": "done"}, ctx())
    results = [{"position_id": plan[0]["position_id"], "ip_address": "192.0.2.7"},
               {"position_id": plan[1]["position_id"], "modem_serial": "SN-1"}]
    booked = registry.run("crm.book_services", {"order_id": first["order_id"], "results": results}, ctx())
    assert registry.run("crm.book_services", {"order_id": first["order_id"], "results": results}, ctx()) == booked
    [service] = booked["services"]
    assert (service["ip_address"], service["modem_serial"], service["status"]) == ("192.0.2.7", "SN-1", "active")
    with engine.connect() as conn:
        assert conn.execute(sa.select(order.c.status).where(order.c.id == first["order_id"])).scalar() == "delivered"
        assert conn.execute(sa.select(sa.func.count()).select_from(booked_service)).scalar() == 1


def test_credit_check_flags_a_large_order_of_a_prospect(actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    _quote, account, _contact = _accepted_quote(engine)
    assert registry.run("crm.credit_check", {"account_id": account, "amount": "900.00"}, ctx())["risky"] is False
    risky = registry.run("crm.credit_check", {"account_id": account, "amount": "1500.00"}, ctx())
    assert risky["risky"] is True and "Limit" in risky["reason"]


def test_refusals_are_business_errors_naming_the_field(actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    quote, account, contact = _accepted_quote(engine)
    with pytest.raises(BusinessError) as refused:
        registry.run("crm.create_order", {"quote_id": quote, "drop_lines": [1, 2]}, ctx())
    assert refused.value.code == "CrmRejected" and refused.value.data == {"field": "drop_lines"}
    with pytest.raises(BusinessError):
        registry.run("crm.incident_action", {"incident_id": 999, "action": "close"}, ctx())
    with pytest.raises(InvalidParameters):
        registry.run("crm.log_activity", {"account_id": account}, ctx())
    registry.run("crm.log_activity", {"contact_id": contact, "kind": "call", "subject": "Rückruf"}, ctx())
    with engine.connect() as conn:
        assert conn.execute(sa.select(activity.c.subject)).scalars().all() == ["Rückruf"]


def test_incident_escalation_time_is_75_percent_of_the_resolution_time(
        actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    _quote, account, _contact = _accepted_quote(engine)
    opened = registry.run("crm.open_incident", {"account_id": account, "summary": "Kein Sync", "impact": "high",
                                                "urgency": "high"}, ctx())
    start = datetime.fromisoformat(opened["escalate_at"])
    due = datetime.fromisoformat(opened["resolution_due"])
    assert start < due
    routed = registry.run("crm.incident_action", {"incident_id": opened["incident_id"], "action": "assign",
                                                  "group": "servicedesk"}, ctx())
    rerouted = registry.run("crm.incident_action", {"incident_id": opened["incident_id"], "action": "assign",
                                                    "group": "support2"}, ctx())
    assert routed["status"] == rerouted["status"] == "assigned"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT assigned_group FROM crm_incident")).scalar() == "support2"
    problem = registry.run("crm.create_problem", {"title": "DSLAM", "incident_ids": [opened["incident_id"]]}, ctx())
    assert registry.run("crm.create_problem", {"title": "DSLAM", "incident_ids": [opened["incident_id"]]},
                        ctx())["problem_id"] == problem["problem_id"]
    told = registry.run("crm.publish_workaround", {"problem_id": problem["problem_id"], "workaround": "Neustart"},
                        ctx())
    assert told["informed"] == [opened["incident_id"]]
    resolved = registry.run("crm.resolve_problem", {"problem_id": problem["problem_id"], "resolution": "Tausch"},
                            ctx())
    assert resolved["resolved_incidents"] == [opened["incident_id"]]
