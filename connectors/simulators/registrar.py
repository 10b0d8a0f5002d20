"""A domain registrar's reseller REST API, small enough to run beside Silverflow (``make run``) and in tests.

It behaves like the real thing where our connector depends on it: registrations are asynchronous (``pending``
for ``activation_seconds``, then ``active``), a repeated ``Idempotency-Key`` returns the registration it made
the first time instead of a second one, taken domains answer 409, and every call needs the ``X-Api-Key``.
State is in memory and guarded by a lock (FastAPI runs these handlers in a thread pool).

    python -m connectors.simulators.registrar --port 8101 --api-key demo-registrar-key
"""

from __future__ import annotations

import argparse
import itertools
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header
from pydantic import BaseModel, Field

from .api import ApiError, partner_api

DEFAULT_API_KEY = "demo-registrar-key"
DEFAULT_TAKEN = frozenset({"example.com", "example.org", "example.net", "google.de", "telekom.de", "silverflow.de"})
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


def normalise_domain(name: str) -> str | None:
    """The domain in canonical form (lower case, no trailing dot), or None if it is no registrable name."""
    domain = name.strip().lower().removesuffix(".")
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2:
        return None
    if not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        return None
    return domain


class RegistrationIn(BaseModel):
    domain: str = Field(min_length=1, max_length=255)
    ownerHandle: str = Field(min_length=1, max_length=100)
    adminHandle: str = Field(min_length=1, max_length=100)
    nameservers: list[str] = Field(min_length=1, max_length=13)


@dataclass
class Registration:
    id: str
    domain: str
    owner_handle: str
    admin_handle: str
    nameservers: list[str]
    idempotency_key: str
    created: float  # time.monotonic() when accepted
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class RegistrarState:
    """Registrations by id, domain and idempotency key; status follows from the age of a registration."""

    def __init__(self, activation_seconds: float, taken: Iterable[str]) -> None:
        self.activation_seconds = activation_seconds
        self.taken = {d for d in (normalise_domain(t) for t in taken) if d}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._by_domain: dict[str, Registration] = {}
        self._by_key: dict[str, Registration] = {}

    def status(self, registration: Registration) -> str:
        age = time.monotonic() - registration.created
        return "active" if age >= self.activation_seconds else "pending"

    def view(self, registration: Registration) -> dict[str, Any]:
        return {"id": registration.id, "domain": registration.domain, "status": self.status(registration),
                "ownerHandle": registration.owner_handle, "adminHandle": registration.admin_handle,
                "nameservers": registration.nameservers, "createdAt": registration.created_at.isoformat()}

    def available(self, domain: str) -> bool:
        with self._lock:
            return domain not in self.taken and domain not in self._by_domain

    def register(self, body: RegistrationIn, domain: str, nameservers: list[str], key: str) -> Registration:
        with self._lock:
            earlier = self._by_key.get(key)
            if earlier is not None:
                if earlier.domain != domain:
                    raise ApiError(422, "idempotency_key_reused",
                                   f"Idempotency-Key was used for {earlier.domain}, not {domain}")
                return earlier
            if domain in self.taken or domain in self._by_domain:
                raise ApiError(409, "domain_taken", f"{domain} is already registered")
            registration = Registration(f"reg-{next(self._ids):06d}", domain, body.ownerHandle, body.adminHandle,
                                        nameservers, key, time.monotonic())
            self._by_domain[domain] = registration
            self._by_key[key] = registration
            return registration

    def get(self, domain: str) -> Registration | None:
        with self._lock:
            return self._by_domain.get(domain)

    def registrations(self) -> list[Registration]:
        with self._lock:
            return sorted(self._by_domain.values(), key=lambda r: r.id)


def _domain_or_422(name: str) -> str:
    domain = normalise_domain(name)
    if domain is None:
        raise ApiError(422, "invalid_domain", f"'{name}' is not a registrable domain name")
    return domain


def create_app(api_key: str, activation_seconds: float = 2.0, taken: set[str] | None = None) -> FastAPI:
    """The registrar app; ``app.state.registrar`` is its :class:`RegistrarState` (tests look inside)."""
    state = RegistrarState(activation_seconds, DEFAULT_TAKEN if taken is None else taken)
    app = FastAPI(title="Registrar simulator", version="1", docs_url="/docs", redoc_url=None)
    app.state.registrar = state

    auth = partner_api(app, api_key)

    @app.get("/v1/domains/{name}/check", dependencies=auth)
    def check(name: str) -> dict[str, Any]:
        domain = _domain_or_422(name)
        return {"domain": domain, "available": state.available(domain)}

    @app.post("/v1/domains", status_code=202, dependencies=auth)
    def register(body: RegistrationIn,
                 idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> dict[str, Any]:
        if not idempotency_key:
            raise ApiError(400, "idempotency_key_missing", "the Idempotency-Key header is required")
        domain = _domain_or_422(body.domain)
        nameservers = []
        for ns in body.nameservers:
            host = normalise_domain(ns)
            if host is None:
                raise ApiError(422, "invalid_nameserver", f"'{ns}' is not a host name")
            nameservers.append(host)
        registration = state.register(body, domain, nameservers, idempotency_key)
        return {"id": registration.id, "domain": registration.domain, "status": state.status(registration)}

    @app.get("/v1/domains", dependencies=auth)
    def registrations() -> dict[str, Any]:
        return {"items": [state.view(r) for r in state.registrations()]}

    @app.get("/v1/domains/{name}", dependencies=auth)
    def registration(name: str) -> dict[str, Any]:
        domain = _domain_or_422(name)
        found = state.get(domain)
        if found is None:
            raise ApiError(404, "not_found", f"no registration of {domain} by this reseller")
        return state.view(found)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serves the simulator with Uvicorn."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Domain registrar simulator (reseller REST API)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--activation-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.activation_seconds < 0:
        parser.error("--activation-seconds must not be negative")
    uvicorn.run(create_app(args.api_key, args.activation_seconds), host=args.host, port=args.port,
                log_level="info")


if __name__ == "__main__":
    main()
