"""Migration of running instances to another version over REST, for managers and admins.

``POST /migration/plan`` maps the source definition's elements to the target's (same ids by themselves, the rest
by ``mappings``); ``POST /migration/validate`` tells per instance whether it can migrate and why not;
``POST /migration/execute`` migrates each instance in its own transaction and reports per instance. Instances
are named by ``instanceIds`` or picked by ``filter`` (the running instances of the source version, optionally
one business key). The engine side is ``engine/migration.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from engine import migration
from engine.errors import NotFound
from engine.migration import InvalidPlan, MigrationPlan

from .. import access
from ..deps import Text, engine_of
from ..identity import Principal
from ..models import MAX_INT, Camel
from ..problems import ApiProblem
from ..security import require

router = APIRouter(tags=["migration"])

Key = Annotated[Text, Field(min_length=1, max_length=200)]
ElementId = Annotated[Text, Field(min_length=1, max_length=200)]
Version = Annotated[int, Field(ge=1, le=MAX_INT)]


class DefinitionRef(Camel):
    id: Annotated[Text | None, Field(max_length=36)] = None
    key: Key | None = None
    version: Version | None = None


class PlanIn(Camel):
    source: DefinitionRef
    target: DefinitionRef
    mappings: dict[ElementId, ElementId] = Field(default_factory=dict,
                                                 description="source element id → target element id")
    update_event_triggers: bool = False


class UnmappedOut(Camel):
    element_id: str
    name: str | None
    reason: str


class PlanBody(Camel):
    source_key: Key
    source_version: Version
    target_key: Key
    target_version: Version
    mappings: dict[ElementId, ElementId]
    update_event_triggers: bool = False


class PlanOut(PlanBody):
    unmapped: list[UnmappedOut]


class InstanceFilterIn(Camel):
    business_key: Annotated[Text | None, Field(max_length=200)] = None


class InstancesIn(Camel):
    plan: PlanBody
    instance_ids: Annotated[list[Annotated[Text, Field(max_length=36)]] | None,
                            Field(max_length=migration.MAX_INSTANCES)] = None
    filter: InstanceFilterIn | None = Field(None, description="instead of instanceIds: the running instances "
                                                              "of the source version")


class ExecuteIn(InstancesIn):
    reason: Annotated[Text | None, Field(max_length=2000)] = None


class ReportOut(Camel):
    instance_id: str
    ok: bool
    reasons: list[str]
    business_key: str | None = None
    active_elements: list[str] = []


class ReportsOut(Camel):
    items: list[ReportOut]
    total: int
    ok: int
    refused: int


def _plan_out(plan: MigrationPlan) -> PlanOut:
    return PlanOut(source_key=plan.source_key, source_version=plan.source_version, target_key=plan.target_key,
                   target_version=plan.target_version, mappings=plan.mappings,
                   update_event_triggers=plan.update_event_triggers,
                   unmapped=[UnmappedOut(**u.__dict__) for u in plan.unmapped])


def _invalid(exc: InvalidPlan) -> ApiProblem:
    error = {"field": exc.field, "message": str(exc)}
    if exc.element_id:
        error["elementId"] = exc.element_id
    return ApiProblem(422, "Invalid migration plan", str(exc), "invalid-migration-plan", [error])


def make_plan(request: Request, body: PlanIn) -> MigrationPlan:
    try:
        return migration.plan_for(engine_of(request), body.source.model_dump(), body.target.model_dump(),
                                  body.mappings, body.update_event_triggers)
    except InvalidPlan as exc:
        raise _invalid(exc) from exc


def checked(request: Request, body: PlanBody) -> MigrationPlan:
    try:
        return migration.checked_plan(engine_of(request), body.source_key, body.source_version, body.target_key,
                                      body.target_version, body.mappings, body.update_event_triggers)
    except InvalidPlan as exc:
        raise _invalid(exc) from exc


def chosen_instances(request: Request, principal: Principal, plan: MigrationPlan, body: InstancesIn) -> list[str]:
    """The instances named, each visible to the caller (404 otherwise), or those the filter picks."""
    if body.instance_ids is not None:
        for instance_id in body.instance_ids:
            access.visible_instance(request, principal, instance_id)
        return list(dict.fromkeys(body.instance_ids))
    if body.filter is None:
        raise ApiProblem(422, "Invalid request", "name instanceIds or a filter", "validation",
                         [{"field": "instanceIds", "message": "name instanceIds or a filter"}])
    ids = migration.instances_of(engine_of(request), plan, body.filter.business_key)
    return [i for i in ids if _visible(request, principal, i)]


def _visible(request: Request, principal: Principal, instance_id: str) -> bool:
    try:
        access.visible_instance(request, principal, instance_id)
    except NotFound:  # hidden instances are left out of a filter, as lists leave them out
        return False
    return True


def _reports(reports: list[migration.InstanceReport]) -> ReportsOut:
    items = [ReportOut(**r.__dict__) for r in reports]
    ok = sum(1 for r in reports if r.ok)
    return ReportsOut(items=items, total=len(items), ok=ok, refused=len(items) - ok)


Operator = Annotated[Principal, Depends(require("manager"))]


@router.post("/migration/plan", response_model=PlanOut)
def plan(request: Request, body: PlanIn, _p: Operator) -> PlanOut:
    """Map source to target elements: same ids by themselves, the rest by ``mappings``; lists the unmapped."""
    return _plan_out(make_plan(request, body))


@router.post("/migration/validate", response_model=ReportsOut)
def validate(request: Request, body: InstancesIn, principal: Operator) -> ReportsOut:
    """Which instances the plan can migrate, and why the others cannot (nothing is changed)."""
    checked_plan = checked(request, body.plan)
    ids = chosen_instances(request, principal, checked_plan, body)
    return _reports(migration.validate(engine_of(request), checked_plan, ids))


@router.post("/migration/execute", response_model=ReportsOut)
def execute(request: Request, body: ExecuteIn, principal: Operator) -> ReportsOut:
    """Migrate each instance in a transaction of its own; the report says which moved and why others did not."""
    checked_plan = checked(request, body.plan)
    ids = chosen_instances(request, principal, checked_plan, body)
    return _reports(migration.execute(engine_of(request), checked_plan, ids, principal.name, body.reason))
