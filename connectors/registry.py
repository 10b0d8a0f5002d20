"""The operator-name → connector registry that service tasks call through.

A connector has a typed parameter model (Pydantic), an optional result model and a ``run(params, context)``;
the context carries the idempotency key, the instance and a logger. It returns a JSON-able result, raises
``BusinessError`` for an outcome the process models with an error boundary event, and raises anything else
for a technical failure (retried, then an incident). ``check`` lets a deploy refuse unknown operators and
parameters the connector does not take, naming the element, instead of failing at run time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError


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


class InvalidParameters(ValueError):
    pass


@dataclass(frozen=True)
class Connector:
    operator: str
    run: Callable[[Any, ConnectorContext], Any]
    params: type[BaseModel] | None = None  # None: the raw parameter dict is passed through
    result: type[BaseModel] | None = None
    description: str = ""


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


class Registry:
    def __init__(self) -> None:
        self._connectors: dict[str, Connector] = {}

    def add(self, connector: Connector) -> None:
        if connector.operator in self._connectors:
            raise ValueError(f"operator '{connector.operator}' is already registered")
        self._connectors[connector.operator] = connector

    def register(self, operator: str, run: Callable[[Any, ConnectorContext], Any],
                 params: type[BaseModel] | None = None, result: type[BaseModel] | None = None) -> None:
        self.add(Connector(operator, run, params, result, (run.__doc__ or "").strip()))

    def operators(self) -> list[str]:
        return sorted(self._connectors)

    def get(self, operator: str) -> Connector:
        try:
            return self._connectors[operator]
        except KeyError:
            raise UnknownOperator(f"no connector registered for operator '{operator}'") from None

    def check(self, operator: str, parameter_names: set[str]) -> str | None:
        """What is wrong with a service task's configuration, or None (deploy-time check)."""
        if operator not in self._connectors:
            known = ", ".join(self.operators())
            return f"unknown operator '{operator}' (known: {known})"
        model = self._connectors[operator].params
        if model is None:
            return None
        fields = model.model_fields
        missing = sorted(n for n, f in fields.items() if f.is_required() and n not in parameter_names)
        extra_allowed = model.model_config.get("extra") == "allow"
        unknown = sorted(parameter_names - set(fields)) if not extra_allowed else []
        problems = []
        if missing:
            problems.append(f"missing parameter(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown parameter(s) {', '.join(unknown)}")
        return f"operator '{operator}': " + "; ".join(problems) if problems else None

    def run(self, operator: str, params: dict[str, Any], context: ConnectorContext) -> Any:
        connector = self.get(operator)
        arguments: Any = params
        if connector.params is not None:
            try:
                arguments = connector.params.model_validate(params)
            except ValidationError as exc:
                fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise InvalidParameters(f"operator '{operator}': invalid parameters: {fields}") from None
        result = connector.run(arguments, context)
        if connector.result is not None and not isinstance(result, connector.result):
            result = connector.result.model_validate(result)
        return _dump(result)
