"""Figures for monitoring, in the Prometheus text format, read from the projections."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .database import as_utc, utcnow
from .schema import job, process_instance, user_task

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_SAMPLE = 10_000


def collect(conn: Connection) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("silverflow_process_instances", "gauge", "Process instances by process and state.")
    for row in conn.execute(sa.select(process_instance.c.process_key, process_instance.c.state, sa.func.count())
                            .group_by(process_instance.c.process_key, process_instance.c.state)):
        lines.append(f'silverflow_process_instances{{process="{row[0]}",state="{row[1]}"}} {row[2]}')
    family("silverflow_instances_started_total", "counter", "Process instances ever started.")
    started = conn.execute(sa.select(sa.func.count()).select_from(process_instance)).scalar_one()
    lines.append(f"silverflow_instances_started_total {started}")
    family("silverflow_instances_completed_total", "counter", "Process instances that reached their end.")
    completed = conn.execute(sa.select(sa.func.count()).select_from(process_instance)
                             .where(process_instance.c.state == "completed")).scalar_one()
    lines.append(f"silverflow_instances_completed_total {completed}")
    family("silverflow_tasks_open", "gauge", "Open user tasks.")
    open_tasks = conn.execute(sa.select(sa.func.count()).select_from(user_task)
                              .where(user_task.c.state == "open")).scalar_one()
    lines.append(f"silverflow_tasks_open {open_tasks}")
    family("silverflow_job_queue_depth", "gauge", "Jobs due now and not yet done, by kind.")
    for row in conn.execute(sa.select(job.c.kind, sa.func.count()).where(job.c.state.in_(("pending", "running")))
                            .where(job.c.due_at <= utcnow()).group_by(job.c.kind)):
        lines.append(f'silverflow_job_queue_depth{{kind="{row[0]}"}} {row[1]}')
    family("silverflow_jobs_failed", "gauge", "Failed jobs (incidents) waiting for a person.")
    failed = conn.execute(sa.select(sa.func.count()).select_from(job).where(job.c.state == "failed")).scalar_one()
    lines.append(f"silverflow_jobs_failed {failed}")
    family("silverflow_job_latency_seconds", "histogram",
           f"Job pickup latency (due to started) over the last {LATENCY_SAMPLE} started jobs.")
    latencies = []
    for due, started_at in conn.execute(sa.select(job.c.due_at, job.c.started_at)
                                        .where(job.c.started_at.is_not(None))
                                        .order_by(job.c.started_at.desc()).limit(LATENCY_SAMPLE)):
        due_at, began = as_utc(due), as_utc(started_at)
        if due_at is not None and began is not None:
            latencies.append(max(0.0, (began - due_at).total_seconds()))
    for bound in LATENCY_BUCKETS:
        lines.append(f'silverflow_job_latency_seconds_bucket{{le="{bound}"}} {sum(1 for v in latencies if v <= bound)}')
    lines.append(f'silverflow_job_latency_seconds_bucket{{le="+Inf"}} {len(latencies)}')
    lines.append(f"silverflow_job_latency_seconds_sum {sum(latencies):.6f}")
    lines.append(f"silverflow_job_latency_seconds_count {len(latencies)}")
    return "\n".join(lines) + "\n"
