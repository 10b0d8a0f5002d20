"""The migration page (managers and admins): pick a process and the source and target versions, see and adjust the
plan (same ids map by themselves), check it against the running instances of the source version, migrate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from engine import migration
from engine.errors import NotFound
from engine.migration import InvalidPlan, MigrationPlan

from .. import access
from ..deps import engine_of
from .rendering import PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)
PREFIX = "map:"


def _versions(request: Request, key: str) -> list[Any]:
    engine = engine_of(request)
    with engine.db.read() as conn:
        return [d for d in engine.repository.list(conn, key, latest_only=False)] if key else []


def _mapped(values: Any) -> dict[str, str]:
    return {name[len(PREFIX):]: str(value) for name, value in values.items()
            if name.startswith(PREFIX) and value}


def _visible_ids(request: Request, user: Any, ids: list[str]) -> list[str]:
    shown = []
    for instance_id in ids:
        try:
            access.visible_instance(request, user, instance_id)
        except NotFound:
            continue
        shown.append(instance_id)
    return shown


def _targets(request: Request, plan: MigrationPlan) -> list[tuple[str, str]]:
    engine = engine_of(request)
    with engine.db.read() as conn:
        target = engine.repository.get(conn, plan.target_key, plan.target_version)
    elements = migration.elements_of(target)
    return sorted(((i, getattr(s, "bpmn_name", None) or i) for i, s in elements.items()), key=lambda e: e[1].lower())


@router.get("/migration", response_class=HTMLResponse)
def migration_page(request: Request, key: str = "", source: int = 0, target: int = 0,
                   check: bool = False) -> HTMLResponse:
    user = require_user(request, "manager")
    engine = engine_of(request)
    with engine.db.read() as conn:
        keys = sorted({d.key for d in engine.repository.list(conn)})
    versions = _versions(request, key)
    running = migration.running_per_version(engine, key) if key else {}
    context: dict[str, Any] = dict(user=user, keys=keys, key=key, versions=versions, running=running,
                                   source=source, target=target, plan=None, reports=None, error=None)
    if key and source and target:
        try:
            plan = migration.plan_for(engine, {"key": key, "version": source}, {"key": key, "version": target})
            chosen = _mapped(request.query_params)
            if check or chosen:
                plan = migration.checked_plan(engine, key, source, key, target, {**plan.mappings, **chosen}
                                              if not check else chosen)
            context.update(plan=plan, targets=_targets(request, plan))
            if check:
                ids = _visible_ids(request, user, migration.instances_of(engine, plan))
                context["reports"] = migration.validate(engine, plan, ids)
        except (InvalidPlan, NotFound) as exc:
            context["error"] = str(exc)
    return render(request, "migration.html", **context)


@router.post("/migration", response_class=HTMLResponse)
def migrate(request: Request, form: PageForm) -> HTMLResponse:
    user = require_user(request, "manager")
    checked_form(request, user, form)
    engine = engine_of(request)
    key = str(form.get("key") or "")
    try:
        source, target = int(str(form.get("source") or 0)), int(str(form.get("target") or 0))
    except ValueError:
        source = target = 0
    context: dict[str, Any] = dict(user=user, keys=[key], key=key, versions=_versions(request, key), running={},
                                   source=source, target=target, plan=None, reports=None, error=None, executed=True)
    if form.get("confirm") != "yes":
        context["error"] = "Bitte die Migration bestätigen."
        return render(request, "migration.html", 422, **context)
    try:
        plan = migration.checked_plan(engine, key, source, key, target, _mapped(form))
        ids = _visible_ids(request, user, [str(i) for i in form.getlist("instance")])
        context.update(plan=plan, targets=_targets(request, plan),
                       reports=migration.execute(engine, plan, ids, user.name, str(form.get("reason") or "") or None))
    except (InvalidPlan, NotFound) as exc:
        context["error"] = str(exc)
        return render(request, "migration.html", 422, **context)
    return render(request, "migration.html", **context)
