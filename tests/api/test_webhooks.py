"""Webhooks end to end: subscribe over REST, a loopback receiver gets signed events, refusals are retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.api.conftest import Api
from tests.support import sample_process

ROOT = Path(__file__).parents[2]
VACATION = sample_process.BPMN
SECRET = "receiver-secret-0123456789"


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.refuse = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.refuse > 0:
                    outer.refuse -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def _wait(predicate: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_signed_deliveries_for_task_created_and_instance_completed(api: Api, receiver: Receiver) -> None:
    client = api.client("integration")
    created = client.post("/webhooks", json={"url": receiver.url, "events": ["task.created", "instance.completed"],
                                             "secret": SECRET})
    assert created.status_code == 201 and created.json()["secret"] == SECRET
    assert client.get("/webhooks").json()[0]["secret"] is None  # shown once only
    api.client("designer").post("/deployments", files=[("files", ("v.bpmn", VACATION))])
    instance = client.post("/process-definitions/vacation-request/instances", json={"businessKey": "E1"}).json()
    _wait(lambda: len(receiver.received) >= 1)
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Silverflow-Signature"] == expected
    event = json.loads(body)
    assert event["event"] == "task.created" and event["instanceId"] == instance["id"]
    assert event["data"]["elementId"] == "submit"
    api.engine.cancel(instance["id"])  # cancelled instances do not "complete"
    time.sleep(0.2)
    assert [json.loads(b)["event"] for _h, b in receiver.received] == ["task.created"]


def test_a_refused_delivery_is_retried(api: Api, receiver: Receiver) -> None:
    from datetime import timedelta

    from engine.database import utcnow

    receiver.refuse = 1
    client = api.client("integration")
    client.post("/webhooks", json={"url": receiver.url, "events": ["task.created"]})
    api.client("designer").post("/deployments", files=[("files", ("v.bpmn", VACATION))])
    client.post("/process-definitions/vacation-request/instances", json={})
    _wait(lambda: any(j.kind == "webhook" and j.attempts == 1 for j in api.engine.jobs(kind="webhook")))
    api.engine.run_jobs(now=utcnow() + timedelta(minutes=5))
    _wait(lambda: len(receiver.received) == 1)
    [job] = api.engine.jobs(kind="webhook")
    assert job.state == "done" and "503" in (job.last_error or "")


def test_subscription_validation(api: Api) -> None:
    client = api.client("integration")
    assert client.post("/webhooks", json={"url": "ftp://x", "events": ["task.created"]}).status_code == 422
    bad = client.post("/webhooks", json={"url": "http://example.test/h", "events": ["nope"]})
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    assert api.client("sales").get("/webhooks").status_code == 403
    assert client.delete("/webhooks/unknown").status_code == 404


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/api/v1/deployments", "http://localhost/x",
                                 "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hook",
                                 "http://[::1]:8080/hook", "http://0.0.0.0/hook"])
def test_internal_webhook_urls_are_refused_with_422(api: Api, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SILVERFLOW_OUTBOUND_ALLOW")  # the suite allows loopback for its receivers
    answer = api.client("integration").post("/webhooks", json={"url": url, "events": ["task.created"]})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["field"] == "url"
    assert "not allowed" in answer.json()["detail"] and "SILVERFLOW_OUTBOUND_ALLOW" in answer.json()["detail"]
    assert api.client("integration").get("/webhooks").json() == []


def test_an_allowed_internal_receiver_may_subscribe(api: Api, receiver: Receiver,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    monkeypatch.setenv("SILVERFLOW_OUTBOUND_ALLOW", f"127.0.0.1:{port}")
    client = api.client("integration")
    assert client.post("/webhooks", json={"url": receiver.url, "events": ["task.created"]}).status_code == 201
    other = "http://127.0.0.1:1/elsewhere"
    assert client.post("/webhooks", json={"url": other, "events": ["task.created"]}).status_code == 422
