"""Outbound allow/deny policy (issue 21 item 6, SSRF): http.request and webhook deliveries reach loopback,
link-local, private and unspecified addresses only when SILVERFLOW_OUTBOUND_ALLOW lists them; every resolved
address is checked, redirects are not followed, and a refusal is a clear business error that is not retried."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api.services import ConnectorGateway
from connectors import default_registry, outbound
from connectors.registry import BusinessError, ConnectorContext
from engine.database import Database
from engine.runtime import Engine
from tests.engine.conftest import bpmn

CONTEXT = ConnectorContext("inst-1:task-1", "inst-1", "call")


class Loopback:
    """A real HTTP server on 127.0.0.1 counting requests; ``/redirect`` answers 302 to ``target``."""

    def __init__(self, target: str = "") -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "11")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def deny_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite allows loopback (tests/conftest.py); here the shipped default applies: nothing allowed."""
    monkeypatch.delenv(outbound.ALLOW_ENV, raising=False)
    monkeypatch.delenv(outbound.DENY_ENV, raising=False)


def run(url: str) -> dict[str, object]:
    return default_registry().run("http.request", {"url": url, "timeout": 3}, CONTEXT)


@pytest.mark.parametrize("url, kind", [
    ("http://127.0.0.1:{port}/", "loopback"),
    ("http://localhost:{port}/", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/", "loopback"),
    ("http://2130706433:{port}/", "loopback"),  # 127.0.0.1 as one decimal number
    ("http://0.0.0.0:{port}/", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.1.2.3/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://172.16.5.5/", "private"),
    ("http://100.64.0.1/", "shared"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd00::1]/", "private"),
])
def test_internal_addresses_are_refused_without_a_connection(loopback: Loopback, url: str, kind: str) -> None:
    began = time.monotonic()
    with pytest.raises(BusinessError) as info:
        run(url.format(port=loopback.port))
    assert info.value.code == "OutboundNotAllowed"
    assert kind in info.value.message and outbound.ALLOW_ENV in info.value.message
    assert loopback.hits == 0
    assert time.monotonic() - began < 2


def test_other_schemes_are_refused() -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/", "gopher://127.0.0.1:70/"):
        with pytest.raises(BusinessError, match="only http and https"):
            run(url)


def test_an_explicit_allow_opens_exactly_that_address_and_port(loopback: Loopback,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(outbound.ALLOW_ENV, f"10.0.0.0/8, 127.0.0.1:{loopback.port}")
    assert run(f"{loopback.url}/x")["body"] == {"ok": True}
    other = Loopback()
    try:
        with pytest.raises(BusinessError, match="not allowed"):
            run(f"{other.url}/x")  # same address, another port
        assert other.hits == 0
    finally:
        other.close()


def test_a_network_allow_and_the_deny_list(loopback: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(outbound.ALLOW_ENV, "127.0.0.0/8")
    assert run(loopback.url)["status"] == 200
    monkeypatch.setenv(outbound.DENY_ENV, f"127.0.0.1:{loopback.port}")
    with pytest.raises(BusinessError, match="deny list"):
        run(loopback.url)


def test_redirects_to_internal_addresses_are_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    inner = Loopback()
    outer = Loopback(target=f"{inner.url}/secret")
    try:
        monkeypatch.setenv(outbound.ALLOW_ENV, f"127.0.0.1:{outer.port}")
        result = run(f"{outer.url}/redirect")
        assert result["status"] == 302 and inner.hits == 0
    finally:
        inner.close()
        outer.close()


def test_the_connection_goes_to_a_checked_address(loopback: Loopback) -> None:
    # The backend resolves, checks and connects in one place, so a name that resolves differently at connect
    # time than at the pre-check (DNS rebinding) is checked again where it counts.
    backend = outbound._CheckedBackend()  # noqa: SLF001
    with pytest.raises(outbound.OutboundRefused):
        backend.connect_tcp("localhost", loopback.port)
    outbound.allow(f"127.0.0.1:{loopback.port}")
    try:
        backend.connect_tcp("localhost", loopback.port).close()
    finally:
        outbound.disallow(f"127.0.0.1:{loopback.port}")


def test_webhook_delivery_is_refused_for_internal_addresses(loopback: Loopback) -> None:
    with pytest.raises(outbound.OutboundRefused):
        default_registry().run("webhook.deliver", {"url": loopback.url, "secret": "s" * 16, "event": "e",
                                                   "delivery": "d", "body": {}}, CONTEXT)
    assert loopback.hits == 0


def test_a_process_calling_an_internal_address_fails_with_the_business_error(sqlite_url: str) -> None:
    # The refusal reaches the process as the business error OutboundNotAllowed (an error boundary event can catch
    # it); uncaught, the job records it as its error (the engine's policy for uncaught business errors applies).
    engine = Engine(Database(sqlite_url), ConnectorGateway(default_registry()))
    try:
        engine.deploy(bpmn("jobs_http.bpmn"))
        instance = engine.start("jobs-http", {"url": "http://169.254.169.254/latest/meta-data/", "n": 1})
        began = time.monotonic()
        engine.run_jobs()
        assert time.monotonic() - began < 2  # refused before any connection attempt
        [job] = engine.jobs(instance_id=instance.id)
        assert job.attempts == 1 and "business error OutboundNotAllowed" in (job.last_error or "")
        assert engine.get_instance(instance.id).state == "running"
    finally:
        engine.db.dispose()
