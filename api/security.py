"""Authentication and authorization, enforced in one place: the ``require`` dependency.

Integrations send ``Authorization: Bearer <api key>``; the browser holds a session cookie (httpOnly,
SameSite=Lax, Secure when served over HTTPS) and must echo the session's CSRF token in ``X-CSRF-Token`` on
every state-changing request.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from .identity import Identity, Principal
from .problems import ApiProblem

SESSION_COOKIE = "sf_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "Unauthorized", detail, "unauthorized", headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request) -> Principal:
    identity: Identity = request.app.state.identity
    engine = request.app.state.engine
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _unauthorized("use 'Authorization: Bearer <api key>'")
        with engine.db.read() as conn:
            principal = identity.authenticate_key(conn, secret.strip())
        if principal is None:
            raise _unauthorized("the API key is unknown or revoked")
        return principal
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _unauthorized("authentication required: an API key or a login session")
    with engine.db.read() as conn:
        principal = identity.session_principal(conn, token)
    if principal is None:
        raise _unauthorized("the session has expired; log in again")
    if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != principal.csrf_token:
        raise ApiProblem(403, "Forbidden", f"missing or wrong {CSRF_HEADER} header", "csrf")
    return principal


def require(*roles: str) -> Callable[[Request], Principal]:
    """A dependency: the caller must be authenticated and (if roles are named) hold one of them."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if roles and not principal.has(*roles):
            raise ApiProblem(403, "Forbidden", f"this needs the role {' or '.join(roles)}", "forbidden")
        return principal

    return dependency


def can_work_on(principal: Principal, candidate_groups: list[str], assignee: str | None) -> bool:
    """Managers, admins and integrations see every task; a clerk only those of their groups or their own."""
    if principal.has("manager", "integration"):
        return True
    return assignee == principal.name or bool(principal.groups & set(candidate_groups))
