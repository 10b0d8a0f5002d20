"""Health, Prometheus metrics, and login/logout for browser sessions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from engine.metrics import collect

from ..deps import engine_of
from ..identity import LoginRefused, Principal, log_in
from ..models import HealthOut, LoginIn, MeOut
from ..problems import ApiProblem
from ..security import SESSION_COOKIE, require
from ..worker import STALE_HEARTBEAT_SECONDS

router = APIRouter(tags=["system"])


DEGRADED: dict[int | str, dict[str, Any]] = {503: {
    "model": HealthOut,
    "description": "degraded: the database refuses writes or no worker runs (an unreachable database answers a 503 "
                   "problem)"}}


@router.get("/health", response_model=HealthOut, responses=DEGRADED)
def health(request: Request, response: Response, _p: Annotated[Principal, Depends(require())]) -> HealthOut:
    engine = engine_of(request)
    with engine.db.read() as conn:
        definitions = engine.repository.count_keys(conn)
    age = engine.worker_heartbeat_age()
    problems = [] if engine.db.writable() else ["the database refuses writes (read-only)"]
    if age is not None and age > STALE_HEARTBEAT_SECONDS:
        problems.append(f"no worker heartbeat for {age:.0f} s: jobs and timers are not running")
    if problems:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return HealthOut(status="degraded" if problems else "ok", database=engine.db.dialect,
                     process_definitions=definitions, problems=problems,
                     worker_heartbeat_age_seconds=None if age is None else round(age, 1))


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, _p: Annotated[Principal, Depends(require())]) -> Response:
    engine = engine_of(request)
    with engine.db.read() as conn:
        text = collect(conn)
    return Response(text, media_type="text/plain; version=0.0.4")


@router.post("/auth/login", response_model=MeOut)
def login(request: Request, response: Response, body: LoginIn) -> MeOut:
    client = request.client.host if request.client else "?"
    try:
        principal, token, csrf = log_in(engine_of(request).db, request.app.state.identity,
                                        request.app.state.login_limiter, body.username, body.password, client)
    except LoginRefused as refused:
        if refused.throttled:
            raise ApiProblem(429, "Too many attempts", "too many failed logins; wait a few minutes", "rate-limited",
                             headers={"Retry-After": str(refused.retry_after)}) from None
        raise ApiProblem(401, "Unauthorized", "unknown user or wrong password", "unauthorized") from None
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", max_age=12 * 3600, path="/")
    return MeOut(name=principal.name, kind="user", roles=sorted(principal.roles), groups=sorted(principal.groups),
                 csrf_token=csrf)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, _p: Annotated[Principal, Depends(require())]) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with engine_of(request).db.transaction() as conn:
            request.app.state.identity.close_session(conn, token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=MeOut)
def me(principal: Annotated[Principal, Depends(require())]) -> MeOut:
    return MeOut(name=principal.name, kind=principal.kind, roles=sorted(principal.roles),
                 groups=sorted(principal.groups), csrf_token=principal.csrf_token)
