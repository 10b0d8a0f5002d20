"""Jobs: claiming due work, running connectors outside any transaction, completing, retrying, incidents.

A worker claims a batch of due jobs (timers first) in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; a
compare-and-set update on SQLite, whose writers are serialised), sets a lock expiry, runs each connector
with no transaction open, and completes the service task in a new transaction under the instance's
optimistic lock. On a conflict it retries the completion, never the connector call. A dead worker's lock
expires and another worker takes the job; the connector sees the same idempotency key again.
"""

from __future__ import annotations

import json
import random
import traceback
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.engine import Connection

from .database import as_utc, utcnow
from .errors import Conflict, InvalidState, NotFound
from .instances import CONTINUATION_JOB, SERVICE_JOB, TIMER_JOB
from .schema import history_event, job, worker_heartbeat
from .services import ServiceBusinessError, ServiceCall
from .start_timers import START_TIMER as START_TIMER_JOB
from .stepper import HistoryEntry, advance, complete_service_task, force_timer, throw_business_error
from .webhooks import WEBHOOK_JOB, emit

if TYPE_CHECKING:
    from .runtime import Engine

RUNNABLE_KINDS = (SERVICE_JOB, TIMER_JOB, START_TIMER_JOB, WEBHOOK_JOB, CONTINUATION_JOB)
TIMER_KINDS = (TIMER_JOB, START_TIMER_JOB)
COMPLETION_ATTEMPTS = 10


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    kind: str
    instance_id: str | None
    task_id: str | None
    element_id: str | None
    process_key: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    idempotency_key: str | None
    due_at: datetime
    claimed_at: datetime


@dataclass(frozen=True)
class JobView:
    id: str
    kind: str
    state: str
    instance_id: str | None
    element_id: str | None
    process_key: str | None
    due_at: datetime
    attempts: int
    max_attempts: int
    last_error: str | None
    last_traceback: str | None
    created_at: datetime
    finished_at: datetime | None


def backoff(attempt: int, base: float = 2.0, cap: float = 3600.0) -> float:
    """Exponential back-off with full jitter: spreads retries of many failing jobs apart. The exponent is
    capped, so a caller that counts failures without end (a worker during a long outage) never overflows."""
    ceiling = min(cap, base * (2 ** min(max(attempt - 1, 0), 64)))
    return random.uniform(ceiling / 2, ceiling)


