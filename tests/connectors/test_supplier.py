"""supplier.order against the supplier simulator on loopback, and its shipment callback to a loopback receiver."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.routes.integrations import ShipmentIn
from connectors import supplier
from connectors.registry import BusinessError, ConnectorContext, InvalidParameters, Registry
from connectors.simulators.supplier import SupplierState, create_app
from connectors.supplier import SupplierAuthError, SupplierConfig, SupplierError
from tests.support.servers import serve_app

KEY = "test-supplier-secret"
CALLBACK_TOKEN = "integration-api-key"
SHIPMENTS = "/api/v1/integrations/supplier/shipments"
ADDRESS = {"name": "Müller Bau GmbH", "street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin"}


def ctx(key: str = "inst-7:order_modem:1", business_key: str | None = "ORD-2024-0007") -> ConnectorContext:
    return ConnectorContext(key, "inst-7", "order_modem", business_key)


def registry_for(url: str, api_key: str = KEY) -> Registry:
    registry = Registry()
    supplier.register(registry, SupplierConfig(url=url, api_key=api_key, request_timeout=2.0))
    return registry


@dataclass
class Receiver:
    """Our shipment endpoint stand-in: refuses the first notice (503), records the rest."""

    url: str = ""
    received: list[tuple[str | None, Any]] = field(default_factory=list)
    refused: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    result = Receiver()
    app = FastAPI()

    @app.post(SHIPMENTS)
    async def shipment(request: Request) -> JSONResponse:
        if result.refused == 0:
            result.refused += 1
            return JSONResponse({"detail": "busy"}, status_code=503)
        result.received.append((request.headers.get("Authorization"), await request.json()))
        result.arrived.set()
        return JSONResponse({"deliveredTo": ["inst-7"], "started": [], "buffered": False})

    with serve_app(app) as url:
        result.url = url + SHIPMENTS
        yield result


@pytest.fixture
def simulator(receiver: Receiver) -> Iterator[tuple[str, SupplierState]]:
    app = create_app(KEY, callback_url=receiver.url, callback_token=CALLBACK_TOKEN, ship_after_seconds=0.2,
                     callback_backoff_seconds=0.05)
    with serve_app(app) as url:
        yield url, app.state.supplier


def order(registry: Registry, context: ConnectorContext | None = None, **params: Any) -> Any:
    return registry.run("supplier.order", {"article": "FRITZ-7590", "quantity": 1, "delivery_address": ADDRESS,
                                           **params}, context or ctx())


def test_an_order_is_accepted_with_our_business_key_as_reference(simulator: tuple[str, SupplierState]) -> None:
    url, state = simulator
    assert order(registry_for(url)) == {"orderId": "SO-000001", "status": "accepted"}
    [placed] = state.orders()
    assert placed.request.reference == "ORD-2024-0007" and placed.idempotency_key == "inst-7:order_modem:1"
    assert placed.request.deliveryAddress.postalCode == "10115" and placed.request.deliveryAddress.country == "DE"
    order(registry_for(url), ctx("inst-8:order_modem:1"), article="SFP-1G", quantity=2, reference="ORD-X",
          delivery_address={**ADDRESS, "postalCode": "20095", "country": "AT"})
    second = state.orders()[1].request
    assert (second.reference, second.quantity, second.deliveryAddress.postalCode, second.deliveryAddress.country) \
        == ("ORD-X", 2, "20095", "AT")


def test_the_same_idempotency_key_gets_the_same_order(simulator: tuple[str, SupplierState]) -> None:
    url, state = simulator
    first = order(registry_for(url))
    assert order(registry_for(url)) == first
    assert order(registry_for(url), ctx("another-job"))["orderId"] != first["orderId"]
    assert len(state.orders()) == 2


def test_our_product_codes_are_ordered_as_the_supplier_s_articles(simulator: tuple[str, SupplierState]) -> None:
    order(registry_for(simulator[0]), article="MODEM-SDSL")  # the demo catalogue's code for the LANCOM router
    assert [o.request.article for o in simulator[1].orders()] == ["LANCOM-1793VA"]
    with pytest.raises(BusinessError, match="'MODEM-X'") as raised:
        order(registry_for(simulator[0]), ctx("k2"), article="MODEM-X")
    assert raised.value.code == "ArticleUnknown"


def test_refusals_are_business_errors(simulator: tuple[str, SupplierState]) -> None:
    with pytest.raises(BusinessError) as raised:
        order(registry_for(simulator[0]), article="FRITZ-9999")
    assert raised.value.code == "ArticleUnknown" and raised.value.data["article"] == "FRITZ-9999"
    with pytest.raises(BusinessError) as raised:  # the supplier ships at most 10 per order
        order(registry_for(simulator[0]), quantity=50)
    assert raised.value.code == "SupplierRejected" and raised.value.data["error"] == "invalid_quantity"
    assert simulator[1].orders() == []


def test_the_shipment_notice_reaches_our_endpoint_with_the_bearer_token(
        simulator: tuple[str, SupplierState], receiver: Receiver) -> None:
    url, _ = simulator
    placed = order(registry_for(url), quantity=2)
    assert receiver.arrived.wait(5), "no shipment notice arrived"
    [(authorization, notice)] = receiver.received
    assert authorization == f"Bearer {CALLBACK_TOKEN}"
    assert notice == {"orderId": placed["orderId"], "reference": "ORD-2024-0007", "trackingNumber": "JJD000000000001",
                      "serialNumber": "SN00000101, SN00000102", "article": "FRITZ-7590"}
    assert receiver.refused == 1  # the first try was refused and retried
    ShipmentIn.model_validate(notice)  # our inbound webhook takes it as it is
    shown = httpx.get(f"{url}/v1/orders/{placed['orderId']}", headers={"X-Api-Key": KEY}).json()
    assert shown["status"] == "shipped" and shown["trackingNumber"] == "JJD000000000001"
    assert shown["serialNumbers"] == ["SN00000101", "SN00000102"]
    assert shown["callback"] == {"attempts": 2, "delivered": True, "error": None}


def test_parameters_are_validated_by_the_registry(simulator: tuple[str, SupplierState]) -> None:
    registry = registry_for(simulator[0])
    with pytest.raises(InvalidParameters, match="quantity"):
        order(registry, quantity=0)
    with pytest.raises(InvalidParameters, match=r"delivery_address\.postalCode: Field required"):
        order(registry, delivery_address={"name": "X", "street": "Y", "city": "Z"})
    with pytest.raises(InvalidParameters, match="reference is required"):
        order(registry, ctx(business_key=None))
    assert simulator[1].orders() == []
    assert registry.check("supplier.order", {"article", "delivery_address"}) is None


def test_server_errors_bad_keys_and_unreachable_suppliers_are_technical(
        simulator: tuple[str, SupplierState]) -> None:
    app = FastAPI()

    @app.post("/v1/orders")
    async def down() -> JSONResponse:
        return JSONResponse({"error": "maintenance", "message": "warehouse offline"}, status_code=502)

    with serve_app(app) as failing:
        with pytest.raises(SupplierError, match="HTTP 502.*warehouse offline") as raised:
            order(registry_for(failing))
        assert not isinstance(raised.value, BusinessError)
    with pytest.raises(SupplierAuthError, match="SILVERFLOW_SUPPLIER_API_KEY") as auth:
        order(registry_for(simulator[0], api_key="wrong-key"))
    assert "wrong-key" not in str(auth.value) and KEY not in repr(SupplierConfig(api_key=KEY))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(SupplierError, match="unreachable"):
        order(registry_for(closed))


def test_the_simulator_contract(simulator: tuple[str, SupplierState]) -> None:
    url = simulator[0]
    body = {"article": "LANCOM-1793VA", "quantity": 1, "reference": "R-1",
            "deliveryAddress": {"name": "N", "street": "S", "postalCode": "1", "city": "C"}}
    with httpx.Client(base_url=url, headers={"X-Api-Key": KEY}) as client:
        assert httpx.post(f"{url}/v1/orders", json=body).status_code == 401
        assert client.post("/v1/orders", json=body).status_code == 400  # no Idempotency-Key
        created = client.post("/v1/orders", json=body, headers={"Idempotency-Key": "k"})
        assert created.status_code == 201 and created.json() == {"orderId": "SO-000001", "status": "accepted"}
        reused = client.post("/v1/orders", json={**body, "quantity": 3}, headers={"Idempotency-Key": "k"})
        assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
        for bad, error in (({"article": "X"}, "unknown_article"), ({"quantity": 0}, "invalid_quantity"),
                           ({"deliveryAddress": {"name": "N"}}, "invalid_request")):
            answer = client.post("/v1/orders", json={**body, **bad}, headers={"Idempotency-Key": f"k-{error}"})
            assert answer.status_code == 422 and answer.json()["error"] == error
        assert client.get("/v1/orders/SO-999999").status_code == 404
        assert "FRITZ-7530" in [a["article"] for a in client.get("/v1/articles").json()["items"]]


def test_without_a_callback_url_the_order_still_ships() -> None:
    app = create_app(KEY, ship_after_seconds=0.0)
    with serve_app(app) as url:
        placed = order(registry_for(url))
        shown = httpx.get(f"{url}/v1/orders/{placed['orderId']}", headers={"X-Api-Key": KEY}).json()
        assert shown["status"] == "shipped" and "callback" not in shown


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SILVERFLOW_SUPPLIER_"):
            monkeypatch.delenv(name)
    assert SupplierConfig.from_env() == SupplierConfig(url="http://127.0.0.1:8102", api_key="demo-supplier-key")
    monkeypatch.setenv("SILVERFLOW_SUPPLIER_URL", "https://shop.example")
    monkeypatch.setenv("SILVERFLOW_SUPPLIER_API_KEY", "k")
    assert SupplierConfig.from_env() == SupplierConfig(url="https://shop.example", api_key="k")
    monkeypatch.setenv("SILVERFLOW_SUPPLIER_ARTICLES", "MODEM-1=FRITZ-7590, SFP=SFP-1G")
    assert SupplierConfig.from_env().articles == {"MODEM-1": "FRITZ-7590", "SFP": "SFP-1G"}
    monkeypatch.setenv("SILVERFLOW_SUPPLIER_ARTICLES", "MODEM-1")
    with pytest.raises(ValueError, match="SILVERFLOW_SUPPLIER_ARTICLES must look like"):
        SupplierConfig.from_env()
    monkeypatch.delenv("SILVERFLOW_SUPPLIER_ARTICLES")
    monkeypatch.setenv("SILVERFLOW_SUPPLIER_TIMEOUT", "-1")
    with pytest.raises(ValueError, match="SILVERFLOW_SUPPLIER_TIMEOUT must be greater than 0"):
        SupplierConfig.from_env()
