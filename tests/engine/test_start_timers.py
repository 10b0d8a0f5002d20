"""Timer start events schedule instances at deploy; cycles repeat; a new version replaces the schedule."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from engine.database import utcnow
from engine.runtime import Engine
from engine.schema import job, process_instance
from tests.engine.conftest import BPMN_DIR, bpmn


def _instances(engine: Engine) -> list[tuple[str, str]]:
    with engine.db.read() as conn:
        return [(r.state, r.variables) for r in conn.execute(
            sa.select(process_instance.c.state, process_instance.c.variables)
            .where(process_instance.c.process_key == "sched-cycle"))]


def test_cycle_starts_instances_until_repetitions_are_used(engine: Engine) -> None:
    engine.deploy(bpmn("sched_monthly_cycle.bpmn"))
    assert engine.fire_due_timers() == 0  # first run is an hour away
    now = utcnow()
    assert engine.fire_due_timers(now + timedelta(hours=1, minutes=1)) == 1
    assert engine.fire_due_timers(now + timedelta(hours=1, minutes=2)) == 0  # next one is an hour later
    assert engine.fire_due_timers(now + timedelta(hours=2, minutes=2)) == 1
    assert engine.fire_due_timers(now + timedelta(hours=3, minutes=2)) == 1
    assert engine.fire_due_timers(now + timedelta(days=30)) == 0  # R3: three runs, then done
    runs = _instances(engine)
    assert len(runs) == 3 and all(state == "completed" and '"billed": true' in v for state, v in runs)


def test_new_version_replaces_the_schedule(engine: Engine) -> None:
    engine.deploy(bpmn("sched_monthly_cycle.bpmn"))
    changed = (BPMN_DIR / "sched_monthly_cycle.bpmn").read_bytes().replace(b'"R3/PT1H"', b'"R/P1D"')
    engine.deploy([("sched_monthly_cycle.bpmn", changed)])
    with engine.db.read() as conn:
        pending = conn.execute(sa.select(job.c.due_at).where(job.c.kind == "timer-start")
                               .where(job.c.state == "pending")).all()
    assert len(pending) == 1
    now = utcnow()
    assert engine.fire_due_timers(now + timedelta(hours=2)) == 0
    assert engine.fire_due_timers(now + timedelta(days=1, minutes=1)) == 1
    instances = _instances(engine)
    assert len(instances) == 1
