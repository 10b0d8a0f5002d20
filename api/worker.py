"""Job workers: the loop that claims due jobs (service tasks, timers, timer starts) and runs them.

``silverflow serve`` runs one in a thread for the single-machine default; ``silverflow worker`` runs them
as separate processes (``--concurrency N`` starts N), on as many machines as share the database. New jobs
wake an idle worker at once: through the engine's in-process signal, and on PostgreSQL through
LISTEN/NOTIFY; otherwise (SQLite, several processes) it polls a cheap read query every 50 ms.

A worker outlives its database: every touch of it is inside the loop's retry, which backs off (with jitter,
capped) while the database is away and carries on when it is back. A heartbeat thread beats every few
seconds and renews the lease of the jobs this worker holds, so a long call keeps its jobs, and the jobs of a
worker that died come back after one short lease instead of a long fixed lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid

from engine.database import outage_of, utcnow
from engine.jobs import JobExecutor, backoff, heartbeat, owns, release
from engine.jobs import next_due as next_due_at
from engine.runtime import JOBS_CHANNEL, Engine

log = logging.getLogger("silverflow.worker")

HEARTBEAT_SECONDS = 2.0
#: A claimed job's lease; the heartbeat renews it, so it only runs out when the worker stops beating.
LEASE_SECONDS = 10.0
#: A freshest heartbeat older than this means no worker runs: jobs, timers and escalations stand still.
STALE_HEARTBEAT_SECONDS = 30.0
#: The longest pause between attempts while the database is away.
MAX_BACKOFF_SECONDS = 5.0


class JobWorker:
    def __init__(self, engine: Engine, poll_interval: float = 0.05, batch_size: int = 10,
                 lock_seconds: float = LEASE_SECONDS, worker_id: str | None = None,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.lock_seconds = lock_seconds
        self.heartbeat_seconds = min(heartbeat_seconds, lock_seconds / 3)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executor = JobExecutor(engine, self.worker_id, lock_seconds)
        self.stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._beater: threading.Thread | None = None
        self._held: set[str] = set()  # claimed and not finished: the jobs whose lease the heartbeat renews
        self._started_at = utcnow()

    # -- one pass -------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim one batch and run it; jobs not started when a stop is requested are released."""
        claimed = self.executor.claim(self.batch_size)
        self._held = {item.id for item in claimed}
        for index, item in enumerate(claimed):
            if self.stop_requested.is_set():
                release(self.engine, [c.id for c in claimed[index:]], self.worker_id)
                self._held = set()
                return index
            held = (utcnow() - item.claimed_at).total_seconds()
            if held > self.lock_seconds / 2 and not owns(self.engine, item.id, self.worker_id):
                log.warning("job %s: lease lost before it started; another worker has it", item.id)
                continue
            try:
                self.executor.run(item)
            except Exception:  # noqa: BLE001 - a worker must survive anything one job does
                log.exception("job %s crashed the worker loop; its lease runs out and it is run again", item.id)
            finally:
                self._held = self._held - {item.id}
        return len(claimed)

    def beat(self) -> None:
        """Tell the others this worker lives, and keep the jobs it holds for another lease."""
        with self.engine.db.transaction() as conn:
            heartbeat(conn, self.worker_id, socket.gethostname(), os.getpid(), self._started_at, self._held,
                      self.lock_seconds)

    def _beat_forever(self) -> None:
        while not self.stop_requested.is_set():
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - the database may be away; the next beat tries again
                log.warning("heartbeat failed (%s): %s", outage_of(exc) or type(exc).__name__, exc)
            self.stop_requested.wait(self.heartbeat_seconds)

    def _idle_wait(self) -> None:
        """Sleep until woken by a new job, the next due time, or the poll interval, whichever comes first."""
        timeout = self.poll_interval
        next_due = next_due_at(self.engine)
        if next_due is not None:
            timeout = max(0.0, min(timeout, (next_due - utcnow()).total_seconds()))
        if self.engine.jobs_signal.wait(timeout):
            self.engine.jobs_signal.clear()

    # -- loops ----------------------------------------------------------------------------------------
    def run_forever(self) -> None:
        self._start_listener()
        self._start_heartbeat()
        failures = 0
        while not self.stop_requested.is_set():
            try:
                if not self.run_once():
                    self._idle_wait()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a worker must outlive any database outage
                failures += 1
                outage = outage_of(exc)
                if outage is None and failures == 1:
                    log.exception("worker pass failed; retrying")
                else:
                    log.warning("worker pass failed (%s, %d in a row): %s", outage or type(exc).__name__,
                                failures, exc)
                self.stop_requested.wait(backoff(failures, base=0.25, cap=MAX_BACKOFF_SECONDS))

    def _start_heartbeat(self) -> None:
        if self._beater is not None:
            return
        with contextlib.suppress(Exception):  # a database that is away now is retried by the thread
            self.beat()  # before the first claim, so nobody mistakes this worker's leases for a dead one's
        self._beater = threading.Thread(target=self._beat_forever, name="silverflow-heartbeat", daemon=True)
        self._beater.start()

    def _start_listener(self) -> None:
        if self.engine.db.dialect != "postgresql" or self._listener is not None:
            return
        self._listener = threading.Thread(target=self._listen, name="silverflow-listen", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        """LISTEN on PostgreSQL and turn notifications into the engine's wake-up signal."""
        import psycopg

        dsn = self.engine.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stop_requested.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {JOBS_CHANNEL}")
                    while not self.stop_requested.is_set():
                        for _note in conn.notifies(timeout=1.0, stop_after=1):
                            self.engine.jobs_signal.set()
            except psycopg.Error:
                log.exception("LISTEN connection lost; reconnecting")
                self.stop_requested.wait(1.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="silverflow-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the job in hand, release the rest of the batch, and return."""
        self.stop_requested.set()
        self.engine.jobs_signal.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