class JobExecutor:
    """Runs jobs for one engine; workers (threads or processes) call ``run_due`` in a loop."""

    def __init__(self, engine: Engine, worker_id: str, lock_seconds: float = 60.0) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.lock_seconds = lock_seconds

    # -- claiming -------------------------------------------------------------------------------------
    def claim(self, limit: int = 10, now: datetime | None = None, kinds: tuple[str, ...] | None = None,
              exclude: Collection[str] = ()) -> list[ClaimedJob]:
        now = now or utcnow()
        due = sa.or_(sa.and_(job.c.state == "pending", job.c.due_at <= now),
                     sa.and_(job.c.state == "running", job.c.lock_expires_at < now))
        # due timers first: an SLA escalation must not wait behind a queue of earlier service calls
        timers_first = sa.case((job.c.kind.in_(TIMER_KINDS), 0), else_=1)
        candidates = sa.select(job.c.id).where(job.c.kind.in_(kinds or RUNNABLE_KINDS)).where(due) \
            .order_by(timers_first, job.c.due_at).limit(limit)
        if exclude:
            candidates = candidates.where(job.c.id.not_in(list(exclude)))
        if self.engine.db.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        claim = (job.update().where(job.c.id.in_(candidates.scalar_subquery()))
                 .values(state="running", lock_owner=self.worker_id, started_at=utcnow(),
                         lock_expires_at=now + timedelta(seconds=self.lock_seconds))
                 .returning(job.c.id, job.c.kind, job.c.instance_id, job.c.task_id, job.c.element_id,
                            job.c.process_key, job.c.payload, job.c.attempts, job.c.max_attempts,
                            job.c.idempotency_key, job.c.due_at))
        with self.engine.db.transaction() as conn:
            rows = conn.execute(claim).all()
        return [ClaimedJob(r.id, r.kind, r.instance_id, r.task_id, r.element_id, r.process_key,
                           json.loads(r.payload) if r.payload else {}, r.attempts, r.max_attempts,
                           r.idempotency_key, as_utc(r.due_at) or now, now) for r in rows]

    def run_due(self, limit: int = 10, now: datetime | None = None) -> int:
        """Claim and run one batch; return how many jobs were handled."""
        jobs = self.claim(limit, now)
        for claimed in jobs:
            self.run(claimed, now)
        return len(jobs)

    # -- running --------------------------------------------------------------------------------------
    def run(self, claimed: ClaimedJob, now: datetime | None = None) -> None:
        if claimed.kind == SERVICE_JOB:
            self._run_service(claimed)
        elif claimed.kind == WEBHOOK_JOB:
            self._run_webhook(claimed)
        elif claimed.kind == CONTINUATION_JOB:
            passes = int(claimed.payload.get("passes") or 0)
            self._complete(claimed, lambda conn: self.engine._continue(conn, str(claimed.instance_id), passes))
        elif claimed.kind == TIMER_JOB:
            self._complete(claimed, lambda conn: self._fire_timer(conn, claimed))
        else:
            self._complete(claimed, lambda conn: self.engine._start_by_timer(conn, claimed.id, now or utcnow()))

    def _run_service(self, claimed: ClaimedJob) -> None:
        call = ServiceCall(str(claimed.payload["operator"]), dict(claimed.payload.get("params") or {}),
                           str(claimed.instance_id), str(claimed.element_id), str(claimed.idempotency_key),
                           claimed.payload.get("businessKey"))
        outcome: tuple[str, Any]
        try:
            outcome = ("ok", self.engine.services.call(call))  # no transaction is open here
        except ServiceBusinessError as error:
            outcome = ("business-error", error)
        except Exception as exc:  # noqa: BLE001 - any connector failure is retried, then an incident
            self._record_failure(claimed, exc)
            return
        self._complete(claimed, lambda conn: self._complete_service(conn, claimed, outcome))

    def _run_webhook(self, claimed: ClaimedJob) -> None:
        call = ServiceCall(str(claimed.payload["operator"]), dict(claimed.payload["params"]), "", "",
                           str(claimed.idempotency_key))
        try:
            self.engine.services.call(call)
        except Exception as exc:  # noqa: BLE001 - a refused delivery is retried, then an incident
            self._record_failure(claimed, exc)
            return
        self._complete(claimed, lambda conn: None)

    def _complete(self, claimed: ClaimedJob, work: Any) -> None:
        """Apply ``work`` in a transaction; on an optimistic-lock conflict reload and apply it again."""
        for _attempt in range(COMPLETION_ATTEMPTS):
            try:
                with self.engine.transaction() as conn:
                    if not self._still_mine(conn, claimed):
                        return
                    work(conn)
                    conn.execute(job.update().where(job.c.id == claimed.id).where(job.c.state == "running")
                                 .values(state="done", finished_at=utcnow(), lock_owner=None,
                                         lock_expires_at=None))
                return
            except Conflict:
                continue
            except Exception as exc:  # noqa: BLE001 - whatever broke, the job records it and retries
                self._record_failure(claimed, exc)
                return
        self._record_failure(claimed, Conflict("gave up after repeated concurrent changes"))

    def _still_mine(self, conn: Connection, claimed: ClaimedJob) -> bool:
        row = conn.execute(sa.select(job.c.state, job.c.lock_owner).where(job.c.id == claimed.id)).first()
        return row is not None and row.state == "running" and row.lock_owner == self.worker_id

    def _complete_service(self, conn: Connection, claimed: ClaimedJob, outcome: tuple[str, Any]) -> None:
        inst = self.engine.store.load(conn, str(claimed.instance_id))
        task = self.engine.store.task(inst, str(claimed.task_id)) if inst.state == "running" else None
        if task is None or not task.has_state(TaskState.STARTED):
            conn.execute(job.update().where(job.c.id == claimed.id)
                         .values(state="cancelled", finished_at=utcnow()))
            return
        ctx = self.engine.step_context(inst)
        kind, value = outcome
        if kind == "ok":
            complete_service_task(task, value, ctx)
        else:
            throw_business_error(inst.workflow, task, value, ctx)
        del inst.before.services[str(claimed.task_id)]
        advance(inst.workflow, ctx)
        self.engine.save_advanced(conn, inst, ctx.history, None, ctx)

    def _fire_timer(self, conn: Connection, claimed: ClaimedJob) -> None:
        inst = self.engine.store.load(conn, str(claimed.instance_id))
        task = self.engine.store.task(inst, str(claimed.task_id)) if inst.state == "running" else None
        if task is None or not task.has_state(TaskState.WAITING):
            return
        force_timer(task)
        history = [HistoryEntry("timer.fired", element_id=claimed.element_id, task_id=claimed.task_id)]
        inst.workflow.refresh_timers()
        self.engine._advance_and_save(conn, inst, None, history)

    def _record_failure(self, claimed: ClaimedJob, exc: BaseException) -> None:
        now = utcnow()
        attempts = claimed.attempts + 1
        message = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc))
        exhausted = attempts >= claimed.max_attempts
        base = float(claimed.payload.get("backoffBase") or 2.0)
        values: dict[str, Any] = dict(attempts=attempts, last_error=message[:4000], last_traceback=trace[-20000:],
                                      lock_owner=None, lock_expires_at=None)
        if exhausted:
            values.update(state="failed", finished_at=now)
        else:
            values.update(state="pending", due_at=now + timedelta(seconds=backoff(attempts, base)))
        with self.engine.transaction() as conn:
            conn.execute(job.update().where(job.c.id == claimed.id).where(job.c.lock_owner == self.worker_id)
                         .values(**values))
            if exhausted and claimed.instance_id:
                incident = {"jobId": claimed.id, "elementId": claimed.element_id, "error": message[:1000]}
                conn.execute(history_event.insert().values(
                    instance_id=claimed.instance_id, at=now, type="incident.raised", element_id=claimed.element_id,
                    element_name=None, element_type=None, task_id=claimed.task_id, user_id=None,
                    data=json.dumps(incident)))
                if emit(conn, claimed.instance_id, claimed.process_key, [("incident.raised", incident)]):
                    self.engine._signal_jobs(conn)


