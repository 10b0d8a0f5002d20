"""The API fixture (a real Uvicorn per test) for the fault-injection tests."""

from tests.api.conftest import api

__all__ = ["api"]
