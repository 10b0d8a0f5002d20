"""The app's landing page and the OpenAPI document need no login; the API does."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings


def test_index_docs_and_protected_api(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url), run_worker=False)
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200 and "Silverflow" in page.text
        assert client.get("/api/v1/openapi.json").status_code == 200
        assert client.get("/api/docs").status_code == 200
        health = client.get("/api/v1/health")
        assert health.status_code == 401 and health.headers["www-authenticate"] == "Bearer"
