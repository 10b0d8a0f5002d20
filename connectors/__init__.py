"""Connectors: one module per external system, registered by operator name."""

from .registry import BusinessError, ConnectorContext, Registry, default_registry

__all__ = ["BusinessError", "ConnectorContext", "Registry", "default_registry"]
