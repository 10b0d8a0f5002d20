"""Wires the connector registry into the engine's service gateway."""

from __future__ import annotations

from typing import Any

from connectors.registry import BusinessError, ConnectorContext, Registry
from engine.services import ServiceBusinessError, ServiceCall


class ConnectorGateway:
    """Translates between the engine's call and the connector interface (which knows nothing of BPMN)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def call(self, call: ServiceCall) -> Any:
        context = ConnectorContext(call.idempotency_key, call.instance_id, call.element_id, call.business_key)
        try:
            return self.registry.run(call.operator, call.params, context)
        except BusinessError as error:
            raise ServiceBusinessError(error.code, error.message, error.data) from error

    def check(self, operator: str, parameter_names: set[str]) -> str | None:
        return self.registry.check(operator, parameter_names)
