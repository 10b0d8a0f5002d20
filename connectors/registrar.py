"""Domain registration at a registrar's reseller REST API: ``domain.check`` and ``domain.register``.

Registration is asynchronous at the registrar: it accepts (``pending``) and activates later, so
``domain.register`` polls until the domain is ``active``. The job's idempotency key goes out as the
``Idempotency-Key`` header: when polling times out the job fails technically, the engine retries it with the
same key, and the registrar hands back the registration it already made instead of registering twice.

Outcomes: a taken domain is the business error ``DomainUnavailable``; any other refusal (4xx) is
``RegistrarRejected`` with the registrar's error code in its data. A wrong API key, 5xx answers, timeouts
and unreachable servers are technical errors (:class:`RegistrarError`): the job retries and, when retries
are exhausted, becomes an incident someone can fix. The API key is never logged nor put into a message.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from .http import refusal_of
from .registry import BusinessError, ConnectorContext, Registry

DEFAULT_NAMESERVERS = ("ns1.silverflow.example", "ns2.silverflow.example")


class RegistrarError(RuntimeError):
    """A technical failure talking to the registrar (retried by the engine, then an incident)."""


class RegistrarAuthError(RegistrarError):
    """The registrar refused our API key: a configuration problem, not something the process decides."""


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0, not {raw!r}")
    return value


@dataclass(frozen=True)
class RegistrarConfig:
    url: str = "http://127.0.0.1:8101"
    api_key: str = field(default="demo-registrar-key", repr=False)
    poll_interval: float = 1.0  # seconds between status queries while a registration is pending
    poll_timeout: float = 120.0  # longest wait for activation in one job run; then a technical error (retry)
    request_timeout: float = 10.0  # one HTTP request
    nameservers: tuple[str, ...] = DEFAULT_NAMESERVERS  # used when a service task names none

    @staticmethod
    def from_env() -> RegistrarConfig:
        """``SILVERFLOW_REGISTRAR_URL``, ``…_API_KEY``, ``…_POLL_INTERVAL``, ``…_POLL_TIMEOUT``, ``…_TIMEOUT``
        (seconds) and ``…_NAMESERVERS`` (comma-separated)."""
        nameservers = [n.strip() for n in os.environ.get("SILVERFLOW_REGISTRAR_NAMESERVERS", "").split(",")]
        return RegistrarConfig(
            url=os.environ.get("SILVERFLOW_REGISTRAR_URL") or RegistrarConfig.url,
            api_key=os.environ.get("SILVERFLOW_REGISTRAR_API_KEY") or RegistrarConfig.api_key,
            poll_interval=_seconds("SILVERFLOW_REGISTRAR_POLL_INTERVAL", RegistrarConfig.poll_interval),
            poll_timeout=_seconds("SILVERFLOW_REGISTRAR_POLL_TIMEOUT", RegistrarConfig.poll_timeout),
            request_timeout=_seconds("SILVERFLOW_REGISTRAR_TIMEOUT", RegistrarConfig.request_timeout),
            nameservers=tuple(n for n in nameservers if n) or DEFAULT_NAMESERVERS)


class CheckParams(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    domain: str = Field(min_length=1, max_length=253)


class CheckResult(BaseModel):
    domain: str
    available: bool


class RegisterParams(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    domain: str = Field(min_length=1, max_length=253)
    owner_handle: str = Field(min_length=1, max_length=100, description="registrant contact handle")
    admin_handle: str = Field(min_length=1, max_length=100, description="admin-c contact handle")
    nameservers: list[str] | None = Field(default=None, min_length=1, max_length=13,
                                          description="None: the configured default nameservers")


class RegisterResult(BaseModel):
    domain: str
    registrationId: str
    status: str


def _rejected(response: httpx.Response, what: str) -> BusinessError:
    error, message = refusal_of(response)
    return BusinessError("RegistrarRejected", f"the registrar refused {what} (HTTP {response.status_code}"
                         f"{', ' + error if error else ''}){': ' + message if message else ''}",
                         {"status": response.status_code, "error": error, "message": message})


class RegistrarConnector:
    def __init__(self, config: RegistrarConfig) -> None:
        self.config = config

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.config.url.rstrip("/"), timeout=self.config.request_timeout,
                            headers={"X-Api-Key": self.config.api_key, "Accept": "application/json"})

    def _send(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; everything that is not an answer about the business turns into a RegistrarError."""
        where = f"{method} {self.config.url.rstrip('/')}{path}"
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise RegistrarError(f"registrar did not answer {where} within {self.config.request_timeout:g} s") \
                from None
        except httpx.TransportError as exc:
            raise RegistrarError(f"registrar unreachable for {where}: {type(exc).__name__}: {exc}") from None
        if response.status_code in (401, 403):
            raise RegistrarAuthError(f"registrar refused the API key (HTTP {response.status_code}) for {where}; "
                                     "check SILVERFLOW_REGISTRAR_API_KEY")
        if response.status_code >= 500:
            raise RegistrarError(f"registrar failed on {where} (HTTP {response.status_code}): "
                                 f"{refusal_of(response)[1] or response.reason_phrase}")
        return response

    @staticmethod
    def _body(response: httpx.Response, *keys: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or any(k not in body for k in keys):
            raise RegistrarError(f"registrar answered HTTP {response.status_code} without {', '.join(keys)}: "
                                 f"{response.text[:200]}")
        return body

    def check(self, params: CheckParams, context: ConnectorContext) -> CheckResult:
        """Asks the registrar whether a domain can still be registered."""
        with self._client() as client:
            response = self._send(client, "GET", f"/v1/domains/{quote(params.domain, safe='')}/check")
        if response.is_client_error:
            raise _rejected(response, f"the check of {params.domain}")
        body = self._body(response, "domain", "available")
        return CheckResult(domain=str(body["domain"]), available=bool(body["available"]))

    def register(self, params: RegisterParams, context: ConnectorContext) -> RegisterResult:
        """Registers a domain (idempotent per job) and waits until the registrar reports it active."""
        request = {"domain": params.domain, "ownerHandle": params.owner_handle, "adminHandle": params.admin_handle,
                   "nameservers": params.nameservers or list(self.config.nameservers)}
        with self._client() as client:
            response = self._send(client, "POST", "/v1/domains", json=request,
                                  headers={"Idempotency-Key": context.idempotency_key})
            if response.status_code == 409 and refusal_of(response)[0] == "domain_taken":
                raise BusinessError("DomainUnavailable", f"{params.domain} is already registered",
                                    {"domain": params.domain})
            if response.is_client_error:
                raise _rejected(response, f"the registration of {params.domain}")
            body = self._body(response, "id", "domain", "status")
            registration_id, domain, status = str(body["id"]), str(body["domain"]), str(body["status"])
            context.logger.info("domain.register %s: registration %s is %s", domain, registration_id, status)
            deadline = time.monotonic() + self.config.poll_timeout
            while status != "active":
                if status != "pending":
                    raise BusinessError("RegistrarRejected", f"the registration of {domain} ended as '{status}'",
                                        {"domain": domain, "registrationId": registration_id, "status": status})
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RegistrarError(f"registration {registration_id} of {domain} is still pending after "
                                         f"{self.config.poll_timeout:g} s; a retry waits again without "
                                         "registering twice")
                time.sleep(min(self.config.poll_interval, remaining))
                response = self._send(client, "GET", f"/v1/domains/{quote(domain, safe='')}")
                if response.status_code == 404:
                    raise RegistrarError(f"registrar does not know registration {registration_id} of {domain} "
                                         "it accepted")
                if response.is_client_error:
                    raise _rejected(response, f"the status query for {domain}")
                status = str(self._body(response, "status")["status"])
        context.logger.info("domain.register %s: registration %s is active", domain, registration_id)
        return RegisterResult(domain=domain, registrationId=registration_id, status=status)


def register(registry: Registry, config: RegistrarConfig | None = None) -> None:
    connector = RegistrarConnector(config or RegistrarConfig.from_env())
    registry.register("domain.check", connector.check, CheckParams, CheckResult)
    registry.register("domain.register", connector.register, RegisterParams, RegisterResult)
