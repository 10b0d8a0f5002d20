"""Instance repair on the instance page (managers and admins): the diagram's elements offer start before/after,
cancel, move and skip (``static/modify.js``); each change names a reason and needs a confirmation."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from engine import modification
from engine.errors import Conflict, InvalidState
from engine.modification import KINDS, MOVE, SKIP, Instruction, InvalidModification

from .. import access
from ..deps import engine_of
from .rendering import PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)


@router.get("/instances/{instance_id}/modification-options", response_model=None)
def modification_options(request: Request, instance_id: str) -> JSONResponse:
    """The elements of the instance's definition and its tokens, for the actions offered on a click."""
    user = require_user(request, "manager")
    access.visible_instance(request, user, instance_id)
    return JSONResponse(modification.options(engine_of(request), instance_id))


def _refused(request: Request, instance_id: str, status: int, text: str) -> HTMLResponse:
    return render(request, "instance_modify_refused.html", status, instance_id=instance_id, text=text)


@router.post("/instances/{instance_id}/modify", response_model=None)
def modify_instance(request: Request, instance_id: str, form: PageForm) -> Response:
    user = require_user(request, "manager")
    checked_form(request, user, form)
    access.visible_instance(request, user, instance_id)
    kind, element = str(form.get("action") or ""), str(form.get("element") or "")
    target = str(form.get("target") or "") or None
    if kind not in KINDS or not element:
        return _refused(request, instance_id, 422, "Bitte ein Element und eine Aktion wählen.")
    if form.get("confirm") != "yes":
        return _refused(request, instance_id, 422, "Bitte die Änderung bestätigen.")
    result: Any = None
    if kind == SKIP:
        try:
            result = json.loads(str(form.get("result") or "{}"))
        except json.JSONDecodeError as exc:
            return _refused(request, instance_id, 422, f"Das Ergebnis ist kein gültiges JSON: {exc.msg}.")
    instruction = Instruction(kind, element, target if kind == MOVE else None, result=result)
    try:
        modification.modify(engine_of(request), instance_id, [instruction], str(form.get("reason") or ""),
                            user.name)
    except InvalidModification as exc:
        return _refused(request, instance_id, 422, str(exc))
    except (InvalidState, Conflict) as exc:
        return _refused(request, instance_id, 409, str(exc))
    return RedirectResponse(f"/instances/{instance_id}?modified=1", status_code=303)
