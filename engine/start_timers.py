"""Timer start events: deploying a process with one schedules a job that starts instances when due.

A new version replaces the schedule of the previous one (like Camunda). Cycles (``R3/…/P1M``) reschedule
themselves until their repetitions are used up, on calendar occurrences (``engine.timers``). Each firing starts
exactly one instance; an overdue schedule (a start in the past, or a worker that was down) fires once and then
waits for the next occurrence after now: missed occurrences are not made up for with a burst of instances.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)
from sqlalchemy.engine import Connection

from .database import as_utc, utcnow
from .errors import DeploymentError, Problem
from .repository import LoadedDefinition
from .sandbox import RestrictedScriptEngine
from .schema import job
from .timers import Cycle, Period

START_TIMER = "timer-start"


def timer_start_events(definition: LoadedDefinition) -> list[Any]:
    return [ts for ts in definition.parsed.spec.task_specs.values()
            if type(ts).__name__ == "StartEvent"
            and isinstance(getattr(ts, "event_definition", None), TimerEventDefinition)]


class StartTimers:
    def __init__(self, script_engine: RestrictedScriptEngine) -> None:
        self.script_engine = script_engine

    def first_due(self, event_definition: Any, now: datetime) -> tuple[datetime, dict[str, Any]] | None:
        """When the schedule first fires and its job payload; None for a cycle of zero repetitions."""
        expression = str(self.script_engine.environment.evaluate(event_definition.expression, {}))
        if isinstance(event_definition, CycleTimerEventDefinition):
            cycle = Cycle.parse(expression, now)
            return None if cycle.exhausted(0) else (cycle.occurrence(0), cycle.state(0))
        if isinstance(event_definition, DurationTimerEventDefinition):
            return Period.parse(expression).after(now), {"cycles": 1}
        return TimerEventDefinition.get_datetime(expression), {"cycles": 1}

    def schedule(self, conn: Connection, definition: LoadedDefinition) -> None:
        key = definition.info.key
        conn.execute(job.delete().where(job.c.kind == START_TIMER).where(job.c.process_key == key)
                     .where(job.c.state == "pending"))
        now = utcnow()
        for start_event in timer_start_events(definition):
            try:
                first = self.first_due(start_event.event_definition, now)
            except Exception as exc:  # noqa: BLE001 - a malformed value or an expression over missing data:
                # the deploy transaction rolls back, no half-scheduled version
                raise DeploymentError([Problem(f"timer start event: {exc}", definition.info.file_name,
                                               start_event.bpmn_id)]) from exc
            if first is None:
                continue
            due, payload = first
            conn.execute(job.insert().values(
                id=str(uuid.uuid4()), kind=START_TIMER, state="pending", instance_id=None, task_id=None,
                process_key=key, element_id=start_event.bpmn_id, due_at=due.astimezone(UTC),
                payload=json.dumps(payload), attempts=0, max_attempts=1, lock_owner=None, lock_expires_at=None,
                last_error=None, last_traceback=None, idempotency_key=None, created_at=now, finished_at=None))

    def reschedule(self, conn: Connection, row: Any, now: datetime) -> None:
        """After a firing at ``now``: wait for the next occurrence after now, or finish the schedule."""
        payload = json.loads(row.payload or "{}")
        if "period" in payload:
            cycle = Cycle.from_state(payload)
            following = cycle.following(payload, now)
            if cycle.exhausted(following):
                conn.execute(job.update().where(job.c.id == row.id).values(state="done", finished_at=now))
                return
            conn.execute(job.update().where(job.c.id == row.id).values(
                state="pending", due_at=cycle.occurrence(following).astimezone(UTC),
                payload=json.dumps(cycle.state(following)), lock_owner=None, lock_expires_at=None))
            return
        # Schedules written before calendar cycles: a fixed step in seconds.
        cycles = int(payload.get("cycles", 1))
        remaining = cycles - 1 if cycles > 0 else cycles  # -1 repeats for ever
        if remaining == 0 or "seconds" not in payload:
            conn.execute(job.update().where(job.c.id == row.id).values(state="done", finished_at=now))
            return
        due = as_utc(row.due_at) or now
        step = timedelta(seconds=float(payload["seconds"]))
        if due <= now:
            due += step * ((now - due) // step + 1)
        payload["cycles"] = remaining
        conn.execute(job.update().where(job.c.id == row.id).values(
            state="pending", due_at=due, payload=json.dumps(payload), lock_owner=None, lock_expires_at=None))
