"""Job workers: the loop that claims due jobs (service tasks, timers, timer starts) and runs them.

``silverflow serve`` runs one in a thread for the single-machine default; ``silverflow worker`` runs them
as separate processes (``--concurrency N`` starts N), on as many machines as share the database. New jobs
wake an idle worker at once: through the engine's in-process signal, and on PostgreSQL through
LISTEN/NOTIFY; otherwise (SQLite, several processes) it polls a cheap read query every 50 ms.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime

import sqlalchemy as sa

from engine.database import as_utc, utcnow
from engine.jobs import JobExecutor, heartbeat, release
from engine.runtime import JOBS_CHANNEL, Engine
from engine.schema import job

log = logging.getLogger("silverflow.worker")

HEARTBEAT_SECONDS = 5.0


class JobWorker:
    def __init__(self, engine: Engine, poll_interval: float = 0.05, batch_size: int = 10,
                 lock_seconds: float = 60.0, worker_id: str | None = None) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executor = JobExecutor(engine, self.worker_id, lock_seconds)
        self.stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._started_at = utcnow()
        self._last_heartbeat = 0.0

    # -- one pass -------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim one batch and run it; jobs not started when a stop is requested are released."""
        claimed = self.executor.claim(self.batch_size)
        for index, item in enumerate(claimed):
            if self.stop_requested.is_set():
                release(self.engine, [c.id for c in claimed[index:]], self.worker_id)
                return index
            try:
                self.executor.run(item)
            except Exception:  # noqa: BLE001 - a worker must survive anything one job does
                log.exception("job %s crashed the worker loop", item.id)
        return len(claimed)

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat < HEARTBEAT_SECONDS:
            return
        self._last_heartbeat = time.monotonic()
        with self.engine.db.transaction() as conn:
            heartbeat(conn, self.worker_id, socket.gethostname(), os.getpid(), self._started_at)

    def _next_due(self) -> datetime | None:
        with self.engine.db.read() as conn:
            value = conn.execute(sa.select(sa.func.min(job.c.due_at)).where(job.c.state == "pending")).scalar()
        return as_utc(value)

    def _idle_wait(self) -> None:
        """Sleep until woken by a new job, the next due time, or the poll interval, whichever comes first."""
        timeout = self.poll_interval
        next_due = self._next_due()
        if next_due is not None:
            timeout = max(0.0, min(timeout, (next_due - utcnow()).total_seconds()))
        if self.engine.jobs_signal.wait(timeout):
            self.engine.jobs_signal.clear()

    # -- loops ----------------------------------------------------------------------------------------
    def run_forever(self) -> None:
        self._start_listener()
        while not self.stop_requested.is_set():
            try:
                self._heartbeat()
                handled = self.run_once()
            except Exception:  # noqa: BLE001 - e.g. the database is briefly unreachable
                log.exception("worker pass failed; retrying")
                handled = 0
                self.stop_requested.wait(1.0)
            if not handled:
                self._idle_wait()

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
