"""Runtime settings, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get(
        "SILVERFLOW_DATABASE_URL", f"sqlite:///{PROJECT_ROOT / 'var' / 'silverflow.db'}"))
    processes_dir: Path = PROJECT_ROOT / "processes"
    forms_dir: Path = PROJECT_ROOT / "forms"
    worker_poll_seconds: float = float(os.environ.get("SILVERFLOW_WORKER_POLL_SECONDS", "0.05"))
    # a step (start, completion, message, job) that runs longer or more passes than this answers at once and
    # goes on as a continuation job; an instance that never waits is an incident after the last figure
    # addresses of reverse proxies whose X-Forwarded-For/-Proto is believed (comma-separated; empty: none)
    trusted_proxies: str = os.environ.get("SILVERFLOW_TRUSTED_PROXIES", "")
    step_seconds: float = float(os.environ.get("SILVERFLOW_STEP_SECONDS", "0.03"))
    step_passes: int = int(os.environ.get("SILVERFLOW_STEP_PASSES", "5000"))
    passes_without_wait: int = int(os.environ.get("SILVERFLOW_PASSES_WITHOUT_WAIT", "300000"))
    # request bodies larger than these answer 413 before they are parsed: JSON and page forms; uploads (multipart,
    # raw CSV), by default a 50 MiB document plus its multipart framing
    max_json_bytes: int = int(os.environ.get("SILVERFLOW_MAX_JSON_BYTES", str(1024 * 1024)))
    max_upload_bytes: int = int(os.environ.get("SILVERFLOW_MAX_UPLOAD_BYTES", str(50 * 1024 * 1024 + 64 * 1024)))
