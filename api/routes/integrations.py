"""Inbound calls of external systems that continue waiting processes (e.g. the supplier's shipment notice)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from ..deps import engine_of
from ..identity import Principal
from ..models import Camel, MessageOut
from ..security import require

router = APIRouter(tags=["integrations"])
SHIPMENT_MESSAGE = "shipment_received"


class ShipmentIn(Camel):
    order_id: str = Field(min_length=1, max_length=200)
    reference: str = Field(min_length=1, max_length=200, description="our business key given with the order")
    tracking_number: str = Field(min_length=1, max_length=200)
    serial_number: str | None = Field(default=None, max_length=200)
    article: str | None = Field(default=None, max_length=200)


@router.post("/integrations/supplier/shipments", response_model=MessageOut)
def supplier_shipment(request: Request, body: ShipmentIn,
                      principal: Annotated[Principal, Depends(require("integration"))]) -> MessageOut:
    """The supplier reports a shipment: the instance waiting for it (by business key) continues; kept for a
    day if it is not waiting yet."""
    result = engine_of(request).correlate(
        SHIPMENT_MESSAGE, {"shipment": body.model_dump(mode="json")}, business_key=body.reference,
        user=principal.name, buffer_seconds=86400)
    return MessageOut(delivered_to=[v.id for v in result.delivered], started=[v.id for v in result.started],
                      buffered=result.buffered)