def heartbeat(conn: Connection, worker_id: str, host: str, pid: int, started_at: datetime,
              held: Collection[str] = (), lease_seconds: float = 0.0) -> None:
    """Record that a worker lives, and extend the lock of the jobs it ``held`` (claimed, not yet finished).

    The renewal is what lets a lock be short: a live worker keeps a long call's job, while the jobs of a
    worker that died are free again one lease after its last beat.
    """
    now = utcnow()
    updated = conn.execute(worker_heartbeat.update().where(worker_heartbeat.c.id == worker_id)
                           .values(last_seen=now)).rowcount
    if not updated:
        conn.execute(worker_heartbeat.insert().values(id=worker_id, host=host, pid=pid, started_at=started_at,
                                                      last_seen=now))
    if held:
        # only the jobs in hand: one whose run broke off (say, the database went away) must expire and return
        conn.execute(job.update().where(job.c.id.in_(list(held))).where(job.c.lock_owner == worker_id)
                     .where(job.c.state == "running")
                     .values(lock_expires_at=now + timedelta(seconds=lease_seconds)))


def schedule_continuation(conn: Connection, inst: Any, passes: int, ready: list[str]) -> None:
    """The instance stopped mid-way on its step budget: a job continues it (one attempt: if it fails, the
    failure is the incident a person looks at), carrying how many passes it made without waiting."""
    now = utcnow()
    conn.execute(job.insert().values(
        id=str(uuid.uuid4()), kind=CONTINUATION_JOB, state="pending", instance_id=inst.id, task_id=None,
        process_key=inst.definition.info.key, element_id=ready[0] if ready else None, due_at=now,
        payload=json.dumps({"passes": passes, "ready": ready}),
        attempts=0, max_attempts=1, lock_owner=None, lock_expires_at=None, last_error=None, last_traceback=None,
        idempotency_key=f"{inst.id}:continue:{inst.lock_version}", created_at=now, finished_at=None))


def next_due(engine: Engine) -> datetime | None:
    """When the earliest pending job falls due: how long an idle worker may sleep."""
    with engine.db.read() as conn:
        value = conn.execute(sa.select(sa.func.min(job.c.due_at)).where(job.c.state == "pending")).scalar()
    return as_utc(value)


def owns(engine: Engine, job_id: str, worker_id: str) -> bool:
    """Whether a claimed job is still this worker's to run (its lease may have run out meanwhile)."""
    with engine.db.read() as conn:
        row = conn.execute(sa.select(job.c.state, job.c.lock_owner).where(job.c.id == job_id)).first()
    return row is not None and row.state == "running" and row.lock_owner == worker_id


def list_jobs(conn: Connection, state: str | None = None, instance_id: str | None = None,
              kind: str | None = None, limit: int = 100) -> list[JobView]:
    query = sa.select(job).order_by(job.c.created_at).limit(limit)
    if state:
        query = query.where(job.c.state == state)
    if instance_id:
        query = query.where(job.c.instance_id == instance_id)
    if kind:
        query = query.where(job.c.kind == kind)
    return [_job_view(row) for row in conn.execute(query)]


def get_job(conn: Connection, job_id: str) -> JobView:
    row = conn.execute(sa.select(job).where(job.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"job '{job_id}' does not exist")
    return _job_view(row)


def retry_job(conn: Connection, job_id: str) -> JobView:
    """A person fixed the cause of an incident: run the job again with a fresh set of attempts."""
    current = get_job(conn, job_id)
    if current.state != "failed":
        raise InvalidState(f"job '{job_id}' is {current.state}; only failed jobs can be retried")
    conn.execute(job.update().where(job.c.id == job_id).values(
        state="pending", attempts=0, due_at=utcnow(), finished_at=None, lock_owner=None, lock_expires_at=None))
    return get_job(conn, job_id)


def _job_view(row: Any) -> JobView:
    return JobView(row.id, row.kind, row.state, row.instance_id, row.element_id, row.process_key,
                   as_utc(row.due_at) or utcnow(), row.attempts, row.max_attempts, row.last_error,
                   row.last_traceback, as_utc(row.created_at) or utcnow(), as_utc(row.finished_at))




def release(engine: Engine, job_ids: list[str], worker_id: str) -> None:
    """Hand claimed but unstarted jobs back (graceful shutdown) so another worker takes them at once."""
    if not job_ids:
        return
    with engine.transaction() as conn:
        conn.execute(job.update().where(job.c.id.in_(job_ids)).where(job.c.lock_owner == worker_id)
                     .where(job.c.state == "running")
                     .values(state="pending", lock_owner=None, lock_expires_at=None))
        engine._signal_jobs(conn)
