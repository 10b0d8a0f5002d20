"""Long work leaves the request: a step past its budget saves and goes on as a continuation job, and a
loop that never waits ends in an incident naming its elements instead of running forever."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.services import ConnectorGateway
from connectors import default_registry
from engine.database import Database
from engine.runtime import Engine
from engine.stepper import StepLimits
from tests.support.live_app import live_app

LOOP_BPMN = Path(__file__).parent / "bpmn" / "script_loop.bpmn"


@pytest.fixture
def bounded(db_url: str) -> Iterator[Engine]:
    engine = Engine(Database(db_url), ConnectorGateway(default_registry()),
                    step_limits=StepLimits(seconds=0.05, passes=5_000, passes_without_wait=200_000))
    engine.deploy([("loop.bpmn", LOOP_BPMN.read_bytes())])
    yield engine
    engine.db.dispose()


def _run_all_jobs(engine: Engine, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while engine.run_jobs():
        assert time.monotonic() < deadline


def test_a_10000_pass_loop_answers_at_once_and_completes_as_jobs(bounded: Engine) -> None:
    started = time.monotonic()
    instance = bounded.start("script-loop", {"iteration": 0, "limit": 10_000})
    answered = time.monotonic() - started
    assert instance.state == "running" and answered < 0.5, f"the start took {answered:.2f} s"
    assert [j.kind for j in bounded.jobs(state="pending", instance_id=instance.id)] == ["continue"]
    _run_all_jobs(bounded)
    done = bounded.get_instance(instance.id)
    assert done.state == "completed" and done.variables["iteration"] == 10_000
    continued = [h for h in bounded.history(instance.id) if h.type == "instance.continued"]
    assert len(continued) >= 2 and bounded.jobs(state="failed") == []


def test_a_loop_that_never_waits_becomes_an_incident_naming_its_elements(db_url: str) -> None:
    engine = Engine(Database(db_url), ConnectorGateway(default_registry()),
                    step_limits=StepLimits(seconds=0.05, passes=2_000, passes_without_wait=10_000))
    engine.deploy([("loop.bpmn", LOOP_BPMN.read_bytes())])
    instance = engine.start("script-loop", {"iteration": 0, "limit": 10**9})
    _run_all_jobs(engine)
    [incident] = engine.jobs(state="failed", instance_id=instance.id)
    assert incident.kind == "continue"
    assert "without reaching a wait state" in (incident.last_error or "")
    assert "count" in (incident.last_error or "") or "more" in (incident.last_error or "")
    assert engine.get_instance(instance.id).state == "running"  # kept for a person to cancel or repair
    engine.cancel(instance.id, "endless loop")
    assert engine.get_instance(instance.id).state == "cancelled"
    engine.db.dispose()


def test_without_limits_a_step_runs_to_the_wait_state(db_url: str) -> None:
    engine = Engine(Database(db_url), ConnectorGateway(default_registry()))
    engine.deploy([("loop.bpmn", LOOP_BPMN.read_bytes())])
    assert engine.start("script-loop", {"iteration": 0, "limit": 300}).state == "completed"
    engine.db.dispose()


def test_over_rest_a_10000_pass_loop_answers_in_under_100_ms_and_completes_in_the_background(db_url: str) -> None:
    with live_app(db_url, step_limits=StepLimits(seconds=0.03)) as api:
        client = api.client("admin")
        with LOOP_BPMN.open("rb") as model:
            assert api.client("designer").post("/deployments", files=[("files", ("loop.bpmn", model))]
                                               ).status_code == 201
        answers = []
        for _ in range(3):
            started = time.monotonic()
            response = client.post("/process-definitions/script-loop/instances",
                                   json={"variables": {"iteration": 0, "limit": 10_000}})
            answers.append(time.monotonic() - started)
            assert response.status_code == 201 and response.json()["state"] == "running", response.text
        instance_id = response.json()["id"]
        # bench/long_work.py prints the figure against the 100 ms; here a bound a busy machine holds
        assert statistics.median(answers) < 0.25, f"starts answered in {answers}"
        deadline = time.monotonic() + 180
        while (body := client.get(f"/process-instances/{instance_id}").json())["state"] != "completed":
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        assert body["variables"]["iteration"] == 10_000
