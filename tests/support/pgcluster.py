"""A throw-away PostgreSQL 15 cluster for tests and benchmarks.

PostgreSQL refuses to run as root and CI runs as root, so when we are root the cluster is created and
started as the ``postgres`` user (``runuser``) in a directory that user owns. It listens on 127.0.0.1 on a
free port with fsync off, and is stopped and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


class PostgresUnavailable(RuntimeError):
    pass


def find_pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PgCluster:
    """A running throw-away cluster that a fault-injection test can stop and start again on the same port."""

    def __init__(self, pg_bin: Path, workdir: Path, port: int, durable: bool = False) -> None:
        self.pg_bin, self.workdir, self.port, self.durable = pg_bin, workdir, port, durable
        self.datadir = workdir / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        # a durable cluster keeps every acknowledged commit through an immediate stop (fsync=off only risks
        # an operating-system crash, which a test never causes)
        commit = "on" if self.durable else "off"
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off -c synchronous_commit={commit} " \
                  f"-c full_page_writes=off -c unix_socket_directories={self.workdir} -c max_connections=200"
        subprocess.run(_as_postgres([str(self.pg_bin / "pg_ctl"), "-D", str(self.datadir), "-o", options,
                                     "-l", str(self.workdir / "log"), "-w", "start"]),
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop at once, as a crash or a failover would: every connection is cut."""
        subprocess.run(_as_postgres([str(self.pg_bin / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                                     "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty database; remove everything on exit."""
    with stoppable_cluster() as cluster:
        yield cluster.url


@contextlib.contextmanager
def stoppable_cluster(durable: bool = False) -> Iterator[PgCluster]:
    """A fresh cluster on a free port; stopped and deleted on exit."""
    pg_bin = find_pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="silverflow-pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres")
        workdir.chmod(0o700)
    cluster = PgCluster(pg_bin, workdir, _free_port(), durable)
    try:
        subprocess.run(_as_postgres([str(pg_bin / "initdb"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                     "--no-sync", "-D", str(cluster.datadir)]),
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        cluster.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        output = getattr(exc, "stdout", b"") or b""
        raise PostgresUnavailable(f"could not start PostgreSQL: {exc} {output.decode(errors='replace')}") from exc
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
