"""A hardware supplier's order API (modems, routers, SFP modules) that ships and calls us back.

``POST /v1/orders`` accepts an order (a repeated ``Idempotency-Key`` returns the same order); after
``ship_after_seconds`` a background thread marks it shipped (tracking number, one serial number per unit) and,
when a callback URL is configured, POSTs our shipment notice to it with ``Authorization: Bearer <token>``,
retrying a few times with back-off if the callback fails. Numbers are sequential, so tests can predict them.
State is in memory and guarded by a lock; every call needs the ``X-Api-Key``.

    python -m connectors.simulators.supplier --port 8102 --api-key demo-supplier-key \
        --callback-url http://127.0.0.1:8000/api/v1/integrations/supplier/shipments --callback-token <api key>
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header
from pydantic import BaseModel, Field

from .api import ApiError, partner_api

DEFAULT_API_KEY = "demo-supplier-key"
DEFAULT_ARTICLES: Mapping[str, str] = {
    "FRITZ-7590": "AVM FRITZ!Box 7590 (VDSL/ADSL-Modem)",
    "FRITZ-7530": "AVM FRITZ!Box 7530 (VDSL-Modem)",
    "LANCOM-1793VA": "LANCOM 1793VA (VDSL-Business-Router)",
    "SFP-1G": "SFP-Modul 1000BASE-LX",
}
MAX_QUANTITY = 10  # per order: keeps the serial numbers of one shipment notice within its 200 characters
log = logging.getLogger("silverflow.simulators.supplier")


class AddressIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=200)
    postalCode: str = Field(min_length=1, max_length=20)
    city: str = Field(min_length=1, max_length=100)
    country: str = Field(default="DE", pattern=r"^[A-Z]{2}$")


class OrderIn(BaseModel):
    article: str = Field(min_length=1, max_length=100)
    quantity: int
    deliveryAddress: AddressIn
    reference: str = Field(min_length=1, max_length=200)


@dataclass
class Order:
    number: int
    request: OrderIn
    idempotency_key: str
    due: float  # time.monotonic() when it ships
    status: str = "accepted"
    tracking_number: str | None = None
    serial_numbers: list[str] = field(default_factory=list)
    callback_attempts: int = 0
    callback_delivered: bool = False
    callback_error: str | None = None

    @property
    def id(self) -> str:
        return f"SO-{self.number:06d}"


class SupplierState:
    """Orders by id and idempotency key, and the threads that ship them and send the callbacks."""

    def __init__(self, articles: Mapping[str, str], ship_after_seconds: float, callback_url: str | None,
                 callback_token: str | None, callback_attempts: int, callback_backoff_seconds: float) -> None:
        self.articles = dict(articles)
        self.ship_after_seconds = ship_after_seconds
        self.callback_url = callback_url
        self.callback_token = callback_token
        self.callback_attempts = callback_attempts
        self.callback_backoff_seconds = callback_backoff_seconds
        self._lock = threading.Lock()
        self._orders: dict[str, Order] = {}
        self._by_key: dict[str, Order] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def place(self, request: OrderIn, key: str) -> Order:
        if request.article not in self.articles:
            raise ApiError(422, "unknown_article", f"article '{request.article}' is not in the catalogue "
                           f"(known: {', '.join(sorted(self.articles))})")
        if not 1 <= request.quantity <= MAX_QUANTITY:
            raise ApiError(422, "invalid_quantity", f"quantity must be 1 to {MAX_QUANTITY}, not {request.quantity}")
        with self._lock:
            earlier = self._by_key.get(key)
            if earlier is not None:
                if earlier.request != request:
                    raise ApiError(422, "idempotency_key_reused",
                                   f"Idempotency-Key was used for order {earlier.id} with other contents")
                return earlier
            order = Order(len(self._orders) + 1, request, key, time.monotonic() + self.ship_after_seconds)
            self._orders[order.id] = order
            self._by_key[key] = order
            if self._stop.is_set():
                return order
            thread = threading.Thread(target=self._fulfil, args=(order.id,), daemon=True,
                                      name=f"supplier-{order.id}")
            self._threads.append(thread)
        thread.start()
        return order

    def get(self, order_id: str) -> Order | None:
        with self._lock:
            order = self._orders.get(order_id)
            if order is not None and order.status == "accepted" and time.monotonic() >= order.due:
                self._ship(order)  # a late thread does not make the answer late
            return order

    def orders(self) -> list[Order]:
        with self._lock:
            return sorted(self._orders.values(), key=lambda o: o.number)

    def _ship(self, order: Order) -> None:
        """Assigns tracking and serial numbers (caller holds the lock; idempotent)."""
        if order.status == "shipped":
            return
        order.status = "shipped"
        order.tracking_number = f"JJD{order.number:012d}"
        order.serial_numbers = [f"SN{order.number:06d}{unit:02d}" for unit in range(1, order.request.quantity + 1)]

    def notice(self, order: Order) -> dict[str, Any]:
        """Our shipment notice, as ``POST /api/v1/integrations/supplier/shipments`` takes it."""
        return {"orderId": order.id, "reference": order.request.reference, "trackingNumber": order.tracking_number,
                "serialNumber": ", ".join(order.serial_numbers), "article": order.request.article}

    def _fulfil(self, order_id: str) -> None:
        with self._lock:
            order = self._orders[order_id]
            wait = order.due - time.monotonic()
        if wait > 0 and self._stop.wait(wait):
            return
        with self._lock:
            self._ship(order)
            notice = self.notice(order)
        if self.callback_url:
            self._call_back(order, notice)

    def _call_back(self, order: Order, notice: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {self.callback_token}"} if self.callback_token else {}
        for attempt in range(1, self.callback_attempts + 1):
            error: str | None = None
            try:
                response = httpx.post(self.callback_url or "", json=notice, headers=headers, timeout=5)
                if not response.is_success:
                    error = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                order.callback_attempts = attempt
                order.callback_delivered = error is None
                order.callback_error = error
            if error is None:
                return
            log.warning("shipment notice for %s failed (attempt %d of %d): %s", order.id, attempt,
                        self.callback_attempts, error)
            if attempt < self.callback_attempts and self._stop.wait(self.callback_backoff_seconds * 2 ** (attempt - 1)):
                return

    def close(self) -> None:
        """Stops waiting shipments and callback retries (on app shutdown)."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=6)

    def view(self, order: Order) -> dict[str, Any]:
        with self._lock:
            result: dict[str, Any] = {
                "orderId": order.id, "status": order.status, "article": order.request.article,
                "quantity": order.request.quantity, "reference": order.request.reference,
                "deliveryAddress": order.request.deliveryAddress.model_dump()}
            if order.status == "shipped":
                result.update(trackingNumber=order.tracking_number, serialNumbers=list(order.serial_numbers))
            if self.callback_url:
                result["callback"] = {"attempts": order.callback_attempts, "delivered": order.callback_delivered,
                                      "error": order.callback_error}
            return result


