"""The background loop that fires due timers (jobs of kind ``timer``).

``silverflow serve`` runs one in a thread for the single-machine default; ``silverflow worker`` runs it in
the foreground. Several may run against one database: a timer is fired inside the instance's transaction,
and the optimistic lock on the instance makes a second worker's attempt lose harmlessly.
"""

from __future__ import annotations

import logging
import threading

from engine.errors import Conflict, EngineError
from engine.runtime import Engine

log = logging.getLogger("silverflow.worker")


class TimerWorker:
    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        try:
            return self.engine.fire_due_timers()
        except Conflict:
            return 0  # another worker fired it first
        except EngineError as exc:
            log.error("firing timers failed: %s", exc)
            return 0

    def run_forever(self) -> None:
        while not self._stop.is_set():
            fired = self.run_once()
            if not fired:
                self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="silverflow-timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
