"""Connectors: one module per external system, registered by operator name."""

from . import basic, http, webhook
from .registry import BusinessError, Connector, ConnectorContext, Registry


def default_registry() -> Registry:
    """Every connector that ships with Silverflow."""
    registry = Registry()
    basic.register(registry)
    http.register(registry)
    webhook.register(registry)
    return registry


__all__ = ["BusinessError", "Connector", "ConnectorContext", "Registry", "default_registry"]
