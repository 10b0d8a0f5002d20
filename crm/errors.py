"""The one error type of the CRM layer: callers (REST, CLI, processes) show a message naming the field."""

from __future__ import annotations


class DomainError(ValueError):
    """Bad input or a forbidden state change; ``field`` names the attribute at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
