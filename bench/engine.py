"""Engine benchmark: persisted Silverflow vs bare SpiffWorkflow, measured in one run.

Prints, for the reference process (start → script → service task (no-op connector) → exclusive gateway →
user task → end):
- the baseline: bare SpiffWorkflow in memory, with and without a JSON serialize + deserialize per save;
- Silverflow on SQLite and on a throw-away PostgreSQL: instances/s from start to the user task, and
  completed (start + complete the task), in process, service task synchronous; the ratio to the baseline;
- time per step of a loop at iteration 10, 1 000 and 10 000, and the saved state size there;
- the deploy time of a generated 100-element BPMN file, and that starting an instance never re-parses.

Run: ``make bench`` or ``python -m bench.engine [--instances N] [--loop N] [--no-postgres]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

import engine.repository as repository_module
from api.services import ConnectorGateway
from connectors import default_registry
from engine.database import Database
from engine.runtime import Engine
from engine.schema import process_instance
from tests.support.databases import PostgresFactory, migrate
from tests.support.pgcluster import PostgresUnavailable, postgres_cluster

BPMN_DIR = Path(__file__).parent / "bpmn"
REFERENCE = (BPMN_DIR / "reference.bpmn").read_bytes()
LOOP = (BPMN_DIR / "loop.bpmn").read_bytes()
FORM = ("approval.json", json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"}}}).encode())


# -- baseline: bare SpiffWorkflow ------------------------------------------------------------------------
class _NoopServiceEnvironment(TaskDataEnvironment):  # type: ignore[misc]
    def call_service(self, context: dict[str, Any], **kwargs: Any) -> str:
        return "{}"


def _bare_run(count: int, serialize: bool) -> float:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(REFERENCE, "reference.bpmn")
    spec = parser.get_spec("reference")
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    script_engine = PythonScriptEngine(environment=_NoopServiceEnvironment())

    def save(workflow: BpmnWorkflow) -> BpmnWorkflow:
        if not serialize:
            return workflow
        restored = serializer.deserialize_json(serializer.serialize_json(workflow))
        restored.script_engine = script_engine
        return restored

    started = time.perf_counter()
    for number in range(count):
        workflow = BpmnWorkflow(spec, {}, script_engine=script_engine)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.set_data(amount=number)
        workflow.do_engine_steps()
        workflow = save(workflow)
        task = workflow.get_tasks(state=TaskState.READY, manual=True)[0]
        task.set_data(ok=True)
        task.run()
        workflow.do_engine_steps()
        workflow = save(workflow)
        assert workflow.is_completed()
    return count / (time.perf_counter() - started)


# -- Silverflow ------------------------------------------------------------------------------------------
def _engine(url: str) -> Engine:
    engine = Engine(Database(url), ConnectorGateway(default_registry()), inline_services=True)
    engine.deploy([("reference.bpmn", REFERENCE), ("loop.bpmn", LOOP)], [FORM])
    return engine


def _persisted_rates(engine: Engine, count: int) -> tuple[float, float]:
    started = time.perf_counter()
    instances = [engine.start("reference", {"amount": n}) for n in range(count)]
    to_user_task = count / (time.perf_counter() - started)
    tasks = {t.instance_id: t.id for t in engine.list_tasks()}
    started = time.perf_counter()
    for instance in instances:
        engine.complete_task(tasks[instance.id], {"ok": True})
    completing = time.perf_counter() - started
    completed = count / (count / to_user_task + completing)
    return to_user_task, completed


def _loop_profile(engine: Engine, iterations: int, probes: list[int], window: int = 50) -> list[tuple[int, float, int]]:
    instance = engine.start("loop", {"iteration": 0, "limit": max(probes) + window + 1})
    results = []
    step = 0
    for probe in probes:
        while step < probe:
            task = engine.list_tasks(instance_id=instance.id)[0]
            engine.complete_task(task.id, {})
            step += 1
        timings = []
        for _ in range(window):
            task = engine.list_tasks(instance_id=instance.id)[0]
            t0 = time.perf_counter()
            engine.complete_task(task.id, {})
            timings.append(time.perf_counter() - t0)
            step += 1
        with engine.db.read() as conn:
            size = len(conn.execute(sa.select(process_instance.c.workflow_state)
                                    .where(process_instance.c.id == instance.id)).scalar_one())
        results.append((probe, statistics.median(timings) * 1000, size))
    return results


def _generated_bpmn(elements: int) -> bytes:
    """A straight line of ``elements`` script tasks between a start and an end event, with DI."""
    nodes = ['<bpmn:startEvent id="s"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>']
    flows, shapes = [], ['<bpmndi:BPMNShape id="s_di" bpmnElement="s"><dc:Bounds x="0" y="0" width="36" '
                         'height="36"/></bpmndi:BPMNShape>']
    for i in range(elements):
        nodes.append(f'<bpmn:scriptTask id="t{i}" name="Schritt {i}"><bpmn:incoming>f{i}</bpmn:incoming>'
                     f'<bpmn:outgoing>f{i + 1}</bpmn:outgoing><bpmn:script>x{i % 7} = {i}</bpmn:script>'
                     f'</bpmn:scriptTask>')
        flows.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{"s" if i == 0 else f"t{i - 1}"}" '
                     f'targetRef="t{i}"/>')
        shapes.append(f'<bpmndi:BPMNShape id="t{i}_di" bpmnElement="t{i}"><dc:Bounds x="{80 + 150 * i}" '
                      f'y="0" width="100" height="80"/></bpmndi:BPMNShape>')
    nodes.append(f'<bpmn:endEvent id="e"><bpmn:incoming>f{elements}</bpmn:incoming></bpmn:endEvent>')
    flows.append(f'<bpmn:sequenceFlow id="f{elements}" sourceRef="t{elements - 1}" targetRef="e"/>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
        'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'id="gen" targetNamespace="http://silverflow.example/bpmn">'
        f'<bpmn:process id="generated" isExecutable="true">{"".join(nodes)}{"".join(flows)}</bpmn:process>'
        f'<bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="p" bpmnElement="generated">{"".join(shapes)}'
        '</bpmndi:BPMNPlane></bpmndi:BPMNDiagram></bpmn:definitions>'
    ).encode()


def _deploy_and_parse_counts(url: str) -> tuple[float, int, int]:
    engine = Engine(Database(url))
    xml = _generated_bpmn(98)  # 98 script tasks + start + end = 100 elements
    started = time.perf_counter()
    engine.deploy([("generated.bpmn", xml)])
    deploy_ms = (time.perf_counter() - started) * 1000
    calls = {"count": 0}
    original_process = repository_module.parse_process

    def counting_process(*args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        return original_process(*args, **kwargs)

    repository_module.parse_process = counting_process
    try:
        for _ in range(20):
            engine.start("generated")
        warm = calls["count"]
        fresh = Engine(Database(url))  # a restarted process parses each definition once, then caches it
        for _ in range(20):
            fresh.start("generated")
        cold = calls["count"] - warm
    finally:
        repository_module.parse_process = original_process
    engine.db.dispose()
    fresh.db.dispose()
    return deploy_ms, warm, cold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--loop", type=int, default=10_000, help="highest loop iteration probed")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    print("== Baseline: bare SpiffWorkflow 3, in memory, single thread ==")
    bare = _bare_run(args.instances, serialize=False)
    bare_json = _bare_run(args.instances, serialize=True)
    print(f"bare, no serialization:           {bare:8.0f} instances/s")
    print(f"bare, JSON save+load per save:    {bare_json:8.0f} instances/s   <- baseline")

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate(url)
        engine = _engine(url)
        to_task, completed = _persisted_rates(engine, args.instances)
        print("\n== Silverflow on SQLite (in process, service task synchronous) ==")
        print(f"started to user task:             {to_task:8.0f} instances/s")
        print(f"completed (start + complete):     {completed:8.0f} instances/s   "
              f"ratio to baseline {completed / bare_json:.2f} (target >= 0.50)")
        probes = sorted({10, 1000, args.loop})
        profile = _loop_profile(engine, args.loop, probes)
        print("\n== Loop (user task → script → gateway → back), SQLite ==")
        for probe, ms, size in profile:
            print(f"iteration {probe:6d}: {ms:6.2f} ms per step, saved state {size / 1024:5.1f} KiB")
        print(f"step time at {args.loop} vs 10: {profile[-1][1] / profile[0][1]:.2f}x (target <= 1.5x); "
              f"largest state {max(p[2] for p in profile) / 1024:.1f} KiB (target < 64 KiB)")
        engine.db.dispose()
        deploy_url = f"sqlite:///{tmp}/deploy.db"
        migrate(deploy_url)
        deploy_ms, warm, cold = _deploy_and_parse_counts(deploy_url)
        print("\n== Deploy ==")
        print(f"deploy of a 100-element BPMN file: {deploy_ms:.0f} ms (target < 200 ms)")
        print(f"XML parses for 20 starts with a warm cache: {warm}; after a restart: {cold} (once, then cached)")

    if args.no_postgres:
        return
    try:
        with postgres_cluster() as server_url:
            factory = PostgresFactory(server_url)
            url = factory.create()
            engine = _engine(url)
            to_task, completed = _persisted_rates(engine, args.instances)
            print("\n== Silverflow on PostgreSQL 15 (local, fsync off) ==")
            print(f"started to user task:             {to_task:8.0f} instances/s")
            print(f"completed (start + complete):     {completed:8.0f} instances/s   "
                  f"ratio to baseline {completed / bare_json:.2f}")
            profile = _loop_profile(engine, min(args.loop, 1000), [10, min(args.loop, 1000)])
            for probe, ms, size in profile:
                print(f"loop iteration {probe:6d}: {ms:6.2f} ms per step, saved state {size / 1024:5.1f} KiB")
            engine.db.dispose()
            factory.close()
    except PostgresUnavailable as exc:
        print(f"\nPostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
