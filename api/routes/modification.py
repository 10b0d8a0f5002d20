"""Instance modification over REST (Camunda-style): ``POST /process-instances/{id}/modification`` with a list of
instructions and a reason, for managers and admins. The engine applies them in one transaction
(``engine/modification.py``); an unknown or unfitting element is a 422 naming the instruction and element, an
instance that changed meanwhile or has no token there a 409."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from engine.modification import Instruction, InvalidModification, modify, retry_with_fresh_parameters

from .. import access
from ..deps import Text, engine_of
from ..identity import Principal
from ..models import Camel, InstanceOut
from ..problems import ApiProblem
from ..security import require

router = APIRouter(tags=["instances"])

ElementId = Annotated[Text, Field(min_length=1, max_length=200)]


class ModificationInstruction(Camel):
    type: Literal["startBeforeActivity", "startAfterActivity", "cancel", "moveToken", "skipTask"]
    element_id: ElementId = Field(description="the element to start before/after, cancel, move from or skip")
    target_element_id: ElementId | None = Field(None, description="moveToken: where the token goes")
    task_id: Annotated[Text | None, Field(max_length=36)] = Field(
        None, description="one token of several at the element (cancel, moveToken, skipTask)")
    variables: dict[str, Any] = Field(default_factory=dict, description="set on the new token / skipped task")
    result: Any = Field(None, description="skipTask: what the connector would have answered")


class ModificationIn(Camel):
    instructions: Annotated[list[ModificationInstruction], Field(min_length=1, max_length=100)]
    reason: Annotated[Text, Field(min_length=1, max_length=2000, description="why: recorded in the history")]


def run_modification(request: Request, principal: Principal, instance_id: str,
                     instructions: list[Instruction], reason: str) -> InstanceOut:
    """Shared by REST and the instance page: need-to-know first (404), then the engine."""
    access.visible_instance(request, principal, instance_id)
    try:
        view = modify(engine_of(request), instance_id, instructions, reason, principal.name)
    except InvalidModification as exc:
        where = f"instructions.{exc.index}.{exc.field}" if exc.index is not None else exc.field
        error: dict[str, Any] = {"field": where, "message": str(exc)}
        if exc.element_id:
            error["elementId"] = exc.element_id
        raise ApiProblem(422, "Invalid modification", str(exc), "invalid-modification", [error]) from exc
    return InstanceOut(**view.__dict__)


@router.post("/process-instances/{instance_id}/modification", response_model=InstanceOut)
def modify_instance(request: Request, instance_id: str, body: ModificationIn,
                    principal: Annotated[Principal, Depends(require("manager"))]) -> InstanceOut:
    """Start before/after an element, cancel the tokens at an element, move a token or skip a service task.

    Managers and admins only; the reason and every instruction go to the instance's history."""
    instructions = [Instruction(i.type, i.element_id, i.target_element_id, i.task_id, i.variables, i.result)
                    for i in body.instructions]
    return run_modification(request, principal, instance_id, instructions, body.reason)


class FreshRetryIn(Camel):
    variables: dict[str, Any] = Field(default_factory=dict, description="set on the instance before the retry")
    reason: Annotated[Text | None, Field(max_length=2000)] = None


class FreshRetryOut(Camel):
    job_id: str
    state: str
    params: Any
    previous_params: Any


@router.post("/jobs/{job_id}/retry-with-variables", response_model=FreshRetryOut, tags=["jobs"])
def retry_with_variables(request: Request, job_id: str, body: FreshRetryIn,
                         principal: Annotated[Principal, Depends(require("manager", "integration"))]) -> FreshRetryOut:
    """Fix the data behind a failed service job and retry it in one step: the variables are set, the task's
    parameters evaluated again from the data as it is now (a plain retry sends the parameters frozen when the
    task was reached) and the job queued with fresh attempts."""
    engine = engine_of(request)
    instance_id = engine.get_job(job_id).instance_id
    if instance_id is not None:  # a job of no instance (a webhook delivery) is refused by the engine
        access.visible_instance(request, principal, instance_id)
    result = retry_with_fresh_parameters(engine, job_id, body.variables, body.reason, principal.name)
    return FreshRetryOut(**{k: result[k] for k in ("jobId", "state", "params", "previousParams")})
