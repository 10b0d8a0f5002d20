"""REST API v1 through a real Uvicorn: every resource, success and error paths, problem+json, security."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Api
from tests.engine.conftest import bpmn
from tests.support import sample_process

ROOT = Path(__file__).parents[2]
REFERENCE = (ROOT / "bench" / "bpmn" / "reference.bpmn").read_bytes()
VACATION = sample_process.BPMN
BUFFERED = (ROOT / "tests" / "engine" / "bpmn" / "jobs_buffered_message.bpmn").read_bytes()
FORMS = sample_process.FORMS
APPROVAL = b'{"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}'
REQUEST = {"first_day": "2026-12-21", "last_day": "2026-12-23", "days": 3, "deputy": "Frau Schmidt"}


def _is_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    return body  # type: ignore[no-any-return]


def _deploy(api: Api) -> None:
    files = [("files", ("vacation-request.bpmn", VACATION)), ("files", ("reference.bpmn", REFERENCE)),
             ("files", ("jobs_buffered_message.bpmn", BUFFERED)), ("files", ("approval.json", APPROVAL))]
    files += [("files", f) for f in FORMS]
    response = api.client("designer").post("/deployments", files=files)
    assert response.status_code == 201, response.text


def _wait(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_every_endpoint_requires_authentication(api: Api) -> None:
    anonymous = api.client()
    for method, path in [("GET", "/process-definitions"), ("POST", "/deployments"), ("GET", "/tasks"),
                         ("GET", "/process-instances"), ("POST", "/messages"), ("GET", "/jobs"),
                         ("GET", "/health"), ("GET", "/metrics"), ("POST", "/process-definitions/x/instances"),
                         ("POST", "/tasks/x/complete"), ("POST", "/signals")]:
        body = _is_problem(anonymous.request(method, path), 401)
        assert body["title"] == "Unauthorized", path
    _is_problem(api.client().get("/tasks", headers={"Authorization": "Bearer sfk_wrong"}), 401)
    _is_problem(api.client().get("/tasks", headers={"Authorization": "Basic abc"}), 401)


def test_deploy_needs_the_designer_role_and_reports_versions(api: Api) -> None:
    files = [("files", ("reference.bpmn", REFERENCE))]
    _is_problem(api.client("sales").post("/deployments", files=files), 403)
    first = api.client("designer").post("/deployments", files=files).json()
    assert first["definitions"][0]["key"] == "reference" and first["definitions"][0]["created"] is True
    assert first["definitions"][0]["deployedBy"] == "key:test-designer"
    again = api.client("designer").post("/deployments", files=files).json()
    assert again["definitions"][0]["created"] is False and again["definitions"][0]["version"] == 1
    listed = api.client("sales").get("/process-definitions").json()
    assert [d["key"] for d in listed] == ["reference"]
    assert api.client("sales").get("/process-definitions/reference/versions/1").json()["version"] == 1
    xml = api.client("sales").get("/process-definitions/reference/xml")
    assert xml.headers["content-type"].startswith("application/xml") and b"<bpmn:process" in xml.content
    _is_problem(api.client("sales").get("/process-definitions/nope"), 404)


def test_invalid_bpmn_is_a_422_naming_element_and_line(api: Api) -> None:
    broken = REFERENCE.replace(b"total = amount * 2", b"import os")
    body = _is_problem(api.client("designer").post("/deployments", files=[("files", ("ref.bpmn", broken))]), 422)
    [error] = body["errors"]  # type: ignore[misc]
    assert error["elementId"] == "compute" and error["line"] and "import" in error["message"]
    _is_problem(api.client("designer").post("/deployments", files=[("files", ("notes.txt", b"hi"))]), 422)


def test_start_query_and_read_instances(api: Api) -> None:
    _deploy(api)
    client = api.client("integration")
    response = client.post("/process-definitions/reference/instances",
                           json={"businessKey": "ORDER-1", "variables": {"amount": 70, "customer": "ACME"}})
    assert response.status_code == 201, response.text
    instance = response.json()
    assert instance["processKey"] == "reference" and instance["businessKey"] == "ORDER-1"
    assert instance["startedAt"].endswith("+00:00") or instance["startedAt"].endswith("Z")
    _wait(lambda: client.get(f"/process-instances/{instance['id']}").json()["activeElements"] == ["approve"])
    client.post("/process-definitions/reference/instances", json={"businessKey": "ORDER-2", "variables": {"amount": 1}})
    page = client.get("/process-instances", params={"key": "reference", "limit": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["limit"] == 1
    by_var = client.get("/process-instances", params={"variable": ["customer=ACME"]}).json()
    assert [i["businessKey"] for i in by_var["items"]] == ["ORDER-1"]
    by_number = client.get("/process-instances", params={"variable": "amount=70"}).json()
    assert by_number["total"] == 1
    assert client.get("/process-instances", params={"businessKey": "ORDER-2"}).json()["total"] == 1
    _is_problem(client.get("/process-instances", params={"sort": "colour"}), 400)
    _is_problem(client.get("/process-instances", params={"variable": "nonsense"}), 400)
    _is_problem(client.get("/process-instances", params={"limit": 0}), 422)
    history = client.get(f"/process-instances/{instance['id']}/history").json()
    assert history[0]["type"] == "instance.started" and history[0]["at"]
    _is_problem(client.get("/process-instances/missing/history"), 404)
    _is_problem(client.post("/process-definitions/unknown/instances", json={}), 404)
    _is_problem(client.post("/process-definitions/reference/instances", json={"variables": "x"}), 422)


def test_patch_variables_and_cancel(api: Api) -> None:
    _deploy(api)
    client = api.client("manager")
    instance = client.post("/process-definitions/vacation-request/instances", json={"variables": {"a": 1}}).json()
    patched = client.patch(f"/process-instances/{instance['id']}/variables",
                           json={"variables": {"b": 2}, "remove": ["a"]}).json()
    assert patched["variables"] == {"b": 2}
    _is_problem(api.client("sales").delete(f"/process-instances/{instance['id']}"), 403)
    cancelled = client.delete(f"/process-instances/{instance['id']}", params={"reason": "duplicate"}).json()
    assert cancelled["state"] == "cancelled"
    _is_problem(client.delete(f"/process-instances/{instance['id']}"), 409)


def test_task_inbox_claim_complete_and_group_rules(api: Api) -> None:
    _deploy(api)
    sales, backoffice, manager = api.client("sales"), api.client("backoffice"), api.client("manager")
    instance = sales.post("/process-definitions/vacation-request/instances",
                          json={"businessKey": "EMP-1"}).json()
    # the first task is in the "staff" lane: sales (group sales) does not see it, the manager does
    assert sales.get("/tasks").json()["total"] == 0
    [task] = manager.get("/tasks", params={"businessKey": "EMP-1"}).json()["items"]
    assert task["candidateGroups"] == ["staff"] and task["formKey"] == "vacation-request"
    _is_problem(sales.get(f"/tasks/{task['id']}"), 403)
    _is_problem(sales.post(f"/tasks/{task['id']}/complete", json={"data": REQUEST}), 403)
    detail = manager.get(f"/tasks/{task['id']}").json()
    assert detail["formSchema"]["required"] == ["first_day", "last_day", "days", "deputy"]
    body = _is_problem(manager.post(f"/tasks/{task['id']}/complete", json={"data": {"days": 0}}), 422)
    assert {"days", "first_day"} <= {e["field"] for e in body["errors"]}  # type: ignore[union-attr]
    manager.post(f"/tasks/{task['id']}/assign", json={"assignee": "key:test-sales"})
    # assigned to the sales key now: it may see and complete it although the lane is not its group
    assert sales.get("/tasks").json()["total"] == 1
    _is_problem(backoffice.post(f"/tasks/{task['id']}/claim"), 403)
    done = sales.post(f"/tasks/{task['id']}/complete", json={"data": REQUEST})
    assert done.status_code == 200, done.text
    again = _is_problem(sales.post(f"/tasks/{task['id']}/complete", json={"data": REQUEST}), 409)
    assert "already completed by key:test-sales" in str(again["detail"])
    [approve] = manager.get("/tasks", params={"candidateGroup": "management"}).json()["items"]
    assert manager.post(f"/tasks/{approve['id']}/claim").json()["assignee"] == "key:test-manager"
    assert manager.post(f"/tasks/{approve['id']}/unclaim").json()["assignee"] is None
    result = manager.post(f"/tasks/{approve['id']}/complete", json={"data": {"approved": True}}).json()
    assert result["state"] == "completed" and result["variables"]["status"] == "genehmigt"
    _is_problem(manager.get("/tasks", params={"sort": "nope"}), 400)
    _is_problem(manager.get("/tasks/unknown"), 404)
    assert instance["id"] == result["id"]


def test_claim_conflicts(api: Api) -> None:
    _deploy(api)
    manager = api.client("manager")
    manager.post("/process-definitions/vacation-request/instances", json={})
    [task] = manager.get("/tasks").json()["items"]
    manager.post(f"/tasks/{task['id']}/assign", json={"assignee": "someone"})
    _is_problem(manager.post(f"/tasks/{task['id']}/claim"), 409)


def test_messages_signals_and_idempotency(api: Api) -> None:
    _deploy(api)
    client = api.client("integration")
    _is_problem(client.post("/messages", json={"name": "payment_received"}), 404)
    buffered = client.post("/messages", json={"name": "payment_received", "businessKey": "R-9",
                                              "variables": {"paid": 5}, "buffer": True, "ttlSeconds": 60}).json()
    assert buffered == {"deliveredTo": [], "started": [], "buffered": True}
    instance = client.post("/process-definitions/buffered-payment/instances", json={"businessKey": "R-1"}).json()
    [task] = client.get("/tasks", params={"businessKey": "R-1"}).json()["items"]
    client.post(f"/tasks/{task['id']}/complete", json={"data": {}})
    headers = {"Idempotency-Key": "pay-R-1"}
    first = client.post("/messages", headers=headers,
                        json={"name": "payment_received", "businessKey": "R-1", "variables": {"paid": 10}})
    assert first.json() == {"deliveredTo": [instance["id"]], "started": [], "buffered": False}
    replay = client.post("/messages", headers=headers,
                         json={"name": "payment_received", "businessKey": "R-1", "variables": {"paid": 10}})
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/process-instances/{instance['id']}").json()["variables"]["paid"] == 10
    assert client.post("/signals", json={"name": "nobody-listens"}).json() == {"deliveredTo": []}
    _is_problem(client.post("/messages", json={"name": ""}), 422)


def test_idempotent_instance_start(api: Api) -> None:
    _deploy(api)
    client = api.client("integration")
    headers = {"Idempotency-Key": "start-once"}
    first = client.post("/process-definitions/vacation-request/instances", headers=headers, json={})
    second = client.post("/process-definitions/vacation-request/instances", headers=headers, json={})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert client.get("/process-instances").json()["total"] == 1
    _is_problem(client.post("/process-definitions/reference/instances", headers=headers, json={}), 422)


def test_jobs_incidents_health_and_metrics(api: Api) -> None:
    _deploy(api)
    client = api.client("manager")
    instance = client.post("/process-definitions/reference/instances", json={"variables": {"amount": 3}}).json()
    _wait(lambda: client.get(f"/process-instances/{instance['id']}").json()["activeElements"] == ["approve"])
    jobs = client.get("/jobs", params={"instanceId": instance["id"]}).json()
    assert [(j["kind"], j["state"]) for j in jobs] == [("service", "done")]
    assert client.get(f"/jobs/{jobs[0]['id']}").json()["attempts"] == 0
    _is_problem(client.post(f"/jobs/{jobs[0]['id']}/retry"), 409)
    _is_problem(client.get("/jobs/missing"), 404)
    _is_problem(api.client("sales").get("/jobs"), 403)
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["processDefinitions"] == 3
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "silverflow_instances_started_total 1" in metrics.text
    assert 'silverflow_job_latency_seconds_bucket{le="+Inf"} 1' in metrics.text
    assert "silverflow_tasks_open 1" in metrics.text


def test_browser_session_login_csrf_and_rate_limit(api: Api) -> None:
    browser = api.client()
    _is_problem(browser.post("/auth/login", json={"username": "clara", "password": "wrong-password"}), 401)
    me = browser.post("/auth/login", json={"username": "clara", "password": "clara-password"})
    assert me.status_code == 200 and "httponly" in me.headers["set-cookie"].lower()
    csrf = me.json()["csrfToken"]
    assert browser.get("/auth/me").json()["groups"] == ["sales"]
    _deploy(api)
    _is_problem(browser.post("/process-definitions/vacation-request/instances", json={}), 403)  # no CSRF header
    ok = browser.post("/process-definitions/vacation-request/instances", json={}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert browser.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    _is_problem(browser.get("/auth/me"), 401)
    attacker = api.client()
    for _ in range(5):
        _is_problem(attacker.post("/auth/login", json={"username": "clara", "password": "guess-guess"}), 401)
    _is_problem(attacker.post("/auth/login", json={"username": "clara", "password": "clara-password"}), 429)


@pytest.mark.parametrize("path", ["/nope", "/process-instances/x/unknown"])
def test_unknown_paths_are_problems_too(api: Api, path: str) -> None:
    _is_problem(api.client("admin").get(path), 404)


def test_openapi_document(api: Api) -> None:
    spec = httpx.get(api.base_url + "/api/v1/openapi.json").json()
    assert "/api/v1/tasks/{task_id}/complete" in spec["paths"]
    assert spec["components"]["schemas"]["TaskOut"]["properties"]["candidateGroups"]


def test_supplier_shipment_notice_continues_the_waiting_instance(api: Api) -> None:
    from tests.support.bpmn_builder import Bpmn, message

    waiting = Bpmn("modem").message("m_ship", "shipment_received").node("start", "startEvent") \
        .node("ship", "intermediateCatchEvent", "Lieferung", message("m_ship")).node("install", "userTask") \
        .node("end", "endEvent").chain("start", "ship", "install", "end")
    api.engine.deploy([("modem.bpmn", waiting.xml())])
    instance = api.engine.start("modem", business_key="ORD-77")
    client = api.client("integration")
    notice = {"orderId": "S-1", "reference": "ORD-77", "trackingNumber": "1Z999", "serialNumber": "SN-42"}
    answer = client.post("/integrations/supplier/shipments", json=notice).json()
    assert answer["deliveredTo"] == [instance.id]
    shipment = api.engine.get_instance(instance.id).variables["shipment"]
    assert shipment["serial_number"] == "SN-42" and shipment["tracking_number"] == "1Z999"  # data for scripts
    early = client.post("/integrations/supplier/shipments", json={**notice, "reference": "ORD-78"}).json()
    assert early["buffered"] is True
    _is_problem(api.client("sales").post("/integrations/supplier/shipments", json=notice), 403)
    _is_problem(client.post("/integrations/supplier/shipments", json={"orderId": "x"}), 422)


def test_a_failed_jobs_traceback_is_for_admins_only(api: Api) -> None:
    api.client("designer").post("/deployments", files=[("files", bpmn("jobs_http.bpmn")[0])])
    admin = api.client("admin")
    instance = admin.post("/process-definitions/jobs-http/instances",
                          json={"variables": {"url": "http://127.0.0.1:9/refused", "n": 1}}).json()

    def failed_once() -> bool:
        jobs = admin.get("/jobs", params={"instanceId": instance["id"]}).json()
        return bool(jobs) and jobs[0]["attempts"] >= 1

    _wait(failed_once)
    job_id = admin.get("/jobs", params={"instanceId": instance["id"]}).json()[0]["id"]
    assert "Traceback" in admin.get(f"/jobs/{job_id}").json()["lastTraceback"]
    for who in ("designer", "manager", "integration"):
        seen = api.client(who).get(f"/jobs/{job_id}").json()
        assert seen["lastTraceback"] is None and seen["lastError"], who
