"""Messages (correlated by name, business key and correlation keys) and signals (broadcast)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ..deps import engine_of
from ..idempotency import idempotent
from ..identity import Principal
from ..models import MessageIn, MessageOut, SignalIn, SignalOut
from ..security import require

router = APIRouter(tags=["events"])


@router.post("/messages", response_model=MessageOut)
def correlate(request: Request, body: MessageIn,
              principal: Annotated[Principal, Depends(require("integration", "manager", "clerk"))]) -> object:
    def deliver() -> MessageOut:
        result = engine_of(request).correlate(
            body.name, body.variables, business_key=body.business_key,
            correlation_keys=body.correlation_keys or None, user=principal.name,
            buffer_seconds=body.ttl_seconds if body.buffer else None)
        return MessageOut(delivered_to=[v.id for v in result.delivered], started=[v.id for v in result.started],
                          buffered=result.buffered)

    return idempotent(request, principal, f"message:{body.name}", 200, deliver)


@router.post("/signals", response_model=SignalOut)
def broadcast(request: Request, body: SignalIn,
              principal: Annotated[Principal, Depends(require("integration", "manager"))]) -> SignalOut:
    reached = engine_of(request).broadcast_signal(body.name, body.variables, user=principal.name)
    return SignalOut(delivered_to=[v.id for v in reached])
