"""Travel expenses through the REST API: a claim missing a receipt goes back to the employee, receipts come as
document ids or uploads, the team lead approves, accounting instructs the payout, the employee gets a mail; a
rejection carries its reason."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm.documents import DocumentLinks, DocumentStore
from crm.schema import document, expense_claim, expense_item

from .conftest import World
from .employee import USERNAME, Employee, key_employee, logged_in_employee, mail_to_employee, mails_with_subject

TRIP = {"purpose": "Messe ANGA COM Köln", "trip_start": "2027-06-01", "trip_end": "2027-06-03"}


def submit(world: World, employee: Employee, items: list[dict[str, Any]]) -> str:
    """The employee starts the claim themselves and enters the trip."""
    instance = employee.start("travel-expenses")
    employee.complete(world, instance, "enter", {**TRIP, "items": items})
    return instance


def hotel_bill(world: World) -> int:
    with world.api.engine.db.transaction() as conn:
        return DocumentStore().store(conn, b"%PDF-1.4 Hotelrechnung", "hotel.pdf", "application/pdf",
                                     DocumentLinks(), uploaded_by=USERNAME)


def claim(world: World, employee: str = USERNAME) -> tuple[sa.Row[Any], list[sa.Row[Any]]]:
    with world.api.engine.db.read() as conn:
        row = conn.execute(sa.select(expense_claim).where(expense_claim.c.employee == employee)).one()
        items = list(conn.execute(sa.select(expense_item).where(expense_item.c.expense_claim_id == row.id)
                                  .order_by(expense_item.c.line_no)))
    return row, items


def test_claim_without_receipt_is_corrected_approved_and_paid_out(world: World) -> None:
    hotel = {"date": "2027-06-01", "category": "hotel", "description": "Hotel Dom, 2 Nächte", "amount": 238.4,
             "receipt_document_id": hotel_bill(world)}
    train = {"date": "2027-06-01", "category": "travel", "description": "Bahn Berlin–Köln", "amount": 119.9}
    per_diem = {"date": "2027-06-02", "category": "per_diem", "description": "Tagespauschale", "amount": 28}
    employee = logged_in_employee(world)
    instance = submit(world, employee, [hotel, train, per_diem])
    world.wait_for(lambda: "rejection_reason" in world.instance(instance)["variables"], "the refusal")
    assert world.instance(instance)["variables"]["rejection_reason"] == \
        "items[1].receipt_document_id: a travel expense needs a receipt"

    ticket = base64.b64encode(b"%PDF-1.4 Fahrkarte").decode()
    train["receipt"] = {"file_name": "ticket.pdf", "mime_type": "application/pdf", "content": ticket}
    employee.complete(world, instance, "enter", {**TRIP, "items": [hotel, train, per_diem]})
    task = world.task(instance, "approve", "manager")
    assert task["candidateGroups"] == ["management", "hr"] and task["formKey"] == "travel-expenses-approval"
    variables = world.instance(instance)["variables"]
    assert variables["total"] == "386.30" and "content" not in str(variables["items"])  # uploads not kept in state
    world.complete(instance, "approve", "manager", {"approved": True})
    payout = world.task(instance, "payout", "billing")
    assert payout["candidateGroups"] == ["billing"] and payout["name"] == "Auszahlung anweisen"
    world.complete(instance, "payout", "billing", {"payment_reference": "RK-2027-0042", "paid_on": "2027-06-10"})
    world.wait_state(instance, "completed")

    row, items = claim(world)
    assert (row.status, row.total, row.decided_by) == ("approved", Decimal("386.30"), "key:test-manager")
    assert [(i.category, i.amount, i.description) for i in items] == [
        ("hotel", Decimal("238.40"), "01.06.2027: Hotel Dom, 2 Nächte"),
        ("travel", Decimal("119.90"), "01.06.2027: Bahn Berlin–Köln"),
        ("per_diem", Decimal("28.00"), "02.06.2027: Tagespauschale")]
    with world.api.engine.db.read() as conn:
        upload = conn.execute(sa.select(document).where(document.c.id == items[1].receipt_document_id)).one()
    assert (upload.file_name, upload.uploaded_by) == ("ticket.pdf", USERNAME)
    body = mail_to_employee(world, "Reisekosten erstattet")
    assert "386.30 EUR" in body and "RK-2027-0042" in body


def test_started_by_an_api_key_the_rejection_is_recorded_for_the_key_without_mail(world: World) -> None:
    employee = key_employee(world)
    instance = submit(world, employee, [{"date": "2027-06-02", "category": "per_diem",
                                         "description": "Tagespauschale", "amount": 28}])
    world.complete(instance, "approve", "manager", {"approved": False, "rejection_reason": "Reise nicht genehmigt"})
    done = world.wait_state(instance, "completed")
    assert claim(world, employee.name)[0].status == "rejected"
    assert done["variables"]["employee_user"]["email"] is None
    assert mails_with_subject(world, "Reisekostenabrechnung abgelehnt") == []
    tasks = world.api.client("billing").get("/tasks", params={"limit": 200}).json()["items"]
    assert not [t for t in tasks if t["instanceId"] == instance]
