"""Engine fixtures: a real engine on each backend, with a connector registry of test operators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.services import ConnectorGateway
from connectors import default_registry
from connectors.registry import BusinessError, ConnectorContext
from engine.database import Database
from engine.runtime import Engine

BPMN_DIR = Path(__file__).parent / "bpmn"


def bpmn(*names: str) -> list[tuple[str, bytes]]:
    return [(name, (BPMN_DIR / name).read_bytes()) for name in names]


class Calls:
    """Records what test connectors were called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], ConnectorContext]] = []


@pytest.fixture
def calls() -> Calls:
    return Calls()


def make_engine(url: str, calls: Calls) -> Engine:
    registry = default_registry()

    def record(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        calls.calls.append(("record", params, context))
        return {"received": params}

    def check_domain(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        calls.calls.append(("check_domain", params, context))
        if str(params.get("domain", "")).startswith("taken"):
            raise BusinessError("DomainUnavailable", f"{params['domain']} is taken")
        return {"available": True}

    registry.register("record", record)
    registry.register("check_domain", check_domain)
    return Engine(Database(url), ConnectorGateway(registry), inline_services=True)


@pytest.fixture
def engine(db_url: str, calls: Calls) -> Iterator[Engine]:
    eng = make_engine(db_url, calls)
    yield eng
    eng.db.dispose()