def create_app(api_key: str, callback_url: str | None = None, callback_token: str | None = None,
               ship_after_seconds: float = 1.0, articles: Mapping[str, str] | None = None,
               callback_attempts: int = 5, callback_backoff_seconds: float = 0.5) -> FastAPI:
    """The supplier app; ``app.state.supplier`` is its :class:`SupplierState` (tests look inside)."""
    state = SupplierState(DEFAULT_ARTICLES if articles is None else articles, ship_after_seconds, callback_url,
                          callback_token, callback_attempts, callback_backoff_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="Supplier simulator", version="1", docs_url="/docs", redoc_url=None, lifespan=lifespan)
    app.state.supplier = state

    auth = partner_api(app, api_key)

    @app.get("/v1/articles", dependencies=auth)
    def catalogue() -> dict[str, Any]:
        return {"items": [{"article": a, "description": d} for a, d in sorted(state.articles.items())]}

    @app.post("/v1/orders", status_code=201, dependencies=auth)
    def place(body: OrderIn, idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> dict[str, Any]:
        if not idempotency_key:
            raise ApiError(400, "idempotency_key_missing", "the Idempotency-Key header is required")
        order = state.place(body, idempotency_key)
        return {"orderId": order.id, "status": order.status}

    @app.get("/v1/orders/{order_id}", dependencies=auth)
    def order(order_id: str) -> dict[str, Any]:
        found = state.get(order_id)
        if found is None:
            raise ApiError(404, "not_found", f"no order {order_id}")
        return state.view(found)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serves the simulator with Uvicorn."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Hardware supplier simulator (order API with shipment callback)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--callback-url", default=None, help="where shipment notices go (our integrations API)")
    parser.add_argument("--callback-token", default=None, help="bearer API key for the callback")
    parser.add_argument("--ship-after-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.ship_after_seconds < 0:
        parser.error("--ship-after-seconds must not be negative")
    if args.callback_url and not args.callback_url.startswith(("http://", "https://")):
        parser.error("--callback-url must be an http(s) URL")
    uvicorn.run(create_app(args.api_key, args.callback_url, args.callback_token, args.ship_after_seconds),
                host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
