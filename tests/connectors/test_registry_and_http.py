"""The connector registry (typed parameters, deploy-time checks) and http.request against a loopback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors import default_registry
from connectors.registry import BusinessError, ConnectorContext, InvalidParameters, UnknownOperator

CONTEXT = ConnectorContext("inst-1:task-1", "inst-1", "call")


@pytest.fixture
def server() -> Iterator[str]:
    seen: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append({"path": self.path, "key": self.headers.get("Idempotency-Key"), "body": body})
            status = 404 if self.path.startswith("/missing") else 201
            payload = json.dumps({"echo": body, "path": self.path}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_request_sends_the_idempotency_key_and_returns_the_answer(server: str) -> None:
    result = default_registry().run("http.request", {"url": f"{server}/orders", "method": "POST",
                                                     "json_body": {"n": 1}}, CONTEXT)
    assert result["status"] == 201
    assert result["body"] == {"echo": {"n": 1}, "path": "/orders"}


def test_non_2xx_is_a_business_error_with_the_status(server: str) -> None:
    with pytest.raises(BusinessError) as raised:
        default_registry().run("http.request", {"url": f"{server}/missing"}, CONTEXT)
    assert raised.value.code == "HTTP404" and raised.value.data["status"] == 404


def test_transport_failure_is_a_technical_error() -> None:
    import httpx

    with pytest.raises(httpx.TransportError):
        default_registry().run("http.request", {"url": "http://127.0.0.1:9/", "timeout": 2}, CONTEXT)


def test_invalid_parameters_name_the_field() -> None:
    with pytest.raises(InvalidParameters, match="method"):
        default_registry().run("http.request", {"url": "http://x", "method": "FETCH"}, CONTEXT)
    with pytest.raises(UnknownOperator):
        default_registry().run("nope", {}, CONTEXT)


def test_deploy_time_check() -> None:
    registry = default_registry()
    assert registry.check("http.request", {"url", "method"}) is None
    assert "missing parameter(s) url" in (registry.check("http.request", {"method"}) or "")
    assert "unknown parameter(s) colour" in (registry.check("http.request", {"url", "colour"}) or "")
    assert "unknown operator 'nope'" in (registry.check("nope", set()) or "")
    assert registry.check("echo", {"anything"}) is None  # echo takes whatever it is given


def test_sleep_and_fail() -> None:
    registry = default_registry()
    assert registry.run("sleep", {"seconds": 0}, CONTEXT) == {"slept": 0}
    with pytest.raises(BusinessError, match="Nope"):
        registry.run("fail", {"code": "Nope"}, CONTEXT)
