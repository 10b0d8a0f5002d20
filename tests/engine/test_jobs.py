"""Asynchronous service tasks: jobs, workers, retries with back-off, incidents, lock expiry, business errors."""

from __future__ import annotations

import time as time_module
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from api.services import ConnectorGateway
from connectors import default_registry
from connectors.registry import ConnectorContext
from engine.database import Database, utcnow
from engine.errors import DeploymentError, InvalidState, NotFound
from engine.jobs import JobExecutor, backoff
from engine.runtime import Engine
from tests.engine.conftest import bpmn

FAR = timedelta(days=3650)


class Flaky:
    """Fails ``failures`` times per idempotency key, then succeeds; counts every call."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.broken = False

    def __call__(self, params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        self.calls[context.idempotency_key] += 1
        if self.broken or self.calls[context.idempotency_key] <= int(params["failures"]):
            raise ConnectionError("supplier API unreachable")
        return {"attempt": self.calls[context.idempotency_key]}


@pytest.fixture
def flaky() -> Flaky:
    return Flaky()


def _engine(url: str, flaky: Flaky) -> Engine:
    registry = default_registry()
    registry.register("flaky", flaky)

    def check_domain(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        from connectors.registry import BusinessError

        if params["domain"].startswith("taken"):
            raise BusinessError("DomainUnavailable", f"{params['domain']} is taken")
        return {"available": True}

    registry.register("check_domain", check_domain)
    return Engine(Database(url), ConnectorGateway(registry))


@pytest.fixture
def engine(db_url: str, flaky: Flaky) -> Iterator[Engine]:
    eng = _engine(db_url, flaky)
    eng.deploy(bpmn("jobs_flaky.bpmn", "jobs_domain.bpmn", "reference.bpmn"))
    yield eng
    eng.db.dispose()


def test_service_task_waits_as_a_job_until_a_worker_runs_it(engine: Engine) -> None:
    instance = engine.start("reference", {"amount": 70})
    assert instance.state == "running" and instance.active_elements == ["lookup"]
    [job] = engine.jobs(instance_id=instance.id, kind="service")
    assert job.state == "pending" and job.max_attempts == 4
    assert engine.list_tasks(instance_id=instance.id) == []
    assert engine.run_jobs() == 1
    assert engine.get_job(job.id).state == "done"
    [task] = engine.list_tasks(instance_id=instance.id)
    assert task.element_id == "approve"
    assert engine.get_instance(instance.id).variables["lookup_result"] == {}


def test_failing_three_times_then_succeeding_completes(engine: Engine, flaky: Flaky) -> None:
    instance = engine.start("jobs-flaky", {"failures": 3})
    for attempt in range(1, 4):
        assert engine.run_jobs(now=utcnow() + FAR) == 1
        [job] = engine.jobs(instance_id=instance.id)
        assert (job.state, job.attempts) == ("pending", attempt)
        assert "ConnectionError: supplier API unreachable" in (job.last_error or "")
        assert job.due_at > utcnow()  # backed off, not due at once
    assert engine.run_jobs(now=utcnow() + FAR) == 1
    done = engine.get_instance(instance.id)
    assert done.state == "completed" and done.variables["result"] == {"attempt": 4}
    assert list(flaky.calls.values()) == [4] and len(flaky.calls) == 1  # one key, retried under it


def test_always_failing_becomes_an_incident_and_retry_after_the_fix_completes(engine: Engine, flaky: Flaky) -> None:
    flaky.broken = True
    instance = engine.start("jobs-flaky", {"failures": 0})
    for _ in range(4):
        engine.run_jobs(now=utcnow() + FAR)
    [incident] = engine.jobs(state="failed")
    assert incident.instance_id == instance.id and incident.attempts == 4
    assert "supplier API unreachable" in (incident.last_error or "")
    assert "Traceback" in (incident.last_traceback or "") and "ConnectionError" in (incident.last_traceback or "")
    assert engine.run_jobs(now=utcnow() + FAR) == 0  # a failed job waits for a person
    assert "incident.raised" in [h.type for h in engine.history(instance.id)]
    flaky.broken = False
    pending = engine.jobs(instance_id=engine.start("jobs-flaky", {"failures": 0}).id)[0]
    with pytest.raises(InvalidState, match="only failed jobs"):
        engine.retry_job(pending.id)
    retried = engine.retry_job(incident.id)
    assert (retried.state, retried.attempts) == ("pending", 0)
    assert engine.run_jobs() >= 1
    assert engine.get_instance(instance.id).state == "completed"


def test_business_error_takes_the_boundary_path_without_retry(engine: Engine) -> None:
    taken = engine.start("jobs-domain", {"domain": "taken.example"})
    free = engine.start("jobs-domain", {"domain": "silverflow.example"})
    engine.run_jobs()
    [ask] = engine.list_tasks(instance_id=taken.id)
    assert ask.element_id == "ask_customer"
    [job] = engine.jobs(instance_id=taken.id)
    assert (job.state, job.attempts) == ("done", 0)
    assert engine.get_instance(free.id).state == "completed"
    assert ("element.error", "run") in [(h.type, h.element_id) for h in engine.history(taken.id)]


def test_an_expired_lock_lets_another_worker_take_the_job(engine: Engine, flaky: Flaky) -> None:
    instance = engine.start("jobs-flaky", {"failures": 0})
    dead = JobExecutor(engine, "dead-worker", lock_seconds=5)
    [claimed] = dead.claim()
    assert JobExecutor(engine, "other").claim() == []  # locked
    later = utcnow() + timedelta(seconds=6)
    survivor = JobExecutor(engine, "survivor")
    assert survivor.run_due(now=later) == 1
    assert engine.get_instance(instance.id).state == "completed"
    dead.run(claimed)  # the "dead" worker wakes up late: its completion must not apply twice
    assert sum(flaky.calls.values()) == 2 and engine.jobs(instance_id=instance.id)[0].state == "done"
    history = [h.type for h in engine.history(instance.id)]
    assert history.count("instance.completed") == 1


def test_cancelling_an_instance_cancels_its_jobs(engine: Engine) -> None:
    instance = engine.start("jobs-flaky", {"failures": 0})
    engine.cancel(instance.id, "no longer needed")
    assert [j.state for j in engine.jobs(instance_id=instance.id)] == ["cancelled"]
    assert engine.run_jobs() == 0


def test_unknown_operator_and_parameters_are_refused_at_deploy(engine: Engine) -> None:
    xml = (bpmn("jobs_flaky.bpmn")[0][1]).replace(b'id="flaky"', b'id="no.such.operator"')
    with pytest.raises(DeploymentError) as raised:
        engine.deploy([("bad.bpmn", xml)])
    [problem] = raised.value.problems
    assert problem.element_id == "run" and "unknown operator 'no.such.operator'" in problem.message
    assert problem.line is not None
    xml = (bpmn("jobs_flaky.bpmn")[0][1]).replace(b'id="flaky"', b'id="sleep"')
    with pytest.raises(DeploymentError, match="missing parameter.*seconds.*unknown parameter.*failures"):
        engine.deploy([("bad.bpmn", xml)])


def test_backoff_grows_exponentially_with_jitter() -> None:
    first = [backoff(1) for _ in range(50)]
    fourth = [backoff(4) for _ in range(50)]
    assert all(1 <= d <= 2 for d in first) and all(8 <= d <= 16 for d in fourth)
    assert len(set(first)) > 1
    assert backoff(40) <= 3600


def test_a_buffered_message_reaches_an_instance_that_waits_later(engine: Engine) -> None:
    engine.deploy(bpmn("jobs_buffered_message.bpmn"))
    early = engine.start("buffered-payment", {"invoice": "R-1"}, business_key="R-1")
    other = engine.start("buffered-payment", {"invoice": "R-2"}, business_key="R-2")
    with pytest.raises(NotFound, match="payment_received"):
        engine.correlate_message("payment_received", {"paid": 10})
    assert engine.correlate_message("payment_received", {"paid": 99}, business_key="R-1",
                                    buffer_seconds=60) == []
    [task] = engine.list_tasks(instance_id=other.id)
    assert engine.complete_task(task.id, {}).state == "running"  # R-2 does not match the buffered message
    [task] = engine.list_tasks(instance_id=early.id)
    done = engine.complete_task(task.id, {})
    assert done.state == "completed" and done.variables["paid"] == 99
    received = [h.data for h in engine.history(early.id) if h.type == "message.received"]
    assert received == [{"name": "payment_received", "variables": {"paid": 99}, "buffered": True}]


def test_an_expired_buffered_message_is_not_delivered(engine: Engine) -> None:
    engine.deploy(bpmn("jobs_buffered_message.bpmn"))
    instance = engine.start("buffered-payment", {"invoice": "R-3"})
    engine.correlate_message("payment_received", {"paid": 1}, buffer_seconds=0.01)
    time_module.sleep(0.05)
    [task] = engine.list_tasks(instance_id=instance.id)
    assert engine.complete_task(task.id, {}).active_elements == ["run"]


def test_retries_come_from_the_service_task_extension(engine: Engine, flaky: Flaky) -> None:
    retry = b'<spiffworkflow:retry retries="1" backoff_base="5"/>'
    xml = bpmn("jobs_flaky.bpmn")[0][1].replace(
        b"</spiffworkflow:parameters>", b"</spiffworkflow:parameters>" + retry
    ).replace(b'id="jobs-flaky"', b'id="jobs-flaky-once"')
    engine.deploy([("once.bpmn", xml)])
    flaky.broken = True
    instance = engine.start("jobs-flaky-once", {"failures": 0})
    [job] = engine.jobs(instance_id=instance.id)
    assert job.max_attempts == 2
    engine.run_jobs(now=utcnow() + FAR)
    engine.run_jobs(now=utcnow() + FAR)
    assert engine.jobs(instance_id=instance.id)[0].state == "failed"


def test_a_conflict_at_completion_retries_the_completion_not_the_connector(engine: Engine, flaky: Flaky,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.errors import Conflict

    instance = engine.start("jobs-flaky", {"failures": 0})
    original = engine.store.save
    conflicts = {"left": 2}

    def save_losing_twice(conn: Any, inst: Any, *args: Any, **kwargs: Any) -> None:
        if inst.id == instance.id and conflicts["left"]:
            conflicts["left"] -= 1
            raise Conflict("someone else saved first")
        original(conn, inst, *args, **kwargs)

    monkeypatch.setattr(engine.store, "save", save_losing_twice)
    assert engine.run_jobs() == 1
    assert conflicts["left"] == 0 and sum(flaky.calls.values()) == 1  # the connector ran once
    assert engine.get_instance(instance.id).state == "completed"
    assert engine.jobs(instance_id=instance.id)[0].state == "done"
