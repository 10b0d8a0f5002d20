"""The task inbox: query, read with form, claim, unclaim, assign, complete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from engine.queries import TaskFilter, TaskView

from .. import access
from ..deps import engine_of
from ..identity import Principal
from ..models import MAX_INT, AssignTask, CompleteTask, InstanceOut, Page, TaskDetailOut, TaskOut
from ..problems import ApiProblem
from ..security import require

router = APIRouter(tags=["tasks"])


def _visible_task(request: Request, principal: Principal, task_id: str) -> TaskView:
    task = engine_of(request).get_task(task_id)
    if not access.may_read_task(request, principal, task):
        raise ApiProblem(403, "Forbidden", f"task '{task_id}' belongs to groups you are not in", "forbidden")
    return task


@router.get("/tasks", response_model=Page[TaskOut])
def list_tasks(request: Request, principal: Annotated[Principal, Depends(require())],
               assignee: str | None = None,
               candidate_group: Annotated[str | None, Query(alias="candidateGroup")] = None,
               unassigned: bool = False,
               process_key: Annotated[str | None, Query(alias="processKey")] = None,
               business_key: Annotated[str | None, Query(alias="businessKey")] = None,
               due_before: Annotated[datetime | None, Query(alias="dueBefore")] = None,
               created_after: Annotated[datetime | None, Query(alias="createdAfter")] = None,
               state: str = "open", sort: str = "created",
               limit: Annotated[int, Query(ge=1, le=1000)] = 50,
               offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> Page[TaskOut]:
    restricted = not principal.has("manager", "integration")
    items, total = engine_of(request).query_tasks(TaskFilter(
        assignee=assignee, candidate_group=candidate_group, unassigned=unassigned, process_key=process_key,
        business_key=business_key, due_before=due_before, created_after=created_after, state=state,
        visible_to_user=principal.name if restricted else None,
        visible_to_groups=sorted(principal.groups) if restricted else None, hidden_from=principal.name,
        sort=sort, limit=limit, offset=offset))
    return Page[TaskOut](items=[TaskOut(**t.__dict__) for t in items], total=total, limit=limit, offset=offset)


@router.get("/tasks/{task_id}", response_model=TaskDetailOut)
def get_task(request: Request, task_id: str, principal: Annotated[Principal, Depends(require())]) -> TaskDetailOut:
    task = _visible_task(request, principal, task_id)
    engine = engine_of(request)
    data = engine.task_data(task_id)  # the task's own data: a multi-instance task shows its own item
    return TaskDetailOut(**task.__dict__, form_schema=engine.task_form(task_id), data=data)


@router.post("/tasks/{task_id}/claim", response_model=TaskOut)
def claim(request: Request, task_id: str, principal: Annotated[Principal, Depends(require())]) -> TaskOut:
    _visible_task(request, principal, task_id)
    return TaskOut(**engine_of(request).claim(task_id, principal.name).__dict__)


@router.post("/tasks/{task_id}/unclaim", response_model=TaskOut)
def unclaim(request: Request, task_id: str, principal: Annotated[Principal, Depends(require())]) -> TaskOut:
    task = _visible_task(request, principal, task_id)
    if task.assignee not in (None, principal.name) and not principal.has("manager"):
        raise ApiProblem(403, "Forbidden", f"task '{task_id}' is claimed by {task.assignee}", "forbidden")
    return TaskOut(**engine_of(request).unclaim(task_id, principal.name).__dict__)


@router.post("/tasks/{task_id}/assign", response_model=TaskOut)
def assign(request: Request, task_id: str, body: AssignTask,
           principal: Annotated[Principal, Depends(require("manager"))]) -> TaskOut:
    return TaskOut(**engine_of(request).assign(task_id, body.assignee, principal.name).__dict__)


@router.post("/tasks/{task_id}/complete", response_model=InstanceOut)
def complete(request: Request, task_id: str, body: CompleteTask,
             principal: Annotated[Principal, Depends(require())]) -> InstanceOut:
    _visible_task(request, principal, task_id)
    return InstanceOut(**engine_of(request).complete_task(task_id, body.data, user=principal.name).__dict__)
