"""The employee of the admin-process tests: a person who logs in (browser session) and starts their own request,
or an integration's API key; the processes take whoever started them as the employee (start event initiator)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from .conftest import World

USERNAME = "kim"  # the employee's user account: whose requests the CRM records
DISPLAY_NAME = "Kim Becker"
EMAIL = "kim.becker@silverflow.example"
STAFF_KEY = "key:test-staff"  # the REST principal of the staff client's API key


@dataclass
class Employee:
    """Whoever starts an admin process and works on its staff-lane tasks, through their own REST client."""

    name: str
    client: httpx.Client

    def start(self, key: str) -> str:
        response = self.client.post(f"/process-definitions/{key}/instances", json={})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def task(self, world: World, instance_id: str, element_id: str) -> dict[str, Any]:
        """The open task of the element in the employee's own inbox (their own tasks are assigned to them)."""
        def find() -> dict[str, Any] | None:
            items = self.client.get("/tasks", params={"limit": 200}).json()["items"]
            return next((t for t in items if t["instanceId"] == instance_id and t["elementId"] == element_id), None)
        return dict(world.wait_for(find, f"task {element_id} for {self.name}"))

    def complete(self, world: World, instance_id: str, element_id: str, data: dict[str, Any]) -> None:
        """Claim and complete the task in the employee's own inbox (a concurrent worker step → reload and retry)."""
        task = self.task(world, instance_id, element_id)
        assert task["assignee"] == self.name and task["candidateGroups"] == []  # theirs alone, no group's
        assert self.client.post(f"/tasks/{task['id']}/claim").status_code == 200
        for _attempt in range(20):
            response = self.client.post(f"/tasks/{task['id']}/complete", json={"data": data})
            if response.status_code != 409 or "concurrently" not in response.text:
                break
            time.sleep(0.05)
        assert response.status_code == 200, response.text


def add_employee_user(world: World) -> None:
    """The employee's account: a clerk of the staff group with an e-mail address."""
    with world.api.engine.db.transaction() as conn:
        world.api.identity.add_user(conn, USERNAME, "kim-password", ["clerk"], ["staff"], display_name=DISPLAY_NAME,
                                    email=EMAIL)


def logged_in_employee(world: World) -> Employee:
    """The employee logged in like a browser: session cookie, CSRF token echoed on every change."""
    add_employee_user(world)
    client = world.api.client()
    login = client.post("/auth/login", json={"username": USERNAME, "password": "kim-password"})
    assert login.status_code == 200, login.text
    client.headers["X-CSRF-Token"] = login.json()["csrfToken"]
    return Employee(USERNAME, client)


def key_employee(world: World) -> Employee:
    """An integration starting the request with the staff API key: the employee is ``key:test-staff``."""
    return Employee(STAFF_KEY, world.api.client("staff"))


def mail_to_employee(world: World, subject: str) -> str:
    """The plain-text body of the mail with ``subject`` to the employee, once it has arrived."""
    def find() -> str | None:
        return next((m.get_body(("plain",)).get_content() for _f, to, m in world.inbox.received  # type: ignore[union-attr]
                     if to == [EMAIL] and m["Subject"] == subject), None)
    return str(world.wait_for(find, f"mail '{subject}'"))


def mails_with_subject(world: World, subject: str) -> list[list[str]]:
    """The recipients of every mail with ``subject`` received so far."""
    return [to for _sender, to, mail in world.inbox.received if mail["Subject"] == subject]
