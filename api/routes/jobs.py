"""Jobs and incidents (failed jobs): inspect and retry after fixing the cause."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from engine.jobs import JobView

from ..deps import engine_of
from ..identity import Principal
from ..models import JobDetailOut, JobOut
from ..security import require

router = APIRouter(tags=["jobs"])


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(request: Request, _p: Annotated[Principal, Depends(require("manager", "designer", "integration"))],
              state: str | None = None, kind: str | None = None,
              instance_id: Annotated[str | None, Query(alias="instanceId")] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[JobOut]:
    return [JobOut(**j.__dict__) for j in engine_of(request).jobs(state, instance_id, kind, limit)]


def _detail(view: JobView, principal: Principal) -> JobDetailOut:
    """The traceback (server paths, library internals) is for admins who operate the server; everyone else
    gets the error message, which says what went wrong."""
    detail = JobDetailOut(**view.__dict__)
    if "admin" not in principal.roles:
        detail.last_traceback = None
    return detail


@router.get("/jobs/{job_id}", response_model=JobDetailOut)
def get_job(request: Request, job_id: str,
            principal: Annotated[Principal, Depends(require("manager", "designer", "integration"))]) -> JobDetailOut:
    return _detail(engine_of(request).get_job(job_id), principal)


@router.post("/jobs/{job_id}/retry", response_model=JobDetailOut)
def retry(request: Request, job_id: str,
          principal: Annotated[Principal, Depends(require("manager", "integration"))]) -> JobDetailOut:
    return _detail(engine_of(request).retry_job(job_id), principal)
