"""``webhook.deliver``: POST an event to a subscriber, signed with HMAC-SHA256 over the exact body.

Receivers check ``X-Silverflow-Signature: sha256=<hex>`` with their secret; ``X-Silverflow-Delivery`` is
the same for every retry of one delivery, so a receiver can drop duplicates. Any non-2xx answer is a
technical failure: the job retries with back-off and, when retries are exhausted, becomes an incident.
The URL passes the outbound policy (``connectors.outbound``) at registration and again at each delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import BaseModel, Field

from .outbound import check_url, client
from .registry import ConnectorContext, Registry

SIGNATURE_HEADER = "X-Silverflow-Signature"


class WebhookParams(BaseModel):
    url: str
    secret: str
    event: str
    delivery: str
    body: dict[str, Any]
    timeout: float = Field(default=10.0, gt=0, le=60)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(params: WebhookParams, context: ConnectorContext) -> dict[str, Any]:
    """Sends one signed delivery; raises for transport errors and non-2xx answers (so the job retries)."""
    body = json.dumps(params.body, separators=(",", ":"), sort_keys=True).encode()
    check_url(params.url)
    with client(params.timeout) as http:
        response = http.post(params.url, content=body, headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(params.secret, body),
            "X-Silverflow-Event": params.event, "X-Silverflow-Delivery": params.delivery})
    response.raise_for_status()
    return {"status": response.status_code}


def register(registry: Registry) -> None:
    registry.register("webhook.deliver", deliver, WebhookParams)
