"""Process start page ("Vorgang starten"): how staff reach the forms of the processes they begin themselves
(time sheet, travel expenses, vacation request ...). Lists whatever is deployed; nothing here names a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.errors import Conflict, InvalidState, NotFound
from engine.repository import LoadedDefinition

from ..deps import engine_of
from ..identity import Principal
from .rendering import PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)

STARTERS = ("clerk", "manager")  # the roles the REST start admits for people (designers deploy, they do not work)
MAX_BUSINESS_KEY = 200


@dataclass(frozen=True)
class Startable:
    """A deployed process a person may begin: its latest version and the lane its plain start event sits in."""

    key: str
    name: str
    version: int
    lane: str | None


def _plain_start_events(definition: LoadedDefinition) -> list[Any]:
    """Start events without a trigger; message and timer starts are begun by the system, not by a person."""
    return [ts for ts in definition.parsed.spec.task_specs.values()
            if type(ts).__name__ == "StartEvent"
            and type(getattr(ts, "event_definition", None)).__name__ == "NoneEventDefinition"]


def _may_start(user: Principal, lane: str | None) -> bool:
    """The start event's lane names the group that begins the process; managers may begin any."""
    return user.has("manager") or lane is None or lane in user.groups


def startable_processes(request: Request, user: Principal) -> list[Startable]:
    engine = engine_of(request)
    found = []
    with engine.db.read() as conn:
        for info in engine.repository.list(conn):
            definition = engine.repository.get(conn, info.key, info.version)
            starts = _plain_start_events(definition)
            if not starts:
                continue
            lane = getattr(starts[0], "lane", None)
            if _may_start(user, lane):
                found.append(Startable(info.key, info.name or info.key, info.version, lane))
    return sorted(found, key=lambda s: s.name.lower())


def _page(request: Request, user: Principal, status_code: int = 200, **extra: Any) -> HTMLResponse:
    extra.setdefault("errors", {})
    extra.setdefault("values", {})
    return render(request, "start.html", status_code, user=user, processes=startable_processes(request, user),
                  **extra)


@router.get("/start", response_class=HTMLResponse)
def start_page(request: Request) -> HTMLResponse:
    user = require_user(request, *STARTERS)
    return _page(request, user)


@router.post("/start", response_model=None)
def start_process(request: Request, form: PageForm) -> Response:
    """Start through the engine service the REST start uses; land on the first form when it is the user's."""
    user = require_user(request, *STARTERS)
    checked_form(request, user, form)
    key = str(form.get("process") or "")
    business_key = str(form.get("business_key") or "").strip()
    values = {"process": key, "business_key": business_key}
    allowed = {p.key for p in startable_processes(request, user)}
    if key not in allowed:
        return _page(request, user, 422, values=values,
                     errors={"process": "Bitte einen Prozess wählen, den Sie starten dürfen."})
    if len(business_key) > MAX_BUSINESS_KEY:
        return _page(request, user, 422, values=values,
                     errors={"business_key": "Der Geschäftsschlüssel darf höchstens 200 Zeichen lang sein."})
    engine = engine_of(request)
    instance = engine.start(key, {}, business_key=business_key or None, user=user.name)
    return RedirectResponse(first_form_of(request, user, instance.id), status_code=303)


def first_form_of(request: Request, user: Principal, instance_id: str) -> str:
    """The instance's first open user task when it is the user's own (assigned to them or offered to one of their
    groups; a manager's right to work on anything does not count). It is claimed for them, so a colleague of the
    same group does not fill in someone else's request. Otherwise the instance page."""
    engine = engine_of(request)
    for task in engine.list_tasks(instance_id=instance_id):
        offered = task.assignee is None and bool(set(task.candidate_groups) & user.groups)
        if task.assignee != user.name and not offered:
            continue
        if task.assignee is None:
            try:
                engine.claim(task.id, user.name)
            except (Conflict, InvalidState, NotFound):
                continue  # someone else was quicker or the instance moved on: show the instance instead
        return f"/tasks/{task.id}"
    return f"/instances/{instance_id}"
