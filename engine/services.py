"""How the engine reaches connectors: a gateway interface, implemented outside the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ServiceCall:
    operator: str
    params: dict[str, Any]
    instance_id: str
    element_id: str
    idempotency_key: str
    business_key: str | None = None


@dataclass
class ServiceBusinessError(Exception):
    """A business outcome the process models (a BPMN error boundary event catches it by code)."""

    code: str
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class ServiceGateway(Protocol):
    def call(self, call: ServiceCall) -> Any:
        """Run the operator; return a JSON-able result or raise ServiceBusinessError."""
        ...

    def check(self, operator: str, parameter_names: set[str]) -> str | None:
        """What is wrong with a service task's operator and parameters (at deploy), or None."""
        ...


class NoServices:
    """The gateway of an engine without connectors: every service task fails clearly when it runs."""

    def call(self, call: ServiceCall) -> Any:
        raise LookupError(f"no connector registered for operator '{call.operator}'")

    def check(self, operator: str, parameter_names: set[str]) -> str | None:
        return None
