"""Webhook subscriptions: a URL receives signed events (instance completed, task created, incident raised)."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Request, Response

from connectors.outbound import OutboundRefused, check_url
from engine import webhooks

from ..deps import engine_of
from ..identity import Principal
from ..models import WebhookIn, WebhookOut
from ..problems import problem
from ..security import require

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks", response_model=WebhookOut, status_code=201)
def subscribe(request: Request, body: WebhookIn,
              principal: Annotated[Principal, Depends(require("integration"))]) -> WebhookOut | Response:
    """The secret (generated unless given) is returned once; receivers verify X-Silverflow-Signature with it.
    A URL whose host is not allowed for outbound calls (loopback, private, link-local unless
    SILVERFLOW_OUTBOUND_ALLOW lists it) answers 422."""
    try:
        check_url(body.url)
    except OutboundRefused as refused:
        return problem(422, "Invalid request", str(refused), "validation", [{"field": "url", "message": str(refused)}])
    except httpx.HTTPError:
        pass  # not resolvable now: each delivery checks again (and retries while the host is unknown)
    with engine_of(request).db.transaction() as conn:
        view = webhooks.subscribe(conn, body.url, body.events, principal.name, body.secret)
    return WebhookOut(**view.__dict__)


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(request: Request, _p: Annotated[Principal, Depends(require("integration"))]) -> list[WebhookOut]:
    with engine_of(request).db.read() as conn:
        return [WebhookOut(**v.__dict__) for v in webhooks.list_subscriptions(conn)]


@router.delete("/webhooks/{subscription_id}", status_code=204)
def unsubscribe(request: Request, subscription_id: str,
                _p: Annotated[Principal, Depends(require("integration"))]) -> Response:
    with engine_of(request).db.transaction() as conn:
        webhooks.unsubscribe(conn, subscription_id)
    return Response(status_code=204)
