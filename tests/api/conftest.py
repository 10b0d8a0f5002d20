"""API fixtures: the app served by a real Uvicorn on a loopback port, and httpx clients per role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live_app import Api, free_port, live_app

__all__ = ["Api", "free_port"]


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with live_app(db_url) as running:
        yield running
