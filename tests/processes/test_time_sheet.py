"""The weekly time sheet through the REST API: entries the CRM refuses (more than 10 h a day) and a sheet the team
lead rejects go back to the employee with the reason; the corrected week is approved."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from crm.schema import time_entry

from .conftest import World
from .employee import USERNAME, key_employee, logged_in_employee

MONDAY = "2027-03-08"


def entries(world: World, employee: str = USERNAME) -> list[tuple[str, str, Decimal, str | None]]:
    with world.api.engine.db.read() as conn:
        rows = conn.execute(sa.select(time_entry).where(time_entry.c.employee == employee).order_by(time_entry.c.id))
        return [(row.status, row.project, Decimal(row.hours), row.decided_by) for row in rows]


def test_refused_and_rejected_weeks_go_back_for_correction_until_approved(world: World) -> None:
    employee = logged_in_employee(world)
    instance = employee.start("time-sheet")
    too_long = [{"date": MONDAY, "project": "Glasfaser Nord", "hours": 6},
                {"date": MONDAY, "project": "Support", "hours": 5, "note": "Hotline"}]
    employee.complete(world, instance, "enter", {"week_start": MONDAY, "entries": too_long})
    world.wait_for(lambda: "rejection_reason" in world.instance(instance)["variables"], "the refusal")
    reason = world.instance(instance)["variables"]["rejection_reason"]
    assert reason.startswith("entries[1].hours: 2027-03-08 already has 6") and "ArbZG" in reason
    assert entries(world) == []  # all entries of the week or none

    week = [{"date": MONDAY, "project": "Glasfaser Nord", "hours": 6},
            {"date": "2027-03-09", "project": "Support", "hours": 7.5, "note": "Hotline"}]
    employee.complete(world, instance, "enter", {"week_start": MONDAY, "entries": week})
    task = world.task(instance, "approve", "manager")
    assert task["candidateGroups"] == ["management", "hr"] and task["formKey"] == "time-sheet-approval"
    assert world.instance(instance)["variables"]["total_hours"] == "13.5"
    world.complete(instance, "approve", "manager", {"approved": False, "rejection_reason": "Projekt fehlt: Messe"})
    employee.task(world, instance, "enter")
    assert world.instance(instance)["variables"]["rejection_reason"] == "Projekt fehlt: Messe"
    assert [e[0] for e in entries(world)] == ["rejected", "rejected"]

    week.append({"date": "2027-03-10", "project": "Messe", "hours": 8})
    employee.complete(world, instance, "enter", {"week_start": MONDAY, "entries": week})
    world.complete(instance, "approve", "manager", {"approved": True})
    world.wait_state(instance, "completed")
    assert entries(world)[2:] == [("approved", "Glasfaser Nord", Decimal(6), "key:test-manager"),
                                  ("approved", "Support", Decimal("7.5"), "key:test-manager"),
                                  ("approved", "Messe", Decimal(8), "key:test-manager")]
    mine = employee.client.get("/staff/time-entries", params={"status": "approved"}).json()
    assert mine["total"] == 3


def test_started_by_an_api_key_the_week_is_recorded_for_the_key(world: World) -> None:
    employee = key_employee(world)
    forged = employee.client.post("/process-definitions/time-sheet/instances",
                                  json={"variables": {"employee": "someone-else"}})
    assert forged.status_code == 201, forged.text
    instance = str(forged.json()["id"])
    assert world.instance(instance)["variables"]["employee"] == employee.name  # the initiator, not the client's word
    employee.complete(world, instance, "enter", {"week_start": MONDAY, "entries": [
        {"date": MONDAY, "project": "Support", "hours": 4}]})
    world.complete(instance, "approve", "manager", {"approved": True})
    world.wait_state(instance, "completed")
    assert entries(world, employee.name) == [("approved", "Support", Decimal(4), "key:test-manager")]
    assert entries(world, "someone-else") == []
