"""Stopping between two steps and continuing from the database gives the same result as running through."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from engine.database import utcnow
from engine.runtime import Engine
from tests.engine.conftest import Calls, make_engine
from tests.support.bpmn_builder import Bpmn, message, script, service, timer

ROOT = Path(__file__).parents[2]


def multi_step() -> Bpmn:
    return Bpmn("restartable").message("m_paid", "paid").node("start", "startEvent") \
        .node("enter", "userTask", "Erfassen").node("price", "scriptTask", body=script("total = qty * 12")) \
        .node("book", "serviceTask", body=service("record", "booking", total="total")) \
        .node("wait", "intermediateCatchEvent", "Einen Tag warten", timer("timeDuration", '"P1D"')) \
        .node("pay", "intermediateCatchEvent", "Bezahlt", message("m_paid")) \
        .node("close", "userTask", "Abschließen").node("end", "endEvent") \
        .chain("start", "enter", "price", "book", "wait", "pay", "close", "end")


def _steps(instance_id: Callable[[], str]) -> list[Callable[[Engine], None]]:
    def complete(element: str, data: dict[str, object]) -> Callable[[Engine], None]:
        def step(engine: Engine) -> None:
            [task] = [t for t in engine.list_tasks(instance_id=instance_id()) if t.element_id == element]
            engine.complete_task(task.id, data)
        return step

    return [
        complete("enter", {"qty": 3}),
        lambda engine: [engine.fire_due_timers(utcnow() + timedelta(days=2)), None][1],
        lambda engine: [engine.correlate_message("paid", {"amount": 36}, business_key="R-1"), None][1],
        complete("close", {"note": "fertig"}),
    ]


def _outcome(engine: Engine, instance_id: str) -> tuple[str, dict[str, object], list[tuple[str, str | None]]]:
    instance = engine.get_instance(instance_id)
    history = [(h.type, h.element_id) for h in engine.history(instance_id)]
    return instance.state, instance.variables, history


def test_restarting_between_every_step_changes_nothing(db_url: str, sqlite_factory: object) -> None:
    outcomes = []
    for restart in (False, True):
        url = db_url if restart else sqlite_factory.create()  # type: ignore[attr-defined]
        calls = Calls()
        engine = make_engine(url, calls)
        engine.deploy([("restartable.bpmn", multi_step().xml())])
        instance_id = engine.start("restartable", business_key="R-1").id
        for step in _steps(lambda value=instance_id: value):  # type: ignore[misc]
            if restart:
                engine.db.dispose()
                engine = make_engine(url, calls)  # a new process: empty caches, everything from the database
            step(engine)
        outcomes.append(_outcome(engine, instance_id))
        engine.db.dispose()
    assert outcomes[0] == outcomes[1]
    state, variables, _history = outcomes[1]
    assert state == "completed" and variables["total"] == 36 and variables["amount"] == 36


KILLED_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from tests.engine.conftest import Calls, make_engine
from tests.engine.test_restart import multi_step
engine = make_engine({url!r}, Calls())
engine.deploy([("restartable.bpmn", multi_step().xml())])
instance = engine.start("restartable", business_key="R-1")
[task] = engine.list_tasks(instance_id=instance.id)
engine.complete_task(task.id, {{"qty": 3}})
print(instance.id, flush=True)
time.sleep(600)
"""


def test_a_killed_process_is_continued_by_another(sqlite_url: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT.format(root=str(ROOT), url=sqlite_url)],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout is not None
    instance_id = child.stdout.readline().strip()
    child.send_signal(signal.SIGKILL)
    child.wait()
    engine = make_engine(sqlite_url, Calls())
    assert engine.get_instance(instance_id).active_elements == ["wait"]
    for step in _steps(lambda: instance_id)[1:]:
        step(engine)
    state, variables, history = _outcome(engine, instance_id)
    assert state == "completed" and variables["total"] == 36 and variables["note"] == "fertig"
    assert [t for t, _e in history].count("instance.completed") == 1
    engine.db.dispose()
