"""Models as other tools write them (tests/engine/foreign_models/): each deploys over REST and runs to its
expected end, or is refused with a 4xx problem naming element and line — never a 5xx.

The corpus test shares one live app and database for speed, so every process id in the corpus is unique.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.runtime import Engine
from tests.engine.conftest import Calls, make_engine
from tests.support.databases import SqliteFactory
from tests.support.live_app import Api, live_app
from tests.support.sessions import login

CORPUS = Path(__file__).parent / "foreign_models"


def _model(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@pytest.fixture(scope="module")
def app(sqlite_factory: SqliteFactory) -> Iterator[Api]:
    with live_app(sqlite_factory.create()) as running:
        yield running


def _deploy(api: Api, name: str, content: bytes | None = None) -> httpx.Response:
    """Deploys a corpus file together with its decisions (the .dmn file of the same name), as a modeller would."""
    files = [("files", (name, content or _model(name)))]
    decisions = CORPUS / name.replace(".bpmn", ".dmn")
    if content is None and decisions.exists():
        files.append(("files", (decisions.name, decisions.read_bytes())))
    return api.client("designer").post("/deployments", files=files)


def _open_tasks(api: Api, instance: dict[str, object]) -> list[dict[str, object]]:
    response = api.client("manager").get("/tasks", params={"processKey": instance["processKey"], "limit": 1000})
    assert response.status_code == 200, response.text
    return [task for task in response.json()["items"] if task["instanceId"] == instance["id"]]


# -- plain and manual tasks ------------------------------------------------------------------------------
def test_plain_and_manual_tasks_complete_like_user_tasks_without_a_form(db_url: str, calls: Calls) -> None:
    engine: Engine = make_engine(db_url, calls)
    try:
        engine.deploy([("plain.bpmn", _model("bpmnio_plain_tasks.bpmn"))])
        instance = engine.start("bpmnio_plain_tasks")
        [plain] = engine.list_tasks(instance_id=instance.id)
        assert (plain.element_id, plain.form_key) == ("Activity_check", None)
        after_plain = engine.complete_task(plain.id, {"line_ok": True}, user="anna")
        assert after_plain.active_elements == ["Activity_visit"] and after_plain.variables == {"line_ok": True}
        [manual] = engine.list_tasks(instance_id=instance.id)
        done = engine.complete_task(manual.id, {}, user="anna")
        assert done.state == "completed" and done.variables == {"line_ok": True}
        completed = [h.element_id for h in engine.history(instance.id) if h.type == "task.completed"]
        assert completed == ["Activity_check", "Activity_visit"]
    finally:
        engine.db.dispose()


def test_plain_tasks_complete_over_rest_and_on_the_task_page(app: Api) -> None:
    assert _deploy(app, "bpmnio_plain_tasks.bpmn").status_code == 201
    manager = app.client("manager")
    started = manager.post("/process-definitions/bpmnio_plain_tasks/instances", json={})
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    [task] = _open_tasks(app, started.json())
    completed = manager.post(f"/tasks/{task['id']}/complete", json={"data": {"note": "Dämpfung ok"}})
    assert completed.status_code == 200, completed.text
    assert completed.json()["activeElements"] == ["Activity_visit"]

    [manual] = _open_tasks(app, started.json())
    with app.engine.db.transaction() as conn:
        app.identity.add_user(conn, "mia", "mia-password-1", ["manager"], ["management"])
    browser, csrf = login(app.base_url, "mia", "mia-password-1")
    try:
        page = browser.get(f"/tasks/{manual['id']}")
        assert page.status_code == 200 and "Erledigt" in page.text and "kein Formular" in page.text
        done = browser.post(f"/tasks/{manual['id']}", data={"csrf_token": csrf})
        assert done.status_code == 303, done.text
    finally:
        browser.close()
    assert manager.get(f"/process-instances/{instance_id}").json()["state"] == "completed"


# -- the corpus ------------------------------------------------------------------------------------------
# file → what must happen: ("completes", process id) runs to its end completing every open task (timers are
# fired at a later virtual time through the engine, as no test waits an hour); ("not startable", process id)
# deploys and refuses a start with 409; ("refused", element id, words) is a 422 naming element and line.
EXPECTED: dict[str, tuple[str, ...]] = {
    "aris_utf16.bpmn": ("completes", "aris_utf16"),
    "bpmnio_plain.bpmn": ("not startable", "Process_plain"),
    "bpmnio_plain_tasks.bpmn": ("completes", "bpmnio_plain_tasks"),
    "camunda7_bad_timer.bpmn": ("refused", "Event_wait", "'P1X' is not an ISO 8601 duration"),
    "camunda7_decision.bpmn": ("completes", "camunda7_decision"),  # with camunda7_decision.dmn (decisionRef)
    "camunda7_modeler.bpmn": ("refused", "Activity_pay", "operator"),
    "camunda7_timers.bpmn": ("completes", "camunda7_timers"),
    "data_store_and_objects.bpmn": ("completes", "data_store_and_objects"),
    "di_vendor_extensions.bpmn": ("completes", "di_vendor_extensions"),
    "implicit_gateways.bpmn": ("completes", "implicit_gateways"),
    "link_events.bpmn": ("completes", "link_events"),
    "link_file_level.bpmn": ("refused", "jump", "no catch event"),
    "signavio_export.bpmn": ("not startable", "sid-proc"),
    "signavio_latin1.bpmn": ("completes", "signavio_latin1"),
    "trisotech_collaboration.bpmn": ("refused", "cg", "complex gateways"),
    "utf8_bom.bpmn": ("completes", "utf8_bom"),
    "zeebe_camunda8.bpmn": ("refused", "Task_reserve", "operator"),
    "zeebe_timer_date.bpmn": ("completes", "zeebe_timer_date"),
}
LATER = datetime(2027, 6, 1, tzinfo=UTC)


def test_every_corpus_file_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.bpmn")) == sorted(EXPECTED)


def _run_to_end(api: Api, instance: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    manager = api.client("manager")
    worked: list[str] = []
    for _ in range(20):
        current = manager.get(f"/process-instances/{instance['id']}").json()
        if current["state"] != "running":
            return current, worked
        tasks = _open_tasks(api, current)
        if not tasks:
            api.engine.run_jobs(now=LATER)  # the timers it waits for; the embedded worker runs the rest
            continue
        for task in tasks:
            response = manager.post(f"/tasks/{task['id']}/complete", json={"data": {}})
            assert response.status_code == 200, response.text
            worked.append(str(task["elementId"]))
    raise AssertionError(f"{instance['processKey']} did not end: {current}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_foreign_model_deploys_and_runs_or_is_refused_clearly(app: Api, name: str) -> None:
    expected = EXPECTED[name]
    response = _deploy(app, name)
    assert response.status_code < 500, response.text
    if expected[0] == "refused":
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        blamed = [e for e in errors if e["elementId"] == expected[1]]
        assert blamed and all(e["line"] and e["file"] == name for e in blamed), errors
        assert any(expected[2] in e["message"] for e in blamed), errors
        assert not re.search(r"<Element|0x[0-9a-f]{6}", response.text)
        return
    assert response.status_code == 201, response.text
    [definition] = response.json()["definitions"]
    assert definition["key"] == expected[1]
    manager = app.client("manager")
    started = manager.post(f"/process-definitions/{expected[1]}/instances", json={})
    if expected[0] == "not startable":
        assert started.status_code == 409, started.text
        assert "not executable" in started.json()["detail"]
        assert any(w["elementId"] == expected[1] for w in response.json()["warnings"])
        assert app.client("designer").get(f"/process-definitions/{expected[1]}/xml").status_code == 200
        return
    assert started.status_code == 201, started.text
    ended, worked = _run_to_end(app, started.json())
    assert ended["state"] == "completed", ended
    if name == "implicit_gateways.bpmn":  # a split to both branches, each arrival at the join runs it once
        assert sorted(worked) == sorted(["Activity_accept", "Activity_modem", "Activity_line",
                                         "Activity_notify", "Activity_notify"])


def test_encodings_are_stored_as_utf8_with_their_names(app: Api) -> None:
    for name, key, title in (("signavio_latin1.bpmn", "signavio_latin1", "Störungsannahme Büro Süd"),
                             ("aris_utf16.bpmn", "aris_utf16", "Kündigung bearbeiten")):
        response = _deploy(app, name)
        assert response.status_code == 201, response.text
        designer = app.client("designer")
        assert designer.get(f"/process-definitions/{key}").json()["name"] == title
        xml = designer.get(f"/process-definitions/{key}/xml")
        assert xml.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        assert title.encode("utf-8") in xml.content
    # the same model in another encoding is the same version: the checksum is of the stored UTF-8 text
    latin1 = _model("signavio_latin1.bpmn")
    as_utf8 = latin1.decode("latin-1").replace('encoding="ISO-8859-1"', 'encoding="UTF-8"').encode("utf-8")
    again = _deploy(app, "signavio_latin1.bpmn", as_utf8)
    assert again.status_code == 201 and again.json()["definitions"][0]["created"] is False


def test_data_stores_deploy_with_a_warning_naming_element_and_line(app: Api) -> None:
    response = _deploy(app, "data_store_and_objects.bpmn")
    assert response.status_code == 201, response.text
    warned = {w["elementId"]: w for w in response.json()["warnings"]}
    assert warned["DataStoreReference_crm"]["line"] == 5 and "kept for the diagram" in \
        warned["DataStoreReference_crm"]["message"]


# -- script results ---------------------------------------------------------------------------------------
def _script_process(script: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
            f'20100524/MODEL" id="d" targetNamespace="x"><bpmn:process id="results" isExecutable="true">'
            f'<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="compute"/>'
            f'<bpmn:scriptTask id="compute"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'
            f'<bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="ask"/><bpmn:userTask id="ask"/>'
            f'<bpmn:sequenceFlow id="f3" sourceRef="ask" targetRef="e"/><bpmn:endEvent id="e"/>'
            f'</bpmn:process></bpmn:definitions>').encode()


def test_script_results_become_plain_json_or_a_clear_process_error(db_url: str, calls: Calls) -> None:
    from engine.errors import ProcessError

    engine: Engine = make_engine(db_url, calls)
    try:
        engine.deploy([("results.bpmn", _script_process(
            "tags = {'b', 'a'}\nwhen = datetime(2026, 5, 1, 12, 30)\nday = date(2026, 5, 1)\n"
            "amount = Decimal('12.50')"))])
        started = engine.start("results")
        assert started.variables == {"tags": ["a", "b"], "when": "2026-05-01T12:30:00", "day": "2026-05-01",
                                     "amount": "12.50"}
        for script, variable in (("raw = b'abc'", "raw"), ("ratio = float('nan')", "ratio"),
                                 ("nested = {'a': [b'x']}", "nested")):
            engine.deploy([("results.bpmn", _script_process(script))])
            with pytest.raises(ProcessError) as raised:
                engine.start("results")
            assert raised.value.element_id == "compute" and f"variable '{variable}'" in str(raised.value)
    finally:
        engine.db.dispose()
