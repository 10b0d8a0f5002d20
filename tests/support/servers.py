"""Tests serve simulators and receivers the way ``make run`` serves its local systems."""

from api.servers import serve_app

__all__ = ["serve_app"]
