"""Models as other tools write them (tests/engine/foreign_models/): each deploys over REST and runs to its
expected end, or is refused with a 4xx problem naming element and line — never a 5xx.

The corpus test shares one live app and database for speed, so every process id in the corpus is unique.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
    return api.client("designer").post("/deployments", files=[("files", (name, content or _model(name)))])


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
