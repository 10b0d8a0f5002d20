"""Connectors with no system behind them: for smoke tests, benchmarks and trying out a model."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .registry import BusinessError, ConnectorContext, Registry


class NoParams(BaseModel):
    model_config = ConfigDict(extra="allow")


class SleepParams(BaseModel):
    seconds: float = Field(ge=0, le=300)


class FailParams(BaseModel):
    code: str = "Error"
    message: str = ""


def noop(params: NoParams, context: ConnectorContext) -> dict[str, Any]:
    """Does nothing and says so: the reference connector for benchmarks."""
    return {}


def echo(params: NoParams, context: ConnectorContext) -> dict[str, Any]:
    """Returns its parameters: lets a process designer try a service task without any system behind it."""
    return params.model_dump()


def sleep(params: SleepParams, context: ConnectorContext) -> dict[str, Any]:
    """Waits: stands in for a slow external system in tests and benchmarks."""
    time.sleep(params.seconds)
    return {"slept": params.seconds}


def fail(params: FailParams, context: ConnectorContext) -> None:
    """Raises the business error named by ``code``: exercises error boundary events end to end."""
    raise BusinessError(params.code, params.message)


def register(registry: Registry) -> None:
    registry.register("noop", noop, NoParams)
    registry.register("echo", echo, NoParams)
    registry.register("sleep", sleep, SleepParams)
    registry.register("fail", fail, FailParams)
