"""Every error as ``application/problem+json`` (RFC 9457): no stack trace, never a 500 for client input."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from crm.errors import DomainError
from engine.assignment import NotPermitted
from engine.database import Outage, outage_of
from engine.errors import (
    Conflict,
    DeploymentError,
    EngineError,
    FormValidationError,
    InvalidState,
    NotFound,
    ProcessError,
)
from engine.queries import QueryError

from .identity import IdentityError

log = logging.getLogger("silverflow.api")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://silverflow.example/problems/"


class ApiProblem(Exception):
    """Raised by routes for a problem the engine does not know (authentication, permissions, …)."""

    def __init__(self, status: int, title: str, detail: str, kind: str | None = None,
                 errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers


def problem(status: int, title: str, detail: str, kind: str, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


#: What a client is told when the database cannot serve, and when to try again (seconds).
OUTAGES: dict[Outage, tuple[str, str, int]] = {
    "busy": ("Database busy", "the database is busy with other work; try again in a moment", 2),
    "unreachable": ("Database unavailable", "the database cannot be reached; try again shortly", 5),
    "read-only": ("Database unavailable", "the database cannot be written to (read-only); an operator is needed",
                  30),
    "full": ("Database unavailable", "the database's disk is full; an operator is needed", 30),
}


def outage_problem(outage: Outage) -> JSONResponse:
    title, detail, retry = OUTAGES[outage]
    return problem(503, title, detail, f"database-{outage}", headers={"Retry-After": str(retry)})


def _field(loc: tuple[Any, ...]) -> str:
    # only the leading location is dropped: a field may itself be called "body" (an activity's text)
    parts = [str(p) for p in (loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)]
    return ".".join(parts) or "(request)"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(_request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.kind, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
                  for e in exc.errors()]
        return problem(422, "Invalid request", "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                       "validation", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                       f"http-{exc.status_code}", headers=getattr(exc, "headers", None))

    @app.exception_handler(EngineError)
    async def _engine(_request: Request, exc: EngineError) -> JSONResponse:
        if isinstance(exc, DeploymentError):
            errors = [{"field": p.element_id or p.file_name or "(file)", "message": p.message,
                       "file": p.file_name, "elementId": p.element_id, "line": p.line} for p in exc.problems]
            return problem(422, "Invalid BPMN", str(exc), "invalid-bpmn", errors)
        if isinstance(exc, FormValidationError):
            return problem(422, "Invalid form data", str(exc), "form-validation", exc.errors)
        if isinstance(exc, QueryError):
            return problem(400, "Invalid query", str(exc), "invalid-query", [{"field": exc.field, "message": str(exc)}])
        if isinstance(exc, NotFound):
            return problem(404, "Not found", str(exc), "not-found")
        if isinstance(exc, NotPermitted):
            return problem(403, "Forbidden", str(exc), "forbidden")
        if isinstance(exc, Conflict):  # changed by someone else meanwhile: reload and try again
            return problem(409, "Conflict", str(exc), "conflict", headers={"Retry-After": "1"})
        if isinstance(exc, InvalidState):  # final: the task or instance is no longer in that state
            return problem(409, "Conflict", str(exc), "invalid-state")
        if isinstance(exc, ProcessError):
            located = [{"field": exc.element_id, "message": str(exc)}] if exc.element_id else None
            return problem(422, "Process error", str(exc), "process-error", located)
        return problem(400, "Engine error", str(exc), "engine-error")

    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return problem(422, "Invalid request", str(exc), "validation", [{"field": exc.field, "message": exc.message}])

    @app.exception_handler(IdentityError)
    async def _identity(_request: Request, exc: IdentityError) -> JSONResponse:
        return problem(422, "Invalid request", str(exc), "validation", [{"field": exc.field, "message": str(exc)}])

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        outage = outage_of(exc)
        if outage is None:
            log.exception("unexpected database error", exc_info=exc)
            return problem(500, "Internal error", "an unexpected error occurred; it has been logged", "internal")
        log.warning("database %s: %s", outage, exc.orig)
        return outage_problem(outage)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged", "internal")
