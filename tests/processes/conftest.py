"""The shipped processes against their real counterparts on loopback: a live app (REST + job worker), an SMTP
server (aiosmtpd), the registrar and supplier simulators — and the CRM data they change."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from api.app import shipped_registry
from connectors.mail import MailConfig
from connectors.registrar import RegistrarConfig
from connectors.simulators import registrar as registrar_sim
from connectors.simulators import supplier as supplier_sim
from connectors.supplier import SupplierConfig
from engine.database import Database
from tests.support.live_app import Api, free_port, live_app
from tests.support.servers import serve_app
from tests.support.sessions import wait_for
from tests.support.smtp import Collector

ROOT = Path(__file__).parents[2]


@dataclass
class World:
    api: Api
    inbox: Collector
    supplier: Any
    registrar: Any
    instances: list[str] = field(default_factory=list)

    def start(self, key: str, variables: dict[str, Any], business_key: str | None = None) -> str:
        response = self.api.client("integration").post(f"/process-definitions/{key}/instances",
                                                       json={"businessKey": business_key, "variables": variables})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
        """As tests.support.sessions.wait_for, naming the failed jobs when it times out (the usual reason)."""
        try:
            return wait_for(condition, what, timeout)
        except AssertionError as timed_out:
            failed = self.api.client("admin").get("/jobs", params={"state": "failed"}).json()
            raise AssertionError(f"{timed_out}; failed jobs: {failed}") from None

    def task(self, instance_id: str, element_id: str, who: str) -> dict[str, Any]:
        """The open task of the element, as the clerk ``who`` sees it in the inbox."""
        client = self.api.client(who)

        def find() -> dict[str, Any] | None:
            items = client.get("/tasks", params={"limit": 200}).json()["items"]
            return next((t for t in items if t["instanceId"] == instance_id and t["elementId"] == element_id), None)
        return dict(self.wait_for(find, f"task {element_id} for {who}"))

    def form_data(self, instance_id: str, element_id: str, who: str) -> dict[str, Any]:
        """What the task's form shows ``who`` before they type anything (its data, defaults included)."""
        task = self.task(instance_id, element_id, who)
        response = self.api.client(who).get(f"/tasks/{task['id']}")
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    def complete(self, instance_id: str, element_id: str, who: str, data: dict[str, Any]) -> None:
        task = self.task(instance_id, element_id, who)
        client = self.api.client(who)
        assert client.post(f"/tasks/{task['id']}/claim").status_code == 200
        for _attempt in range(20):  # the worker may be moving the same instance on: reload and retry, as a UI does
            response = client.post(f"/tasks/{task['id']}/complete", json={"data": data})
            if response.status_code != 409 or "concurrently" not in response.text:
                break
            time.sleep(0.05)
        assert response.status_code == 200, response.text

    def instance(self, instance_id: str) -> dict[str, Any]:
        return dict(self.api.client("admin").get(f"/process-instances/{instance_id}").json())

    def wait_state(self, instance_id: str, state: str) -> dict[str, Any]:
        return dict(self.wait_for(lambda: (i := self.instance(instance_id))["state"] == state and i,
                                  f"instance {instance_id} {state}"))

    def deploy_shipped(self) -> None:
        files = [("files", (p.name, p.read_bytes(), "application/xml"))
                 for p in sorted((ROOT / "processes").glob("*.bpmn"))]
        files += [("files", (p.name, p.read_bytes(), "application/json"))
                  for p in sorted((ROOT / "forms").glob("*.json"))]
        response = self.api.client("designer").post("/deployments", files=files)
        assert response.status_code in (200, 201), response.text


@pytest.fixture
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path / "documents"))
    inbox = Collector()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    registrar_app = registrar_sim.create_app("registrar-key", activation_seconds=0.1)
    supplier_app = supplier_sim.create_app("supplier-key", ship_after_seconds=0.3, callback_backoff_seconds=0.1)
    try:
        with serve_app(registrar_app) as registrar_url, serve_app(supplier_app) as supplier_url:
            def registry(database: Database) -> Any:
                return shipped_registry(
                    database, RegistrarConfig(url=registrar_url, api_key="registrar-key", poll_interval=0.05,
                                              poll_timeout=10),
                    SupplierConfig(url=supplier_url, api_key="supplier-key"),
                    MailConfig(host="127.0.0.1", port=smtp.port, documents_dir=tmp_path / "documents"))
            with live_app(db_url, registry) as api:
                state = supplier_app.state.supplier
                state.callback_url = f"{api.base_url}/api/v1/integrations/supplier/shipments"
                state.callback_token = api.keys["integration"]
                world = World(api, inbox, state, registrar_app.state)
                world.deploy_shipped()
                yield world
    finally:
        smtp.stop()

