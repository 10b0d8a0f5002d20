"""The operator-name → connector registry that service tasks call through.

A connector is a callable taking the evaluated parameters and a context (idempotency key, instance id,
logger). It returns a JSON-able result, raises ``BusinessError`` for an outcome the process models with an
error boundary event, and raises anything else for a technical failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Connector = Callable[[dict[str, Any], "ConnectorContext"], Any]


@dataclass(frozen=True)
class ConnectorContext:
    idempotency_key: str
    instance_id: str
    element_id: str
    business_key: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("silverflow.connectors"))


class BusinessError(Exception):
    """A business outcome with a code a BPMN error boundary event catches; never retried."""

    def __init__(self, code: str, message: str = "", data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.data = data or {}


class UnknownOperator(LookupError):
    pass


class Registry:
    def __init__(self) -> None:
        self._connectors: dict[str, Connector] = {}

    def register(self, operator: str, connector: Connector) -> None:
        if operator in self._connectors:
            raise ValueError(f"operator '{operator}' is already registered")
        self._connectors[operator] = connector

    def operators(self) -> list[str]:
        return sorted(self._connectors)

    def get(self, operator: str) -> Connector:
        try:
            return self._connectors[operator]
        except KeyError:
            raise UnknownOperator(f"no connector registered for operator '{operator}'") from None

    def run(self, operator: str, params: dict[str, Any], context: ConnectorContext) -> Any:
        return self.get(operator)(params, context)


def noop(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
    """Does nothing and says so: the reference connector for benchmarks and smoke tests."""
    return {}


def echo(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
    """Returns its parameters: lets a process designer try a service task without any system behind it."""
    return dict(params)


def fail_with(params: dict[str, Any], context: ConnectorContext) -> None:
    """Raises the business error named by ``code``: exercises error boundary events end to end."""
    raise BusinessError(str(params.get("code", "Error")), str(params.get("message", "")))


def default_registry() -> Registry:
    registry = Registry()
    registry.register("noop", noop)
    registry.register("echo", echo)
    registry.register("fail", fail_with)
    return registry
