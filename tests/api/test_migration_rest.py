"""Migration over REST through a real Uvicorn: plan, validate, execute with roles and per-instance reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors import default_registry
from connectors.registry import ConnectorContext, Registry
from engine.database import Database
from tests.engine.test_migration import V1, V2
from tests.support.live_app import Api, live_app


def _registry(_database: Database) -> Registry:
    registry = default_registry()

    def lookup(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        return {"found": True}

    registry.register("flaky", lookup)
    return registry


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with live_app(db_url, registry=_registry) as running:
        yield running


def _deploy(api: Api, text: str) -> None:
    response = api.client("designer").post("/deployments", files=[("files", ("modify_flow.bpmn", text.encode()))])
    assert response.status_code == 201, response.text


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def test_plan_validate_and_execute_with_reports(api: Api) -> None:
    _deploy(api, V1)
    manager = api.client("manager")
    start = "/process-definitions/modify-flow/instances"
    ok = manager.post(start, json={"variables": {"failures": 0, "frist": "P5D"}, "businessKey": "A-1"}).json()["id"]
    missing = manager.post(start, json={"variables": {"failures": 0}, "businessKey": "A-2"}).json()["id"]
    _deploy(api, V2)
    request = {"source": {"key": "modify-flow", "version": 1}, "target": {"key": "modify-flow", "version": 2}}
    _problem(api.client("sales").post("/migration/plan", json=request), 403)
    plan = manager.post("/migration/plan", json=request).json()
    assert plan["mappings"]["capture"] == "capture" and "review" not in plan["mappings"]
    assert plan["unmapped"][0]["elementId"] == "review"
    bad = _problem(manager.post("/migration/plan", json={**request, "mappings": {"review": "gibtsnicht"}}), 422)
    assert bad["errors"][0]["elementId"] == "gibtsnicht"
    plan = manager.post("/migration/plan", json={**request, "mappings": {"review": "check"}}).json()
    body = {"plan": plan, "filter": {}}
    _problem(api.client("backoffice").post("/migration/validate", json=body), 403)
    report = manager.post("/migration/validate", json=body).json()
    assert (report["total"], report["ok"], report["refused"]) == (2, 1, 1)
    refused = next(r for r in report["items"] if not r["ok"])
    assert refused["instanceId"] == missing and "frist" in refused["reasons"][0]
    _problem(manager.post("/migration/validate", json={"plan": plan}), 422)
    _problem(manager.post("/migration/validate", json={"plan": plan, "instanceIds": ["nope"]}), 404)
    done = api.client("admin").post("/migration/execute", json={"plan": plan, "instanceIds": [ok, missing],
                                                               "reason": "Frist aus den Daten"}).json()
    assert [(r["instanceId"], r["ok"]) for r in done["items"]] == [(ok, True), (missing, False)]
    assert manager.get(f"/process-instances/{ok}").json()["processVersion"] == 2
    assert manager.get(f"/process-instances/{missing}").json()["processVersion"] == 1
    history = manager.get(f"/process-instances/{ok}/history").json()
    [migrated] = [e for e in history if e["type"] == "instance.migrated"]
    assert migrated["userId"] == "key:test-admin" and migrated["data"]["toVersion"] == 2
