"""Booked services (``crm.booked_services``): recurring products of a customer, booked by hand or from an
order, with their provisioning data and life cycle (activate, suspend, resume, cancel).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy.engine import Connection

from crm import booked_services as crm_services
from crm import orders as crm_orders
from crm import queries as crm_queries
from engine.errors import NotFound

from ..deps import (
    AccountFilter,
    Day,
    Id,
    Limit,
    Offset,
    Quantity,
    Reader,
    RefId,
    Search,
    StatusFilter,
    Writer,
    crm_errors,
    engine_of,
    found,
    utc_today,
)
from ..listing import camel_row, page
from ..models import Camel

router = APIRouter(tags=["sales"])


class ServiceIn(Camel):
    account_id: RefId
    product_id: RefId
    quantity: Quantity = Decimal(1)


class ProvisioningPatch(Camel):
    domain_name: str | None = Field(default=None, max_length=253)
    ip_address: str | None = Field(default=None, max_length=49)
    modem_serial: str | None = Field(default=None, max_length=100)


class ActivationIn(Camel):
    start_date: Day | None = None
    contract_end: Day | None = None


def _service_view(conn: Connection, service_id: int) -> dict[str, Any]:
    row = crm_queries.get_booked_service_view(conn, service_id)
    if row is None:
        raise NotFound(f"booked service {service_id} does not exist")
    return camel_row(row)


@router.post("/orders/{order_id}/services", status_code=201)
def book_order_services(request: Request, order_id: Id, _p: Writer) -> dict[str, Any]:
    """Record the order's recurring positions as booked services of the customer (once per order)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_orders.get_order, conn, order_id)
        with crm_errors("order_id"):
            ids = crm_services.book_order_services(conn, order_id)
        return {"items": [_service_view(conn, service_id) for service_id in ids]}


@router.get("/services")
def list_services(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                  q: Search = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Booked services, newest first; ``q`` searches account, product and domain; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_booked_services(conn, account_id, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "services")


@router.post("/services", status_code=201)
def book_service(request: Request, body: ServiceIn, _p: Writer) -> dict[str, Any]:
    """Book a recurring product on an account (status ``ordered``)."""
    with engine_of(request).db.transaction() as conn, crm_errors(too_large="quantity"):
        service_id = crm_services.book_service(conn, body.account_id, body.product_id, body.quantity)
        return _service_view(conn, service_id)


@router.get("/services/{service_id}")
def get_service(request: Request, service_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return _service_view(conn, service_id)


@router.patch("/services/{service_id}")
def patch_service(request: Request, service_id: Id, body: ProvisioningPatch, _p: Writer) -> dict[str, Any]:
    """Provisioning data from production; each value given replaces the stored one."""
    with engine_of(request).db.transaction() as conn:
        found(crm_services.get_service, conn, service_id)
        with crm_errors():
            crm_services.set_provisioning(conn, service_id, **body.model_dump())
        return _service_view(conn, service_id)


def _service_action(request: Request, service_id: int, action: Callable[[Connection, int], None]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        found(crm_services.get_service, conn, service_id)
        with crm_errors("status"):
            action(conn, service_id)
        return _service_view(conn, service_id)


@router.post("/services/{service_id}/activate")
def activate_service(request: Request, service_id: Id, _p: Writer,
                     body: ActivationIn | None = None) -> dict[str, Any]:
    """The service runs (and is billed) from ``startDate``, today unless given."""
    start = (body.start_date if body else None) or utc_today()
    end = body.contract_end if body else None
    return _service_action(request, service_id,
                           lambda conn, sid: crm_services.activate_service(conn, sid, start, end))


@router.post("/services/{service_id}/suspend")
def suspend_service(request: Request, service_id: Id, _p: Writer) -> dict[str, Any]:
    return _service_action(request, service_id, crm_services.suspend_service)


@router.post("/services/{service_id}/resume")
def resume_service(request: Request, service_id: Id, _p: Writer) -> dict[str, Any]:
    return _service_action(request, service_id, crm_services.resume_service)


@router.post("/services/{service_id}/cancel")
def cancel_service(request: Request, service_id: Id, _p: Writer) -> dict[str, Any]:
    return _service_action(request, service_id, crm_services.cancel_service)
