"""No engine or database work on the event loop: a long deploy does not stall the login page.

Structurally, every ``async def`` endpoint is one of the few that only await the request body and hand the
work to the threadpool; behaviourally, ``/login`` answers at once while a 5 MB model deploys.
"""

from __future__ import annotations

import inspect
import statistics
import threading
import time

import httpx
from fastapi.routing import APIRoute

from api.app import create_app
from api.settings import Settings
from tests.support.live_app import Api

# They await the upload, then run the engine or the database with run_in_threadpool.
AWAIT_BODY_THEN_THREADPOOL = {"deploy", "import_accounts", "import_contacts", "import_products", "upload_document"}


def test_endpoints_doing_engine_work_are_plain_functions(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url), run_worker=False)
    coroutines = {route.endpoint.__name__ for route in app.routes
                  if isinstance(route, APIRoute) and inspect.iscoroutinefunction(route.endpoint)}
    assert coroutines <= AWAIT_BODY_THEN_THREADPOOL, \
        f"async endpoints run on the event loop: {sorted(coroutines - AWAIT_BODY_THEN_THREADPOOL)}"


def _large_model(tasks: int, padding: int) -> bytes:
    """A valid chain of ``tasks`` script tasks with long documentation: about ``tasks * padding`` bytes."""
    text = "Prüfschritt " * (padding // 12)
    elements, flows, previous = [], [], "start"
    for n in range(tasks):
        elements.append(f'<bpmn:scriptTask id="t{n}" name="Schritt {n}"><bpmn:documentation>{text}'
                        f'</bpmn:documentation><bpmn:script>x = {n}</bpmn:script></bpmn:scriptTask>')
        flows.append(f'<bpmn:sequenceFlow id="f{n}" sourceRef="{previous}" targetRef="t{n}" />')
        previous = f"t{n}"
    flows.append(f'<bpmn:sequenceFlow id="f_end" sourceRef="{previous}" targetRef="end" />')
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="big" '
            'targetNamespace="http://silverflow.example/bpmn">'
            '<bpmn:process id="big-model" name="Großes Modell" isExecutable="true">'
            '<bpmn:startEvent id="start" />' + "".join(elements) + '<bpmn:endEvent id="end" />' + "".join(flows)
            + "</bpmn:process></bpmn:definitions>").encode()


def test_login_page_answers_while_a_large_model_deploys(api: Api) -> None:
    model = _large_model(400, 11_000)
    assert len(model) > 4_500_000
    result: dict[str, object] = {}

    def deploy() -> None:
        started = time.monotonic()
        response = api.client("designer").post("/deployments", files=[("files", ("big.bpmn", model))])
        result["status"], result["seconds"] = response.status_code, time.monotonic() - started

    worker = threading.Thread(target=deploy)
    latencies: list[float] = []
    with httpx.Client(base_url=api.base_url, timeout=30) as probe:
        worker.start()
        while worker.is_alive():
            started = time.monotonic()
            assert probe.get("/login").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
    worker.join()
    assert result["status"] == 201, result
    assert len(latencies) >= 5, f"the deploy took only {result['seconds']:.2f} s: nothing to measure"
    assert statistics.median(latencies) < 0.1, f"login median {statistics.median(latencies) * 1000:.0f} ms"
    assert max(latencies) < 1.0, f"login stalled {max(latencies):.2f} s while the model deployed"
