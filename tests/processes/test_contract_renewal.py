"""Contract renewal through the REST API: the daily run puts contracts whose reminder date has come in front of
sales, applies the decision in the CRM (renew extends the term, let expire gives notice) and mails the
customer; a contract already reminded is not asked about again."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from crm import booked_services, contracts
from crm.accounts import ContactInput, create_account, create_contact
from crm.products import ProductInput, create_product
from crm.schema import booked_service, contract
from engine.start_timers import START_TIMER

from .conftest import World


def _contract_due_for_reminder(world: World, name: str, code: str) -> dict[str, int]:
    """A 12-month contract (3 months' notice) whose renewal reminder is due today: it ends in about 100 days."""
    start = contracts.add_months(date.today() + timedelta(days=100), -12)
    with world.api.engine.db.transaction() as conn:
        account = create_account(conn, name, owner="anna")
        contact = create_contact(conn, ContactInput(last_name="Berger", salutation="Herr",
                                                    email=f"berger@{code.lower()}.example"), account)
        product = create_product(conn, ProductInput(code, "SDSL 100", "access", "recurring_monthly",
                                                    Decimal("149.00")))
        service = booked_services.book_service(conn, account, product)
        booked_services.activate_service(conn, service, start)
        contract_id = contracts.create_contract(conn, account, contracts.ContractTerms(
            start_date=start, term_months=12, notice_months=3, booked_service_ids=(service,)))
        assert contract_id in contracts.reminders_due(conn, date.today())
    return {"account_id": account, "contact_id": contact, "contract_id": contract_id, "service_id": service}


def _daily_run(world: World) -> str:
    """Fire the contract-renewal start timer at its next due time, as the worker does once a day."""
    engine = world.api.engine
    (job,) = [j for j in engine.jobs(kind=START_TIMER, state="pending") if j.process_key == "contract-renewal"]
    assert engine.fire_due_timers(now=job.due_at + timedelta(seconds=1)) >= 1
    runs = world.api.client("admin").get("/process-instances", params={"key": "contract-renewal",
                                                                       "sort": "-started"}).json()["items"]
    return str(runs[0]["id"])


def _contract(world: World, contract_id: int) -> sa.Row[tuple[object, ...]]:
    with world.api.engine.db.read() as conn:
        return conn.execute(sa.select(contract).where(contract.c.id == contract_id)).one()


def _decide_tasks(world: World, run: str) -> list[dict[str, object]]:
    items = world.api.client("sales").get("/tasks", params={"limit": 200}).json()["items"]
    return [t for t in items if t["instanceId"] == run and t["elementId"] == "decide"]


def test_renewal_extends_the_contract_and_notice_ends_it_with_mails_to_the_customers(world: World) -> None:
    renew = _contract_due_for_reminder(world, "Berger Spedition GmbH", "SDSL-A")
    old = _contract(world, renew["contract_id"])
    run = _daily_run(world)
    task = world.task(run, "decide", "sales")
    assert task["candidateGroups"] == ["sales"] and task["formKey"] == "contract-renewal-decision"
    world.complete(run, "decide", "sales", {"decision": "verlängern"})
    world.wait_state(run, "completed")

    renewed = _contract(world, renew["contract_id"])
    assert renewed.status == "active" and renewed.reminded_on == date.today()
    assert renewed.end_date == contracts.term_end(old.end_date + timedelta(days=1), 12)
    assert renewed.notice_deadline == contracts.notice_deadline(renewed.end_date, 3)
    with world.api.engine.db.read() as conn:
        service_end = conn.execute(sa.select(booked_service.c.contract_end)
                                   .where(booked_service.c.id == renew["service_id"])).scalar_one()
    assert service_end == renewed.end_date
    mail = world.wait_for(lambda: next((m for m in world.inbox.messages if old.number in str(m["Subject"])), None),
                          "renewal mail")
    assert str(mail["Subject"]) == f"Verlängerung Ihres Vertrags {old.number}"
    assert mail["To"].endswith("berger@sdsl-a.example>")
    body = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    assert f"bis zum {renewed.end_date:%d.%m.%Y}" in body and "Sehr geehrter Herr Berger" in body

    expire = _contract_due_for_reminder(world, "Berger Druck KG", "SDSL-B")
    run = _daily_run(world)  # the renewed contract is not asked about again, only the new one
    world.task(run, "decide", "sales")
    assert len(_decide_tasks(world, run)) == 1
    world.complete(run, "decide", "sales", {"decision": "auslaufen lassen", "note": "Umzug ins Ausland."})
    world.wait_state(run, "completed")

    ended = _contract(world, expire["contract_id"])
    assert ended.status == "notice_given" and ended.notice_received_on == date.today()
    assert _contract(world, renew["contract_id"]).end_date == renewed.end_date
    mail = world.wait_for(lambda: next((m for m in world.inbox.messages if ended.number in str(m["Subject"])), None),
                          "notice mail")
    assert str(mail["Subject"]) == f"Bestätigung der Kündigung Ihres Vertrags {ended.number}"
    body = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    assert f"zum {ended.end_date:%d.%m.%Y}" in body and "Umzug ins Ausland." in body
