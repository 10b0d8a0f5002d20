"""`silverflow serve` for real: Uvicorn on a free port, health over HTTP, the embedded timer worker."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.cli import main
from api.identity import Identity
from engine.database import Database
from engine.runtime import Engine

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_and_fires_timers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    assert main(["--database-url", url, "migrate"]) == 0
    engine = Engine(Database(url))
    with engine.db.transaction() as conn:
        key = Identity().create_key(conn, "probe", ["integration"], [], "test").secret
    engine.deploy([("w.bpmn", (ROOT / "tests/engine/bpmn/sched_short_wait.bpmn").read_bytes())])
    instance = engine.start("short-wait")
    assert instance.state == "running" and instance.active_elements == ["run"]

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "serve", "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={"SILVERFLOW_WORKER_POLL_SECONDS": "0.1", "PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2,
                                   headers={"Authorization": f"Bearer {key}"})
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["processDefinitions"] == 1
        while engine.get_instance(instance.id).state != "completed":
            assert time.monotonic() < deadline, "the embedded worker did not fire the timer"
            time.sleep(0.1)
        fired = [h.type for h in engine.history(instance.id)]
        assert "timer.fired" in fired
    finally:
        server.terminate()
        server.wait(timeout=15)
        engine.db.dispose()
