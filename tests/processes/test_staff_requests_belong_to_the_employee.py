"""Staff processes belong to the employee (issue 21 item 4), walked the real way: people log in and start their own
requests over REST or the start page, nothing injected. The employee's own tasks are theirs alone — a colleague
of the same staff group neither sees, claims nor completes them (REST and page); an approval never goes to the
requester — a manager filing his own vacation cannot approve it by any path (REST claim/assign/complete, the task
page) — while hr or another manager can; the CRM record and the history name the approver by login."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa

from crm.schema import time_entry, vacation_request
from crm.staff import set_entitlement

from .conftest import World
from .employee import USERNAME, logged_in_employee

WEEK = {"first_day": "2027-03-08", "last_day": "2027-03-12", "deputy": "Frau Schmidt"}


def login(world: World, username: str, roles: list[str], groups: list[str]) -> httpx.Client:
    """A person with an account who logs in like a browser (session cookie, CSRF token on every change)."""
    with world.api.engine.db.transaction() as conn:
        world.api.identity.add_user(conn, username, f"{username}-password", roles, groups,
                                    email=f"{username}@x.example")
    client = world.api.client()
    response = client.post("/auth/login", json={"username": username, "password": f"{username}-password"})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrfToken"]
    return client


def inbox(client: httpx.Client, instance_id: str) -> list[dict[str, Any]]:
    items = client.get("/tasks", params={"limit": 200}).json()["items"]
    return [t for t in items if t["instanceId"] == instance_id]


def page(world: World, client: httpx.Client, method: str, path: str, **form: str) -> httpx.Response:
    """The browser page at ``path`` (outside /api/v1), with the session's CSRF token in a form post."""
    url = world.api.base_url + path
    if method == "GET":
        return client.get(url)
    return client.post(url, data={"csrf_token": client.headers["X-CSRF-Token"], **form})


def test_a_colleague_cannot_see_claim_or_complete_the_employees_own_task(world: World) -> None:
    employee = logged_in_employee(world)
    colleague = login(world, "lena", ["clerk"], ["staff"])  # the same staff group as the employee
    other_manager = world.api.client("manager")  # a manager outside hr
    instance = employee.start("vacation-request")
    task = employee.task(world, instance, "submit")
    assert task["assignee"] == USERNAME and task["candidateGroups"] == []

    assert inbox(colleague, instance) == []
    for client in (colleague, other_manager):
        assert client.get(f"/tasks/{task['id']}").status_code == 403
        assert client.post(f"/tasks/{task['id']}/claim").status_code == 403
        assert client.post(f"/tasks/{task['id']}/complete", json={"data": WEEK}).status_code == 403
        assert client.get(f"/process-instances/{instance}").status_code == 404
    assert page(world, colleague, "GET", f"/tasks/{task['id']}").status_code == 403
    assert page(world, colleague, "POST", f"/tasks/{task['id']}/claim").status_code == 403
    assert page(world, colleague, "POST", f"/tasks/{task['id']}", **{k: v for k, v in WEEK.items()}).status_code == 403
    assert "Urlaub beantragen" not in page(world, colleague, "GET", "/tasks").text
    # hr sees the confidential instance, but the employee's own task is not theirs to file, nor to take
    hr = world.api.client("admin")  # admin key in group hr
    assert hr.post(f"/tasks/{task['id']}/claim").status_code == 403
    assert hr.post(f"/tasks/{task['id']}/assign", json={"assignee": "lena"}).status_code == 403
    assert hr.post(f"/tasks/{task['id']}/unclaim").status_code == 403
    assert hr.post(f"/tasks/{task['id']}/complete", json={"data": WEEK}).status_code == 403

    with world.api.engine.db.transaction() as conn:
        set_entitlement(conn, USERNAME, 2027, Decimal(30))
    employee.complete(world, instance, "submit", WEEK)
    world.wait_for(lambda: "request_id" in world.instance(instance)["variables"], "the stored request")
    assert world.api.engine.get_task(task["id"]).completed_by == USERNAME


def test_a_manager_cannot_approve_his_own_vacation_by_any_path_hr_decides_and_is_recorded(world: World) -> None:
    boss = login(world, "mara", ["manager"], ["management", "staff"])  # the only manager with an account
    hr = login(world, "hanna", ["clerk"], ["hr"])
    with world.api.engine.db.transaction() as conn:
        set_entitlement(conn, "mara", 2027, Decimal(30))
    started = page(world, boss, "POST", "/start", process="vacation-request")  # from the start page, as herself
    assert started.status_code == 303 and started.headers["location"].startswith("/tasks/")
    task_id = started.headers["location"].removeprefix("/tasks/")
    done = boss.post(f"/tasks/{task_id}/complete", json={"data": WEEK})
    assert done.status_code == 200, done.text
    instance = done.json()["id"]

    approval = world.task(instance, "approve", "hr")
    assert approval["candidateGroups"] == ["management", "hr"]
    assert inbox(boss, instance) == []  # not in her inbox although she is in management
    assert boss.post(f"/tasks/{approval['id']}/claim").status_code == 403
    assert boss.post(f"/tasks/{approval['id']}/assign", json={"assignee": "mara"}).status_code == 403
    assert boss.post(f"/tasks/{approval['id']}/assign", json={"assignee": "hanna"}).status_code == 403
    refused = boss.post(f"/tasks/{approval['id']}/complete", json={"data": {"approved": True}})
    assert refused.status_code == 403 and "own request" in refused.json()["detail"]
    assert page(world, boss, "POST", f"/tasks/{approval['id']}", approved="true").status_code == 403
    claimed = page(world, boss, "POST", f"/tasks/{approval['id']}/claim")
    assert "own request" in claimed.text
    assert world.api.engine.get_task(approval["id"]).state == "open"
    assert world.api.engine.get_task(approval["id"]).assignee is None

    assert hr.post(f"/tasks/{approval['id']}/claim").status_code == 200
    decided = hr.post(f"/tasks/{approval['id']}/complete", json={"data": {"approved": True}})
    assert decided.status_code == 200, decided.text
    world.wait_state(instance, "completed")
    with world.api.engine.db.read() as conn:
        row = conn.execute(sa.select(vacation_request).where(vacation_request.c.employee == "mara")).one()
    assert (row.status, row.decided_by) == ("approved", "hanna")  # the login, not a group
    history = world.api.engine.history(instance)
    [completed] = [e for e in history if e.type == "task.completed" and e.element_id == "approve"]
    assert completed.user_id == "hanna"
    assert world.instance(instance)["variables"]["approver"] == "hanna"


def test_another_manager_approves_a_managers_time_sheet_and_is_recorded(world: World) -> None:
    employee = logged_in_employee(world)
    boss = login(world, "boris", ["manager"], ["management"])
    instance = employee.start("time-sheet")
    employee.complete(world, instance, "enter", {"week_start": "2027-03-08", "entries": [
        {"date": "2027-03-08", "project": "Support", "hours": 8}]})
    approval = world.task(instance, "approve", "manager")
    assert employee.client.post(f"/tasks/{approval['id']}/complete",
                                json={"data": {"approved": True}}).status_code == 403
    assert boss.post(f"/tasks/{approval['id']}/claim").status_code == 200
    assert boss.post(f"/tasks/{approval['id']}/complete", json={"data": {"approved": True}}).status_code == 200
    world.wait_state(instance, "completed")
    with world.api.engine.db.read() as conn:
        rows = conn.execute(sa.select(time_entry.c.status, time_entry.c.decided_by)
                            .where(time_entry.c.employee == USERNAME)).all()
    assert [tuple(r) for r in rows] == [("approved", "boris")]
