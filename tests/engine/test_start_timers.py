"""Timer start events schedule instances at deploy; cycles repeat; a new version replaces the schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from engine.database import as_utc, utcnow
from engine.errors import DeploymentError
from engine.runtime import Engine
from engine.schema import job, process_instance
from tests.engine.conftest import BPMN_DIR, Calls, bpmn
from tests.support.bpmn_builder import Bpmn, service, timer


def _instances(engine: Engine) -> list[tuple[str, str]]:
    return _instances_of(engine, "sched-cycle")


def _instances_of(engine: Engine, key: str) -> list[tuple[str, str]]:
    with engine.db.read() as conn:
        return [(r.state, r.variables) for r in conn.execute(
            sa.select(process_instance.c.state, process_instance.c.variables)
            .where(process_instance.c.process_key == key))]


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


def _scheduled(engine: Engine, key: str) -> list[datetime]:
    with engine.db.read() as conn:
        return [as_utc(r.due_at) or utcnow() for r in conn.execute(
            sa.select(job.c.due_at).where(job.c.kind == "timer-start").where(job.c.process_key == key)
            .where(job.c.state == "pending"))]


def _count_started(engine: Engine, key: str) -> int:
    with engine.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(process_instance)
                                .where(process_instance.c.process_key == key)).scalar_one())


def _recording_schedule(engine: Engine, key: str, cycle: str) -> None:
    process = Bpmn(key).node("tick", "startEvent", "Takt", timer("timeCycle", f'"{cycle}"')) \
        .node("run", "serviceTask", "Lauf", service("record", "out", key=f'"{key}"')).node("end", "endEvent") \
        .chain("tick", "run", "end")
    engine.deploy([(f"{key}.bpmn", process.xml())])


def test_an_overdue_cycle_starts_one_instance_with_one_token_then_waits_for_the_next(engine: Engine,
                                                                                       calls: Calls) -> None:
    _recording_schedule(engine, "daily", "R/2026-01-01T07:00:00+01:00/P1D")
    assert _scheduled(engine, "daily") == [datetime(2026, 1, 1, 6, tzinfo=UTC)]
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)  # 68 occurrences overdue: one run, no burst
    assert engine.fire_due_timers(now) == 1
    assert _count_started(engine, "daily") == 1 and len(calls.calls) == 1
    assert _scheduled(engine, "daily") == [datetime(2026, 3, 11, 6, tzinfo=UTC)]
    assert engine.fire_due_timers(now + timedelta(hours=1)) == 0
    assert engine.fire_due_timers(datetime(2026, 3, 11, 6, tzinfo=UTC)) == 1
    assert _count_started(engine, "daily") == 2 and len(calls.calls) == 2
    assert all(state == "completed" for state, _v in _instances_of(engine, "daily"))


def test_a_cycle_without_start_runs_once_per_firing(engine: Engine, calls: Calls) -> None:
    _recording_schedule(engine, "every-day", "R/P1D")
    [due] = _scheduled(engine, "every-day")
    assert engine.fire_due_timers(due) == 1 and len(calls.calls) == 1
    assert _scheduled(engine, "every-day") == [due + timedelta(days=1)]


def test_missed_occurrences_count_against_the_repetitions(engine: Engine, calls: Calls) -> None:
    _recording_schedule(engine, "thrice", "R3/2026-01-01T07:00:00+01:00/P1D")
    assert engine.fire_due_timers(datetime(2026, 1, 2, 12, tzinfo=UTC)) == 1  # occurrences 0 and 1 are due
    assert _scheduled(engine, "thrice") == [datetime(2026, 1, 3, 6, tzinfo=UTC)]
    assert engine.fire_due_timers(datetime(2026, 1, 3, 6, tzinfo=UTC)) == 1  # the third and last
    assert _scheduled(engine, "thrice") == [] and len(calls.calls) == 2


def test_a_monthly_cycle_fires_on_the_first_of_every_month_at_its_local_time(engine: Engine) -> None:
    _recording_schedule(engine, "monthly", "R/2026-01-01T06:00:00+01:00/P1M")
    fired_at = []
    for _month in range(26):  # two years and a bit: 28-, 29-, 30- and 31-day months
        [due] = _scheduled(engine, "monthly")
        fired_at.append(due)
        assert engine.fire_due_timers(due) == 1
    local = [d.astimezone(timezone(timedelta(hours=1))) for d in fired_at]
    assert all((d.day, d.hour, d.minute) == (1, 6, 0) for d in local)
    assert [(d.year, d.month) for d in local][:3] == [(2026, 1), (2026, 2), (2026, 3)]
    assert (local[-1].year, local[-1].month) == (2028, 2)
    assert _count_started(engine, "monthly") == 26


def test_a_cycle_from_the_end_of_a_month_keeps_its_day_where_the_month_has_it(engine: Engine) -> None:
    _recording_schedule(engine, "month-end", "R/2027-01-31T18:00:00+01:00/P1M")
    dues = []
    for _month in range(4):
        [due] = _scheduled(engine, "month-end")
        dues.append(due.astimezone(timezone(timedelta(hours=1))).date())
        engine.fire_due_timers(due)
    assert dues == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]


def test_a_zero_repetition_cycle_schedules_nothing(engine: Engine) -> None:
    _recording_schedule(engine, "never", "R0/2027-01-01T06:00:00+01:00/P1D")
    assert _scheduled(engine, "never") == []


def test_with_two_timer_start_events_each_firing_starts_one_instance_that_waits_for_nothing(
        engine: Engine, calls: Calls) -> None:
    process = Bpmn("two-clocks") \
        .node("daily", "startEvent", "Täglich", timer("timeCycle", '"R/2026-01-01T07:00:00+01:00/P1D"')) \
        .node("monthly", "startEvent", "Monatlich", timer("timeCycle", '"R/2026-01-01T08:00:00+01:00/P1M"')) \
        .node("run", "serviceTask", "Lauf", service("record", "out", n="1")).node("end", "endEvent") \
        .chain("daily", "run", "end").flow("monthly", "run")
    engine.deploy([("two-clocks.bpmn", process.xml())])
    assert engine.fire_due_timers(datetime(2026, 3, 10, 12, tzinfo=UTC)) == 2
    assert len(calls.calls) == 2
    assert [state for state, _v in _instances_of(engine, "two-clocks")] == ["completed", "completed"]
    assert sorted(_scheduled(engine, "two-clocks")) == [datetime(2026, 3, 11, 6, tzinfo=UTC),
                                                        datetime(2026, 4, 1, 7, tzinfo=UTC)]
    assert engine.jobs(kind="timer") == []


def test_a_cycle_that_cannot_repeat_is_refused_at_deploy_naming_the_start_event(engine: Engine) -> None:
    with pytest.raises(DeploymentError) as refused:
        _recording_schedule(engine, "stuck", "R/2027-01-01T06:00:00+01:00/PT0S")
    [problem] = refused.value.problems
    assert problem.element_id == "tick" and "longer than zero" in problem.message
    _recording_schedule(engine, "stuck", "R/2027-01-01T06:00:00+01:00/P1D")
    assert _scheduled(engine, "stuck") == [datetime(2027, 1, 1, 5, tzinfo=UTC)]
    with engine.db.read() as conn:
        assert [d.version for d in engine.repository.list(conn) if d.key == "stuck"] == [1]
