"""Database connections for the engine: one SQLAlchemy engine per URL, tuned per dialect.

SQLite is the embedded single-machine default (WAL so readers never block the writer); PostgreSQL is the
way to scale out. Everything else in the engine talks SQLAlchemy Core through ``Database``.

On SQLite a unit of work begins ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of
failing when one upgrades a read to a write; a ``read()`` begins a deferred transaction, which in WAL mode
never waits for the writer, so one long step cannot make every page and health probe answer "locked".
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

DEFAULT_SQLITE_URL = "sqlite:///var/silverflow.db"
#: How long a SQLite writer waits for the write lock before the request answers 503 (seconds).
BUSY_SECONDS_VARIABLE = "SILVERFLOW_SQLITE_BUSY_SECONDS"
_READ_ONLY = "silverflow_read_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def busy_seconds() -> float:
    return float(os.environ.get(BUSY_SECONDS_VARIABLE, "10"))


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine with the settings our concurrency rules rely on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        busy = busy_seconds()
        engine = sa.create_engine(url, connect_args={"timeout": busy, "check_same_thread": False}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN take the write lock up front (BEGIN IMMEDIATE), so two writers queue
            # instead of failing with "database is locked" when they upgrade a read to a write.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    # a server that is away must fail a connection attempt in seconds, not hang a request or a worker
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5}, **kwargs)


class WriteTurns:
    """The writers of one process take the SQLite write lock in arrival order.

    SQLite's busy handler polls with growing sleeps (up to 100 ms), so a worker that releases the lock and
    takes it again at once (a loop continuing as jobs) starved a clerk's request for seconds. Here a waiting
    writer is handed the turn directly when the holder is done; other processes still meet SQLite's own wait.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ran out
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()  # the turn passes on; _held stays True
            else:
                self._held = False


class WriteLockTimeout(sa.exc.OperationalError):
    """No write turn within the busy timeout: answered like SQLite's own "database is locked"."""


class Database:
    """A connection factory with one transaction per unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.dialect = self.engine.dialect.name
        self._turns = WriteTurns() if self.dialect == "sqlite" else None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        if self._turns is None:
            with self.engine.begin() as conn:
                yield conn
            return
        if not self._turns.acquire(busy_seconds()):
            raise WriteLockTimeout("BEGIN IMMEDIATE", None, TimeoutError("database is locked (no write turn)"))
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            self._turns.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for queries only: on SQLite it never takes (or waits for) the write lock."""
        with self.engine.connect() as conn:
            yield conn.execution_options(**{_READ_ONLY: True})

    def writable(self) -> bool:
        """Whether writes can succeed now: an embedded file on a read-only mount, or a PostgreSQL standby,
        still answers reads (so a plain query looks healthy) but refuses every write."""
        if self.dialect == "sqlite":
            path = self.engine.url.database or ""
            if not path or path == ":memory:":
                return True
            file = Path(path)
            return os.access(file.parent, os.W_OK) and (not file.exists() or os.access(file, os.W_OK))
        with self.read() as conn:
            return conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"

    def dispose(self) -> None:
        self.engine.dispose()


#: Why the database cannot serve right now: a condition that clears by itself or by an operator.
Outage = Literal["busy", "unreachable", "read-only", "full"]
BUSY: Outage = "busy"
UNREACHABLE: Outage = "unreachable"
READ_ONLY: Outage = "read-only"
FULL: Outage = "full"

_SQLITE_OUTAGES: dict[str, Outage] = {
    "SQLITE_BUSY": BUSY, "SQLITE_LOCKED": BUSY, "SQLITE_READONLY": READ_ONLY, "SQLITE_FULL": FULL,
    "SQLITE_IOERR": UNREACHABLE, "SQLITE_CANTOPEN": UNREACHABLE}
_TEXT_OUTAGES: tuple[tuple[str, Outage], ...] = (
    ("locked", BUSY), ("readonly", READ_ONLY), ("read-only", READ_ONLY), ("disk is full", FULL),
    ("no space left", FULL), ("disk i/o error", UNREACHABLE), ("unable to open", UNREACHABLE))


def outage_of(exc: BaseException) -> Outage | None:
    """Classify a database error that is not the caller's fault (lock timeout, server gone, disk full).

    Callers answer those with "try again" (HTTP 503, a worker's back-off) instead of a crash; anything
    else (an integrity error, a bad statement) is a bug and returns None.
    """
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    if exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError):
        return UNREACHABLE
    original = exc.orig
    name = getattr(original, "sqlite_errorname", None)
    if name:
        return next((outage for prefix, outage in _SQLITE_OUTAGES.items() if str(name).startswith(prefix)), None)
    if type(original).__module__.startswith("psycopg"):
        state = getattr(getattr(original, "diag", None), "sqlstate", None) or ""
        # class 08 connection exceptions, 57P admin shutdown/crash, 53 insufficient resources, 55P03 lock timeout
        if state.startswith(("08", "57P", "53")) or isinstance(exc, sa.exc.OperationalError) and not state:
            return FULL if state.startswith("53") else UNREACHABLE
        if state in ("55P03", "40P01"):
            return BUSY
        if state == "25006":
            return READ_ONLY
        return None
    text = str(original).lower()
    return next((outage for needle, outage in _TEXT_OUTAGES if needle in text), None)
