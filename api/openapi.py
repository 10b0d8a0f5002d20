"""The OpenAPI document: every operation documents its problem+json errors (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": ["string", "null"]}, "message": {"type": "string"}}}},
    },
}
PROBLEM_STATUSES = {
    "400": "Invalid query", "401": "Not authenticated", "403": "Not allowed", "404": "Not found",
    "409": "Conflict with the current state", "413": "Upload too large", "422": "Invalid input",
    "429": "Too many attempts",
}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"},
                                         "session": {"type": "apiKey", "in": "cookie", "name": "sf_session"}}
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in PROBLEM_STATUSES.items():
                    responses[status] = {"description": description, "content": {
                        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                if not path.endswith("/auth/login"):
                    operation["security"] = [{"bearer": []}, {"session": []}]
        for name in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(name, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
