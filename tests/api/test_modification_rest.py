"""POST /process-instances/{id}/modification through a real Uvicorn: roles, validation naming the element,
conflicts, history (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import default_registry
from connectors.registry import ConnectorContext, Registry
from engine.database import Database
from tests.support.live_app import Api, live_app

FLOW = (Path(__file__).parents[1] / "engine" / "bpmn" / "modify_flow.bpmn").read_bytes()


def _registry(_database: Database) -> Registry:
    registry = default_registry()

    def unreachable(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        if params.get("failures") == "kaputt":
            raise ConnectionError("supplier API unreachable")
        return {"modem": "FB-7590"}

    registry.register("flaky", unreachable)
    return registry


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with live_app(db_url, registry=_registry) as running:
        response = running.client("designer").post("/deployments", files=[("files", ("m.bpmn", FLOW))])
        assert response.status_code == 201, response.text
        yield running


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def _start(api: Api, failures: Any = "kaputt") -> str:
    response = api.client("manager").post("/process-definitions/modify-flow/instances",
                                          json={"variables": {"failures": failures}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_manager_moves_a_token_and_the_task_reaches_the_other_lane(api: Api) -> None:
    instance_id = _start(api)
    manager, backoffice = api.client("manager"), api.client("backoffice")
    assert backoffice.get("/tasks").json()["items"] == []
    body = {"reason": "Daten telefonisch erhalten",
            "instructions": [{"type": "moveToken", "elementId": "capture", "targetElementId": "review"}]}
    _problem(api.client("sales").post(f"/process-instances/{instance_id}/modification", json=body), 403)
    _problem(api.client("integration").post(f"/process-instances/{instance_id}/modification", json=body), 403)
    response = manager.post(f"/process-instances/{instance_id}/modification", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["activeElements"] == ["review"]
    [task] = backoffice.get("/tasks").json()["items"]
    assert task["elementId"] == "review"
    history = manager.get(f"/process-instances/{instance_id}/history").json()
    events = history["items"] if isinstance(history, dict) else history
    [modified] = [e for e in events if e["type"] == "instance.modified"]
    assert modified["userId"] == "key:test-manager" and modified["data"]["reason"] == "Daten telefonisch erhalten"
    # the token is gone from capture now: a second move is a conflict, not a silent no-op
    _problem(manager.post(f"/process-instances/{instance_id}/modification", json=body), 409)


def test_invalid_instructions_are_422_naming_the_element(api: Api) -> None:
    instance_id = _start(api)
    admin = api.client("admin")
    url = f"/process-instances/{instance_id}/modification"
    bad = _problem(admin.post(url, json={"reason": "x", "instructions": [
        {"type": "cancel", "elementId": "capture"},
        {"type": "startBeforeActivity", "elementId": "nirgendwo"}]}), 422)
    assert bad["errors"] == [{"field": "instructions.1.elementId", "elementId": "nirgendwo",
                              "message": "element 'nirgendwo' does not exist in the process definition"}]
    boundary = _problem(admin.post(url, json={"reason": "x", "instructions": [
        {"type": "moveToken", "elementId": "capture", "targetElementId": "deadline"}]}), 422)
    assert boundary["errors"][0]["field"] == "instructions.0.targetElementId"
    no_reason = _problem(admin.post(url, json={"instructions": [{"type": "cancel", "elementId": "capture"}]}), 422)
    assert no_reason["errors"][0]["field"] == "reason"
    _problem(admin.post(url, json={"reason": "x", "instructions": []}), 422)
    _problem(admin.post(url, json={"reason": "x", "instructions": [{"type": "jump", "elementId": "capture"}]}), 422)
    _problem(admin.post("/process-instances/unknown/modification",
                        json={"reason": "x", "instructions": [{"type": "cancel", "elementId": "capture"}]}), 404)
    assert [t["elementId"] for t in admin.get("/tasks").json()["items"]] == ["capture"]  # nothing applied


def test_skip_a_service_task_that_cannot_reach_its_supplier(api: Api) -> None:
    instance_id = _start(api)
    admin = api.client("admin")
    [task] = admin.get("/tasks").json()["items"]
    assert admin.post(f"/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    body = {"reason": "Lieferant bestätigt am Telefon",
            "instructions": [{"type": "skipTask", "elementId": "lookup", "result": {"modem": "FB-7590"}}]}
    deadline = time.monotonic() + 10
    while True:  # the embedded worker may be in the middle of an attempt (409): try again as a person would
        response = admin.post(f"/process-instances/{instance_id}/modification", json=body)
        if response.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200, response.text
    assert response.json()["variables"]["lookup_result"] == {"modem": "FB-7590"}
    assert response.json()["activeElements"] == ["review"]
    [job] = admin.get("/jobs", params={"instanceId": instance_id, "kind": "service"}).json()
    assert job["state"] == "skipped"


def test_fix_the_variable_and_retry_with_fresh_parameters(api: Api) -> None:
    instance_id = _start(api)
    manager = api.client("manager")
    [task] = manager.get("/tasks").json()["items"]
    assert manager.post(f"/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    deadline = time.monotonic() + 10
    while True:  # the embedded worker's first attempt fails on the bad value
        [job] = manager.get("/jobs", params={"instanceId": instance_id, "kind": "service"}).json()
        if job["attempts"] >= 1 and job["state"] == "pending" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert job["attempts"] >= 1, job
    url = f"/jobs/{job['id']}/retry-with-variables"
    body = {"variables": {"failures": 0}, "reason": "Tippfehler im Webformular"}
    _problem(api.client("sales").post(url, json=body), 403)
    while True:
        response = manager.post(url, json=body)
        if response.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    assert response.json()["params"] == {"failures": 0} and response.json()["previousParams"] == {"failures": "kaputt"}
    while not manager.get("/tasks").json()["items"] and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    [review] = manager.get("/tasks").json()["items"]
    assert review["elementId"] == "review"
    assert manager.get(f"/process-instances/{instance_id}").json()["variables"]["lookup_result"] == {"modem": "FB-7590"}
    _problem(manager.post("/jobs/unknown/retry-with-variables", json=body), 404)
