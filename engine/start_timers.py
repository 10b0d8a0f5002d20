"""Timer start events: deploying a process with one schedules a job that starts instances when due.

A new version replaces the schedule of the previous one (like Camunda). Cycles (``R3/…/P1M``) reschedule
themselves until their repetitions are used up.
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
from .repository import LoadedDefinition
from .sandbox import RestrictedScriptEngine
from .schema import job

START_TIMER = "timer-start"


def timer_start_events(definition: LoadedDefinition) -> list[Any]:
    return [ts for ts in definition.parsed.spec.task_specs.values()
            if type(ts).__name__ == "StartEvent"
            and isinstance(getattr(ts, "event_definition", None), TimerEventDefinition)]


class StartTimers:
    def __init__(self, script_engine: RestrictedScriptEngine) -> None:
        self.script_engine = script_engine

    def first_due(self, event_definition: Any, now: datetime) -> tuple[datetime, dict[str, Any]]:
        expression = str(self.script_engine.environment.evaluate(event_definition.expression, {}))
        if isinstance(event_definition, CycleTimerEventDefinition):
            cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(expression)
            return start, {"cycles": cycles, "seconds": duration.total_seconds()}
        if isinstance(event_definition, DurationTimerEventDefinition):
            parsed = TimerEventDefinition.parse_iso_duration(expression)
            return now + TimerEventDefinition.get_timedelta_from_start(parsed, now), {"cycles": 1}
        return TimerEventDefinition.get_datetime(expression), {"cycles": 1}

    def schedule(self, conn: Connection, definition: LoadedDefinition) -> None:
        key = definition.info.key
        conn.execute(job.delete().where(job.c.kind == START_TIMER).where(job.c.process_key == key)
                     .where(job.c.state == "pending"))
        now = utcnow()
        for start_event in timer_start_events(definition):
            due, payload = self.first_due(start_event.event_definition, now)
            conn.execute(job.insert().values(
                id=str(uuid.uuid4()), kind=START_TIMER, state="pending", instance_id=None, task_id=None,
                process_key=key, element_id=start_event.bpmn_id, due_at=due.astimezone(UTC),
                payload=json.dumps(payload), attempts=0, max_attempts=1, lock_owner=None, lock_expires_at=None,
                last_error=None, last_traceback=None, idempotency_key=None, created_at=now, finished_at=None))

    def reschedule(self, conn: Connection, row: Any, now: datetime) -> None:
        payload = json.loads(row.payload or "{}")
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
