"""Errors the engine raises; the API and CLI map them to HTTP problems and one-line messages."""

from __future__ import annotations

from dataclasses import dataclass, field


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass
class Problem:
    """One thing wrong with a BPMN file, pointing at the element and line where possible."""

    message: str
    file_name: str | None = None
    element_id: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.file_name, self.line) if part)
        element = f" [{self.element_id}]" if self.element_id else ""
        return f"{where}{element} {self.message}".strip()


@dataclass
class DeploymentError(EngineError):
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(str(problem) for problem in self.problems)


class NotFound(EngineError):
    pass


class Conflict(EngineError):
    """A concurrent change won: the caller should reload and decide again."""


class InvalidState(EngineError):
    """The operation does not fit the current state (task already completed, instance ended, …)."""


@dataclass
class FormValidationError(EngineError):
    errors: list[dict[str, str]]

    def __str__(self) -> str:
        return "; ".join(f"{err['field']}: {err['message']}" for err in self.errors)


class ProcessError(EngineError):
    """Running the process failed (script error, unhandled business error, …); nothing was saved."""

    def __init__(self, message: str, element_id: str | None = None) -> None:
        super().__init__(message)
        self.element_id = element_id
