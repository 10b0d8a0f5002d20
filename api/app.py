"""The FastAPI application: the REST API under /api/v1 and the pages share it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from connectors import default_registry
from engine.database import Database
from engine.runtime import Engine

from .services import ConnectorGateway
from .settings import Settings
from .worker import JobWorker


def build_engine(settings: Settings) -> Engine:
    return Engine(Database(settings.database_url), ConnectorGateway(default_registry()))


def create_app(settings: Settings | None = None, engine: Engine | None = None,
               run_worker: bool = True) -> FastAPI:
    settings = settings or Settings()
    engine = engine or build_engine(settings)
    worker = JobWorker(engine, settings.worker_poll_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_worker:
            worker.start()
        yield
        worker.stop()

    app = FastAPI(title="Silverflow", version="0.1.0", lifespan=lifespan, docs_url="/api/docs",
                  openapi_url="/api/v1/openapi.json")
    app.state.engine = engine

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        with engine.db.read() as conn:
            definitions = engine.repository.count_keys(conn)
        age = engine.worker_heartbeat_age()
        return {"status": "ok", "database": engine.db.dialect, "processDefinitions": definitions,
                "workerHeartbeatAgeSeconds": None if age is None else round(age, 1)}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (
            "<!doctype html><html lang=de><head><meta charset=utf-8><title>Silverflow</title></head><body>"
            "<h1>Silverflow</h1><p>Die Prozess-Engine läuft.</p><ul>"
            "<li><a href='/api/docs'>REST API (OpenAPI)</a></li>"
            "<li><a href='/api/v1/health'>Health</a></li></ul></body></html>"
        )

    return app
