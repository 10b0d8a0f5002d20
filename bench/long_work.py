"""Long work leaves the request: a 10 000-pass loop started over REST, with the server's step limits and
without them (the baseline: the whole loop inside the start request), on a real Uvicorn with its embedded
worker. Prints the start request's latency (p50 of several starts) and the time until the instance completed
in the background; target: the start answers in < 100 ms.

Run: ``python -m bench.long_work [--starts N] [--passes N]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from engine.stepper import StepLimits
from tests.support.databases import migrate
from tests.support.live_app import live_app

LOOP = Path(__file__).resolve().parents[1] / "tests" / "engine" / "bpmn" / "script_loop.bpmn"


def measure(limits: StepLimits | None, starts: int, passes: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/long.db"
        migrate(url)
        with live_app(url, step_limits=limits) as api:
            client = api.client("admin")
            with LOOP.open("rb") as model:
                api.client("designer").post("/deployments", files=[("files", ("loop.bpmn", model))])
            answers, ids = [], []
            began = time.monotonic()
            for _ in range(starts):
                started = time.monotonic()
                response = client.post("/process-definitions/script-loop/instances",
                                       json={"variables": {"iteration": 0, "limit": passes}})
                answers.append(time.monotonic() - started)
                ids.append(response.json()["id"])
            for instance_id in ids:
                while client.get(f"/process-instances/{instance_id}").json()["state"] != "completed":
                    time.sleep(0.05)
            return statistics.median(answers) * 1000, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--passes", type=int, default=10_000)
    args = parser.parse_args()
    print(f"== A {args.passes}-pass loop started over REST ({args.starts} starts, SQLite, embedded worker) ==")
    base_ms, base_total = measure(None, args.starts, args.passes)
    print(f"baseline, no step limits: start answers in {base_ms:8.1f} ms (p50); all done after {base_total:5.1f} s")
    limits = StepLimits()
    ms, total = measure(limits, args.starts, args.passes)
    print(f"server step limits ({limits.seconds * 1000:.0f} ms): start answers in {ms:8.1f} ms (p50; target < 100 ms); "
          f"all done after {total:5.1f} s in the background")


if __name__ == "__main__":
    main()
