"""Hardware purchase at the supplier's order API: ``supplier.order``.

The order goes out with the job's idempotency key as ``Idempotency-Key``, so a retried job gets the order it
already placed instead of a second modem. The supplier confirms at once and ships later: its shipment notice
arrives at ``POST /api/v1/integrations/supplier/shipments`` and continues the instance waiting for it by the
order's ``reference`` (our business key, the default here).

Outcomes: an article the supplier does not sell is the business error ``ArticleUnknown``; any other refusal
(4xx) is ``SupplierRejected`` with the supplier's error code in its data. A wrong API key, 5xx answers,
timeouts and unreachable servers are technical errors (:class:`SupplierError`): the job retries and, when
retries are exhausted, becomes an incident. The API key is never logged nor put into a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .http import refusal_of
from .registry import BusinessError, ConnectorContext, InvalidParameters, Registry


class SupplierError(RuntimeError):
    """A technical failure talking to the supplier (retried by the engine, then an incident)."""


class SupplierAuthError(SupplierError):
    """The supplier refused our API key: a configuration problem, not something the process decides."""


# our product codes (crm catalogue) → the supplier's article numbers; codes not listed go out unchanged
DEFAULT_ARTICLES = {"MODEM-7530": "FRITZ-7530", "MODEM-7590": "FRITZ-7590", "MODEM-SDSL": "LANCOM-1793VA"}


@dataclass(frozen=True)
class SupplierConfig:
    url: str = "http://127.0.0.1:8102"
    api_key: str = field(default="demo-supplier-key", repr=False)
    request_timeout: float = 10.0
    articles: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ARTICLES))

    @staticmethod
    def from_env() -> SupplierConfig:
        """``SILVERFLOW_SUPPLIER_URL``, ``SILVERFLOW_SUPPLIER_API_KEY``, ``SILVERFLOW_SUPPLIER_TIMEOUT`` (seconds),
        ``SILVERFLOW_SUPPLIER_ARTICLES="MODEM-7530=FRITZ-7530,MODEM-SDSL=LANCOM-1793VA"``."""
        raw = os.environ.get("SILVERFLOW_SUPPLIER_TIMEOUT", "").strip()
        timeout = SupplierConfig.request_timeout
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                raise ValueError(f"SILVERFLOW_SUPPLIER_TIMEOUT must be a number of seconds, not {raw!r}") from None
            if timeout <= 0:
                raise ValueError(f"SILVERFLOW_SUPPLIER_TIMEOUT must be greater than 0, not {raw!r}")
        articles = dict(DEFAULT_ARTICLES)
        raw_articles = os.environ.get("SILVERFLOW_SUPPLIER_ARTICLES", "").strip()
        if raw_articles:
            pairs = [p.split("=", 1) for p in raw_articles.split(",") if p.strip()]
            if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
                raise ValueError("SILVERFLOW_SUPPLIER_ARTICLES must look like 'OUR-CODE=SUPPLIER-ARTICLE,…', "
                                 f"not {raw_articles!r}")
            articles = {code.strip(): article.strip() for code, article in pairs}
        return SupplierConfig(url=os.environ.get("SILVERFLOW_SUPPLIER_URL") or SupplierConfig.url,
                              api_key=os.environ.get("SILVERFLOW_SUPPLIER_API_KEY") or SupplierConfig.api_key,
                              request_timeout=timeout, articles=articles)


class DeliveryAddress(BaseModel):
    """Where the hardware goes; takes ``postal_code`` or ``postalCode`` (process data comes in both styles)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=200)
    postal_code: str = Field(min_length=1, max_length=20)
    city: str = Field(min_length=1, max_length=100)
    country: str = Field(default="DE", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class OrderParams(BaseModel):
    article: str = Field(min_length=1, max_length=100, description="our product code or the supplier's article")
    quantity: int = Field(default=1, ge=1, le=1000)
    delivery_address: DeliveryAddress
    reference: str | None = Field(default=None, min_length=1, max_length=200,
                                  description="None: the instance's business key")


class OrderResult(BaseModel):
    orderId: str
    status: str


class SupplierConnector:
    def __init__(self, config: SupplierConfig) -> None:
        self.config = config

    def order(self, params: OrderParams, context: ConnectorContext) -> OrderResult:
        """Orders hardware (idempotent per job); the shipment notice arrives later by callback."""
        reference = params.reference or context.business_key
        if not reference:
            raise InvalidParameters("operator 'supplier.order': reference is required when the instance has no "
                                    "business key")
        article = self.config.articles.get(params.article, params.article)
        body = {"article": article, "quantity": params.quantity, "reference": reference,
                "deliveryAddress": params.delivery_address.model_dump(by_alias=True)}
        where = f"POST {self.config.url.rstrip('/')}/v1/orders"
        headers = {"X-Api-Key": self.config.api_key, "Idempotency-Key": context.idempotency_key,
                   "Accept": "application/json"}
        try:
            response = httpx.post(f"{self.config.url.rstrip('/')}/v1/orders", json=body, headers=headers,
                                  timeout=self.config.request_timeout)
        except httpx.TimeoutException:
            raise SupplierError(f"supplier did not answer {where} within {self.config.request_timeout:g} s") \
                from None
        except httpx.TransportError as exc:
            raise SupplierError(f"supplier unreachable for {where}: {type(exc).__name__}: {exc}") from None
        error, message = refusal_of(response) if not response.is_success else ("", "")
        if response.status_code in (401, 403):
            raise SupplierAuthError(f"supplier refused the API key (HTTP {response.status_code}) for {where}; "
                                    "check SILVERFLOW_SUPPLIER_API_KEY")
        if response.status_code >= 500:
            raise SupplierError(f"supplier failed on {where} (HTTP {response.status_code}): "
                                f"{message or response.reason_phrase}")
        data = {"status": response.status_code, "error": error, "message": message, "article": params.article,
                "supplierArticle": article}
        named = f"'{params.article}'" + (f" (supplier article '{article}')" if article != params.article else "")
        if response.is_client_error and error == "unknown_article":
            raise BusinessError("ArticleUnknown", f"the supplier does not sell article {named}", data)
        if response.is_client_error:
            raise BusinessError("SupplierRejected", f"the supplier refused the order of {params.quantity} × "
                                f"{named} (HTTP {response.status_code}{', ' + error if error else ''})"
                                f"{': ' + message if message else ''}", data)
        try:
            answer: Any = response.json()
            result = OrderResult(orderId=str(answer["orderId"]), status=str(answer["status"]))
        except (ValueError, KeyError, TypeError):
            raise SupplierError(f"supplier answered HTTP {response.status_code} without orderId and status: "
                                f"{response.text[:200]}") from None
        context.logger.info("supplier.order %s × %s for %s: order %s is %s", params.quantity, article,
                            reference, result.orderId, result.status)
        return result


def register(registry: Registry, config: SupplierConfig | None = None) -> None:
    connector = SupplierConnector(config or SupplierConfig.from_env())
    registry.register("supplier.order", connector.order, OrderParams, OrderResult)
