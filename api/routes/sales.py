"""CRM sales resources: quotes, orders with sub-orders, booked services, invoices and contracts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["sales"])
