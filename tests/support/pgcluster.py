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


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty database; remove everything on exit."""
    pg_bin = find_pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="silverflow-pg-"))
    datadir = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres")
        workdir.chmod(0o700)
    port = _free_port()
    run = {"check": True, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "timeout": 120}
    try:
        subprocess.run(_as_postgres([str(pg_bin / "initdb"), "-A", "trust", "-U", "postgres",
                                     "-E", "UTF8", "--no-sync", "-D", str(datadir)]), **run)  # type: ignore[call-overload]
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off " \
                  f"-c full_page_writes=off -c unix_socket_directories={workdir} -c max_connections=200"
        subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(datadir), "-o", options,
                                     "-l", str(workdir / "log"), "-w", "start"]), **run)  # type: ignore[call-overload]
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        output = getattr(exc, "stdout", b"") or b""
        raise PostgresUnavailable(f"could not start PostgreSQL: {exc} {output.decode(errors='replace')}") from exc
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
