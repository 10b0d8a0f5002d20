"""Need-to-know (api/access.py): who sees an instance's variables, history, list entry and page, over roles ×
endpoints × instance kinds — an ordinary ticket and a sick note, both started the real way by the employee's own
login session, worked on by the people of their lanes through REST. A hidden instance answers 404 like an unknown
one; a role the caller lacks stays 403."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import shipped_registry
from tests.support.bpmn_builder import Bpmn, properties
from tests.support.live_app import Api, live_app
from tests.support.sessions import login, wait_for

ROOT = Path(__file__).parents[2]

# name → (roles, groups); the employee and her colleague are both in sales and in staff (every clerk is).
PEOPLE = {
    "emma": (["clerk"], ["sales", "staff"]),  # requester: starts the ticket and reports sick
    "carl": (["clerk"], ["sales", "staff"]),  # colleague
    "bert": (["clerk"], ["billing"]),  # clerk of another group
    "sven": (["clerk"], ["servicedesk"]),  # approver of the ticket: completes its first task
    "hanna": (["clerk"], ["hr"]),  # hr: acknowledges the sick note
    "max": (["manager"], ["sales"]),  # manager of the requester's group
    "mona": (["manager"], ["servicedesk"]),  # manager of the group that holds the ticket's tasks
    "otto": (["manager"], ["billing"]),  # manager of another group
    "dora": (["designer"], []),
    "adam": (["admin"], []),
}
KEYS = {"erp": ["integration"], "ops": ["integration", "admin"]}

# who → (sees the ticket, sees the sick note)
EXPECTED = {
    "emma": (True, True), "carl": (False, False), "bert": (False, False), "sven": (True, False),
    "hanna": (False, True), "max": (True, False), "mona": (True, False), "otto": (False, False),
    "dora": (False, False), "adam": (True, False), "key:erp": (False, False), "key:ops": (True, False),
}


def ticket_bpmn() -> bytes:
    """An ordinary process: the service desk works on it, then checks it."""
    bpmn = Bpmn("ticket", "Ticket")
    bpmn.node("start", "startEvent")
    bpmn.node("work", "userTask", "Bearbeiten", body=properties(candidateGroups="servicedesk"))
    bpmn.node("check", "userTask", "Prüfen", body=properties(candidateGroups="servicedesk"))
    bpmn.node("end", "endEvent")
    bpmn.chain("start", "work", "check", "end")
    return bpmn.xml()


@dataclass
class Matrix:
    api: Api
    clients: dict[str, httpx.Client]
    ticket: str
    sick_note: str
    erp_ticket: str
    report_task: str
    acknowledge_task: str


def _session(api: Api, name: str) -> httpx.Client:
    client = api.client()
    response = client.post("/auth/login", json={"username": name, "password": f"{name}-password"})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrfToken"]
    return client


def _finish_task(client: httpx.Client, instance_id: str, element_id: str, data: dict[str, Any]) -> str:
    def find() -> dict[str, Any] | None:
        items = client.get("/tasks", params={"limit": 200}).json()["items"]
        return next((t for t in items if t["instanceId"] == instance_id and t["elementId"] == element_id), None)
    task = wait_for(find, f"task {element_id}")
    assert client.post(f"/tasks/{task['id']}/claim").status_code == 200
    response = client.post(f"/tasks/{task['id']}/complete", json={"data": data})
    assert response.status_code == 200, response.text
    return str(task["id"])


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    from tests.support.databases import SqliteFactory

    url = SqliteFactory(tmp_path_factory.mktemp("access")).create()
    with live_app(url, shipped_registry) as api:
        with api.engine.db.transaction() as conn:
            for name, (roles, groups) in PEOPLE.items():
                api.identity.add_user(conn, name, f"{name}-password", roles, groups)
            for name, roles in KEYS.items():
                api.keys[name] = api.identity.create_key(conn, name, roles, [], "tests").secret
        files = [("files", ("ticket.bpmn", ticket_bpmn(), "application/xml")),
                 ("files", ("sick-note.bpmn", (ROOT / "processes/sick-note.bpmn").read_bytes(), "application/xml"))]
        files += [("files", (p.name, p.read_bytes(), "application/json"))
                  for p in sorted((ROOT / "forms").glob("sick-note-*.json"))]
        deployed = api.client("designer").post("/deployments", files=files)
        assert deployed.status_code in (200, 201), deployed.text
        clients = {name: _session(api, name) for name in PEOPLE}
        clients["key:erp"], clients["key:ops"] = api.client("erp"), api.client("ops")

        emma = clients["emma"]
        ticket = emma.post("/process-definitions/ticket/instances", json={"variables": {"topic": "VPN"}}).json()["id"]
        _finish_task(clients["sven"], ticket, "work", {})
        erp_ticket = clients["key:erp"].post("/process-definitions/ticket/instances", json={}).json()["id"]

        sick_note = emma.post("/process-definitions/sick-note/instances", json={}).json()["id"]
        report = _finish_task(emma, sick_note, "report", {"first_day": "2027-03-08", "last_day": "2027-03-09"})
        acknowledge = _finish_task(clients["hanna"], sick_note, "acknowledge", {"note": "gute Besserung"})
        yield Matrix(api, clients, ticket, sick_note, erp_ticket, report, acknowledge)


def test_sick_note_is_confidential_from_its_definition(matrix: Matrix) -> None:
    with matrix.api.engine.db.read() as conn:
        from engine.participants import participants
        assert participants(conn, matrix.sick_note).confidential is True
        facts = participants(conn, matrix.ticket)
    assert facts.confidential is False and facts.initiator == "emma" and facts.users == {"sven"}
    assert facts.groups == {"servicedesk"}


@pytest.mark.parametrize("who", list(EXPECTED))
def test_instance_history_and_list_follow_need_to_know(matrix: Matrix, who: str) -> None:
    client = matrix.clients[who]
    listed = {i["id"] for i in client.get("/process-instances", params={"limit": 1000}).json()["items"]}
    for instance_id, visible in zip((matrix.ticket, matrix.sick_note), EXPECTED[who], strict=True):
        got = client.get(f"/process-instances/{instance_id}")
        history = client.get(f"/process-instances/{instance_id}/history")
        if visible:
            assert got.status_code == 200 and got.json()["id"] == instance_id
            assert history.status_code == 200 and history.json()[0]["type"] == "instance.started"
            assert instance_id in listed
        else:
            for response in (got, history):
                assert response.status_code == 404, (who, instance_id, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert "does not exist" in response.json()["detail"]  # the same words as for an unknown id
            assert instance_id not in listed
    assert (matrix.erp_ticket in listed) == (who in ("key:erp", "key:ops", "adam", "sven", "mona"))


@pytest.mark.parametrize("who", ["max", "mona", "otto", "adam", "key:erp", "key:ops", "emma", "carl", "hanna"])
def test_variables_patch_and_cancel_need_the_role_and_the_instance(matrix: Matrix, who: str) -> None:
    client = matrix.clients[who]
    has_role = who in ("max", "mona", "otto", "adam", "key:erp", "key:ops")
    sees_ticket, _sees_note = EXPECTED[who]
    patched = client.patch(f"/process-instances/{matrix.ticket}/variables", json={"variables": {"seen_by": who}})
    assert patched.status_code == (403 if not has_role else 200 if sees_ticket else 404), patched.text
    if patched.status_code == 200:
        assert patched.json()["variables"]["seen_by"] == who
    # the sick note has ended: only someone who may see it learns that (409); for everyone else it does not exist
    note = client.patch(f"/process-instances/{matrix.sick_note}/variables", json={"variables": {"x": 1}})
    assert note.status_code == (403 if not has_role else 404), note.text
    cancel = client.delete(f"/process-instances/{matrix.sick_note}")
    assert cancel.status_code == (403 if not has_role else 404), cancel.text


def test_task_data_of_a_confidential_instance_is_not_every_managers_or_colleagues(matrix: Matrix) -> None:
    # the report task was offered to staff (every clerk): once done, a colleague no longer reads it
    assert matrix.clients["carl"].get(f"/tasks/{matrix.report_task}").status_code == 403
    assert matrix.clients["max"].get(f"/tasks/{matrix.acknowledge_task}").status_code == 403
    assert matrix.clients["key:ops"].get(f"/tasks/{matrix.acknowledge_task}").status_code == 403
    own = matrix.clients["emma"].get(f"/tasks/{matrix.report_task}")
    assert own.status_code == 200 and own.json()["data"]["employee"] == "emma"
    assert matrix.clients["hanna"].get(f"/tasks/{matrix.acknowledge_task}").status_code == 200
    # an ordinary instance's open task stays every manager's to work on
    [check] = [t for t in matrix.clients["otto"].get("/tasks", params={"limit": 200}).json()["items"]
               if t["instanceId"] == matrix.ticket]
    assert matrix.clients["otto"].get(f"/tasks/{check['id']}").status_code == 200


@pytest.mark.parametrize("who", [name for name in PEOPLE])
def test_instance_pages_follow_need_to_know(matrix: Matrix, who: str) -> None:
    client, _token = login(matrix.api.base_url, who, f"{who}-password")
    try:
        listing = client.get("/instances", params={"state": ""})
        assert listing.status_code == 200
        for instance_id, visible in zip((matrix.ticket, matrix.sick_note), EXPECTED[who], strict=True):
            page = client.get(f"/instances/{instance_id}")
            assert page.status_code == (200 if visible else 404), (who, instance_id)
            assert ("VPN" in page.text or "2027-03-08" in page.text) == visible
            assert (f'href="/instances/{instance_id}"' in listing.text) == visible
    finally:
        client.close()
