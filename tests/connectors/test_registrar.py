"""domain.check / domain.register against the registrar simulator served by a real Uvicorn on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors import registrar
from connectors.registrar import RegistrarAuthError, RegistrarConfig, RegistrarError
from connectors.registry import BusinessError, ConnectorContext, InvalidParameters, Registry
from connectors.simulators.registrar import RegistrarState, create_app
from tests.support.servers import serve_app

KEY = "test-registrar-secret"
OWNER = {"owner_handle": "DENIC-1000-MUELLER", "admin_handle": "DENIC-1000-ADMIN"}


def ctx(key: str = "inst-1:register_domain:1") -> ConnectorContext:
    return ConnectorContext(key, "inst-1", "register_domain", "ORD-1")


def registry_for(url: str, **config: object) -> Registry:
    registry = Registry()
    settings = {"url": url, "api_key": KEY, "poll_interval": 0.05, "poll_timeout": 3.0, "request_timeout": 2.0}
    registrar.register(registry, RegistrarConfig(**{**settings, **config}))  # type: ignore[arg-type]
    return registry


@pytest.fixture
def simulator() -> Iterator[tuple[str, RegistrarState]]:
    app = create_app(KEY, activation_seconds=0.2)
    with serve_app(app) as url:
        yield url, app.state.registrar


def test_check_tells_available_and_taken_domains(simulator: tuple[str, RegistrarState]) -> None:
    registry = registry_for(simulator[0])
    assert registry.run("domain.check", {"domain": "mueller-bau.de"}, ctx()) == \
        {"domain": "mueller-bau.de", "available": True}
    assert registry.run("domain.check", {"domain": " Telekom.DE "}, ctx()) == \
        {"domain": "telekom.de", "available": False}
    with pytest.raises(BusinessError) as raised:
        registry.run("domain.check", {"domain": "kein domain"}, ctx())
    assert raised.value.code == "RegistrarRejected" and raised.value.data["error"] == "invalid_domain"


def test_register_waits_until_the_domain_is_active(simulator: tuple[str, RegistrarState],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    url, state = simulator
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        result = registry_for(url).run("domain.register", {"domain": "Mueller-Bau.de", **OWNER}, ctx())
    assert time.monotonic() - started >= 0.2  # it was pending first
    assert result == {"domain": "mueller-bau.de", "registrationId": "reg-000001", "status": "active"}
    [registration] = state.registrations()
    assert registration.idempotency_key == "inst-1:register_domain:1"
    assert registration.nameservers == list(RegistrarConfig().nameservers)  # the configured default
    assert registration.owner_handle == "DENIC-1000-MUELLER"
    assert registry_for(url).run("domain.check", {"domain": "mueller-bau.de"}, ctx())["available"] is False
    assert KEY not in caplog.text and "mueller-bau.de" in caplog.text


def test_taken_domains_are_a_business_error(simulator: tuple[str, RegistrarState]) -> None:
    registry = registry_for(simulator[0])
    for domain in ("google.de", "example.com"):
        with pytest.raises(BusinessError) as raised:
            registry.run("domain.register", {"domain": domain, **OWNER}, ctx())
        assert raised.value.code == "DomainUnavailable"
    registry.run("domain.register", {"domain": "schmidt-it.de", "nameservers": ["ns1.kunde.de", "ns2.kunde.de"],
                                     **OWNER}, ctx("first"))
    with pytest.raises(BusinessError) as raised:  # another job (another key) wants the same domain
        registry.run("domain.register", {"domain": "schmidt-it.de", **OWNER}, ctx("second"))
    assert raised.value.code == "DomainUnavailable"
    assert [r.nameservers for r in simulator[1].registrations()] == [["ns1.kunde.de", "ns2.kunde.de"]]


def test_poll_timeout_is_technical_and_the_retry_does_not_register_twice() -> None:
    app = create_app(KEY, activation_seconds=0.6)
    with serve_app(app) as url:
        with pytest.raises(RegistrarError, match="still pending") as raised:
            registry_for(url, poll_timeout=0.15).run("domain.register", {"domain": "lang-dauer.de", **OWNER}, ctx())
        assert not isinstance(raised.value, BusinessError)
        # the engine retries the job with the same idempotency key
        result = registry_for(url).run("domain.register", {"domain": "lang-dauer.de", **OWNER}, ctx())
        assert result["status"] == "active"
        state: RegistrarState = app.state.registrar
        assert [(r.id, r.domain) for r in state.registrations()] == [(result["registrationId"], "lang-dauer.de")]
        listed = httpx.get(f"{url}/v1/domains", headers={"X-Api-Key": KEY}).json()["items"]
        assert len(listed) == 1 and listed[0]["status"] == "active"


@pytest.fixture
def failing() -> Iterator[str]:
    """A registrar that is down (503) and one that is too slow to answer."""
    app = FastAPI()

    @app.get("/slow/v1/domains/{name}/check")
    async def slow(name: str) -> dict[str, object]:
        await asyncio.sleep(0.5)
        return {"domain": name, "available": True}

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def down(request: Request, path: str) -> JSONResponse:
        return JSONResponse({"error": "maintenance", "message": "back at 06:00"}, status_code=503)

    with serve_app(app) as url:
        yield url


def test_server_errors_timeouts_and_unreachable_servers_are_technical(failing: str) -> None:
    with pytest.raises(RegistrarError, match="HTTP 503.*back at 06:00"):
        registry_for(failing).run("domain.register", {"domain": "kunde.de", **OWNER}, ctx())
    with pytest.raises(RegistrarError, match="HTTP 503"):
        registry_for(failing).run("domain.check", {"domain": "kunde.de"}, ctx())
    with pytest.raises(RegistrarError, match="did not answer"):
        registry_for(f"{failing}/slow", request_timeout=0.1).run("domain.check", {"domain": "kunde.de"}, ctx())
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(RegistrarError, match="unreachable"):
        registry_for(closed).run("domain.check", {"domain": "kunde.de"}, ctx())


def test_a_wrong_api_key_is_a_clear_technical_error(simulator: tuple[str, RegistrarState]) -> None:
    with pytest.raises(RegistrarAuthError, match="SILVERFLOW_REGISTRAR_API_KEY") as raised:
        registry_for(simulator[0], api_key="wrong-key").run("domain.register", {"domain": "a-b.de", **OWNER}, ctx())
    assert "wrong-key" not in str(raised.value)
    assert simulator[1].registrations() == []
    assert KEY not in repr(RegistrarConfig(api_key=KEY))


def test_the_simulator_contract(simulator: tuple[str, RegistrarState]) -> None:
    url = simulator[0]
    with httpx.Client(base_url=url, headers={"X-Api-Key": KEY}) as client:
        assert httpx.get(f"{url}/v1/domains/a.de/check").status_code == 401
        assert httpx.get(f"{url}/v1/domains/a.de/check", headers={"X-Api-Key": "nope"}).json() == \
            {"error": "unauthorized", "message": "missing or wrong X-Api-Key"}
        body = {"domain": "neu-kunde.de", "ownerHandle": "O", "adminHandle": "A", "nameservers": ["ns1.x.de"]}
        assert client.post("/v1/domains", json=body).status_code == 400  # no Idempotency-Key
        first = client.post("/v1/domains", json=body, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 202 and first.json() == {"id": "reg-000001", "domain": "neu-kunde.de",
                                                             "status": "pending"}
        assert client.get("/v1/domains/neu-kunde.de").json()["status"] == "pending"
        again = client.post("/v1/domains", json=body, headers={"Idempotency-Key": "k1"})
        assert again.json()["id"] == "reg-000001"
        other = client.post("/v1/domains", json=body, headers={"Idempotency-Key": "k2"})
        assert other.status_code == 409 and other.json()["error"] == "domain_taken"
        invalid = client.post("/v1/domains", json={**body, "domain": "-x.de"}, headers={"Idempotency-Key": "k3"})
        assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_domain"
        assert client.get("/v1/domains/nobody.de").status_code == 404
        time.sleep(0.25)
        assert client.get("/v1/domains/neu-kunde.de").json()["status"] == "active"


def test_parameters_are_checked_before_any_call() -> None:
    registry = registry_for("http://127.0.0.1:9")
    with pytest.raises(InvalidParameters, match="owner_handle"):
        registry.run("domain.register", {"domain": "kunde.de", "admin_handle": "A"}, ctx())
    with pytest.raises(InvalidParameters, match="nameservers"):
        registry.run("domain.register", {"domain": "kunde.de", "nameservers": [], **OWNER}, ctx())
    assert registry.check("domain.register", {"domain", "owner_handle", "admin_handle"}) is None
    assert "missing parameter(s) domain" in (registry.check("domain.check", set()) or "")


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SILVERFLOW_REGISTRAR_"):
            monkeypatch.delenv(name)
    assert RegistrarConfig.from_env() == RegistrarConfig()
    assert RegistrarConfig().url == "http://127.0.0.1:8101" and RegistrarConfig().api_key == "demo-registrar-key"
    monkeypatch.setenv("SILVERFLOW_REGISTRAR_URL", "https://reseller.example/api")
    monkeypatch.setenv("SILVERFLOW_REGISTRAR_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("SILVERFLOW_REGISTRAR_NAMESERVERS", "ns1.isp.de, ns2.isp.de")
    config = RegistrarConfig.from_env()
    assert (config.url, config.poll_interval, config.nameservers) == \
        ("https://reseller.example/api", 0.5, ("ns1.isp.de", "ns2.isp.de"))
    monkeypatch.setenv("SILVERFLOW_REGISTRAR_POLL_TIMEOUT", "bald")
    with pytest.raises(ValueError, match="SILVERFLOW_REGISTRAR_POLL_TIMEOUT must be a number"):
        RegistrarConfig.from_env()


def test_python_m_serves_the_simulator() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "connectors.simulators.registrar", "--port", str(port),
                                "--api-key", "cli-key", "--activation-seconds", "0"], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/domains/telekom.de/check",
                                   headers={"X-Api-Key": "cli-key"}, timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the simulator exited"
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.05)
        assert answer.json() == {"domain": "telekom.de", "available": False}
    finally:
        process.terminate()
        process.wait(timeout=10)
