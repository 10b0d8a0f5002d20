"""Inputs bounded (issue 21): bodies over the limit are a 413 before parsing, JSON with NaN/Infinity a 422, both as
problem+json; upload names lose control, C1 and bidi characters. Over real HTTP and through the TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.identity import Identity
from api.services import ConnectorGateway
from api.settings import Settings
from connectors import default_registry
from crm import documents as crm_documents
from engine.database import Database
from engine.runtime import Engine
from tests.api.conftest import Api
from tests.support import sample_process

START = "/process-definitions/vacation-request/instances"
PDF = b"%PDF-1.4\n% Vertrag\n" + bytes(range(256))


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_a_422(api: Api, constant: str) -> None:
    api.engine.deploy([("vacation-request.bpmn", sample_process.BPMN)], sample_process.FORMS, deployed_by="t")
    client = api.client("manager")
    body = '{"variables": {"days": ' + constant + "}}"
    refused = client.post(START, content=body, headers={"content-type": "application/json"})
    assert constant in str(_problem(refused, 422)["detail"])
    assert client.get("/process-instances").json()["total"] == 0  # nothing stored
    fine = client.post(START, json={"variables": {"note": f"{constant} as text"}})
    assert fine.status_code == 201, fine.text


def test_json_over_the_limit_is_a_413_declared_or_streamed(api: Api) -> None:
    client = api.client("manager")
    big = b'{"variables": {"x": "' + b"a" * (1024 * 1024) + b'"}}'
    _problem(client.post(START, content=big, headers={"content-type": "application/json"}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield big[:1000]
        yield big[1000:]

    _problem(client.post(START, content=chunks(), headers={"content-type": "application/json"}), 413)


def test_multipart_over_the_configured_limit_is_a_413(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    engine = Engine(database, ConnectorGateway(default_registry()))
    identity = Identity()
    settings = Settings(database_url=sqlite_url, max_json_bytes=1000, max_upload_bytes=20_000)
    app = create_app(settings, engine, run_worker=False, identity=identity)
    with engine.db.transaction() as conn:
        key = identity.create_key(conn, "d", ["designer"], [], "tests").secret
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            files = {"files": ("big.bpmn", b"<x/>" * 10_000, "application/xml")}
            body = _problem(client.post("/api/v1/deployments", files=files), 413)
            assert body["errors"] == [{"field": "(body)", "message": "at most 20000 bytes"}]
            small = client.post("/api/v1/deployments", files={"files": ("a.bpmn", sample_process.BPMN)})
            assert small.status_code != 413
            _problem(client.post("/api/v1/messages", json={"name": "x" * 2000}), 413)
    finally:
        database.dispose()


def test_upload_names_lose_control_and_bidi_characters(api: Api, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crm_documents.ENV_DIR, str(tmp_path))
    sales = api.client("sales")
    account_id = sales.post("/accounts", json={"name": "Schmidt KG"}).json()["id"]
    name = "Rech\u202enung\u2066\x85\u200f.pdf"  # httpx percent-encodes C0 itself
    uploaded = sales.post(f"/accounts/{account_id}/documents", files={"file": (name, PDF, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["fileName"] == "Rechnung.pdf"
    assert crm_documents.clean_file_name(" a\u202db\u00adc\x7f\x07\x1b\x9b ") == "abc"
