"""``http.request``: call any HTTP API; a non-2xx answer is a business error carrying the status.

The idempotency key goes out as the ``Idempotency-Key`` header, so a server can recognise a retry.
Destinations pass the outbound policy (``connectors.outbound``: loopback, link-local and private addresses only
when allowed by ``SILVERFLOW_OUTBOUND_ALLOW``); a refused address is the business error ``OutboundNotAllowed``
(not retried). Redirects are not followed: a 3xx answer is returned as it is.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from .outbound import OutboundRefused, check_url, client
from .registry import BusinessError, ConnectorContext, Registry


class HttpParams(BaseModel):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = None
    timeout: float = Field(default=30.0, gt=0, le=300)


class HttpResult(BaseModel):
    status: int
    headers: dict[str, str]
    body: Any


def refusal_of(response: httpx.Response) -> tuple[str, str]:
    """A partner API's error code and message from a refusal (``{"error": …, "message": …}``), else its text."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:300]
    if not isinstance(body, dict):
        return "", str(body)[:300]
    return str(body.get("error") or ""), str(body.get("message") or body.get("detail") or "")[:300]


def request(params: HttpParams, context: ConnectorContext) -> HttpResult:
    """Sends one HTTP request; transport errors are technical failures (retried), non-2xx are business errors."""
    headers = {"Idempotency-Key": context.idempotency_key, **params.headers}
    try:
        check_url(params.url)
        with client(params.timeout) as http:
            response = http.request(params.method, params.url, headers=headers, json=params.json_body)
    except OutboundRefused as refused:
        raise BusinessError("OutboundNotAllowed", str(refused), {"url": params.url}) from refused
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if not (response.is_success or response.is_redirect):
        raise BusinessError(f"HTTP{response.status_code}", f"{params.method} {params.url} answered "
                            f"{response.status_code}", {"status": response.status_code, "body": body})
    return HttpResult(status=response.status_code, headers=dict(response.headers), body=body)


def register(registry: Registry) -> None:
    registry.register("http.request", request, HttpParams, HttpResult)
