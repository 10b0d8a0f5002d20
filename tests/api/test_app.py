"""The served app: health through a real engine, and the landing page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings


def test_health_and_index(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url), run_worker=False)
    with TestClient(app) as client:
        health = client.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["database"] == "sqlite"
        page = client.get("/")
        assert page.status_code == 200 and "Silverflow" in page.text
        assert client.get("/api/v1/openapi.json").status_code == 200
