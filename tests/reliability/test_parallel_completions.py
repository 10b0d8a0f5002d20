"""Parallel branches completed at the same moment: every clerk's completion succeeds, no conflict storm.

50 branches of a parallel multi-instance user task are completed by 50 threads over REST against a real
Uvicorn. Writers of one instance queue on its row (PostgreSQL) or on the write lock (SQLite), so a 409 only
means a real conflict; the retryable and the final 409 carry different problem types.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.bpmn_builder import Bpmn, multi_instance
from tests.support.live_app import Api

pytestmark = pytest.mark.reliability
BRANCHES = 50


def test_50_branches_completed_at_once_all_succeed(api: Api) -> None:
    model = Bpmn("mi-50").node("start", "startEvent") \
        .node("check", "userTask", "Prüfen", multi_instance("items", "item", False, "results", "outcome")) \
        .node("end", "endEvent").chain("start", "check", "end")
    designer = api.client("designer")
    assert designer.post("/deployments", files=[("files", ("mi.bpmn", model.xml()))]).status_code == 201
    admin = api.client("admin")
    instance = admin.post("/process-definitions/mi-50/instances",
                          json={"variables": {"items": list(range(BRANCHES))}}).json()
    tasks = admin.get("/tasks", params={"processKey": "mi-50", "limit": 100}).json()["items"]
    assert len(tasks) == BRANCHES

    def complete(task: dict[str, object]) -> httpx.Response:
        with httpx.Client(base_url=api.base_url + "/api/v1", timeout=60,
                          headers={"Authorization": f"Bearer {api.keys['admin']}"}) as client:
            return client.post(f"/tasks/{task['id']}/complete", json={"data": {"outcome": f"ok-{task['id']}"}})

    with ThreadPoolExecutor(max_workers=BRANCHES) as pool:
        answers = list(pool.map(complete, tasks))
    assert [a.status_code for a in answers if a.status_code >= 300] == [], \
        [a.json() for a in answers if a.status_code >= 300][:3]
    done = admin.get(f"/process-instances/{instance['id']}").json()
    assert done["state"] == "completed" and len(done["variables"]["results"]) == BRANCHES
    again = admin.post(f"/tasks/{tasks[0]['id']}/complete", json={"data": {"outcome": "late"}})
    assert again.status_code == 409 and again.json()["type"].endswith("/invalid-state"), again.text
