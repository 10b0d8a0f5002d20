"""Page routes: login, dashboard, task inbox and forms, process designer, instances, incidents."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from crm import appointments as crm_appointments
from crm import queries as crm_queries
from crm import service_queries as crm_lists
from crm.errors import DomainError
from crm.opportunities import STAGES, pipeline
from engine.assignment import NotPermitted
from engine.database import utcnow
from engine.errors import Conflict, FormValidationError, InvalidState, NotFound
from engine.history import completed_elements, history_page
from engine.queries import InstanceFilter, TaskFilter
from engine.schema import job, process_instance

from .. import access
from ..deps import engine_of
from ..identity import LoginRefused, Principal, log_in
from ..problems import ApiProblem, problem
from ..routes.instances import decode_cursor, encode_cursor
from ..security import SESSION_COOKIE
from . import (
    appointment_pages,
    board_pages,
    customer_pages,
    invoice_pages,
    order_pages,
    outbox_pages,
    quote_pages,
    search_pages,
    start_pages,
)
from .forms import FieldError, field_errors, fields_of, parse_submission
from .i18n import LANGUAGES
from .rendering import (
    ROOT,
    LoginRequired,
    PageForbidden,
    PageForm,
    checked_form,
    current_user,
    render,
    require_user,
)

router = APIRouter(include_in_schema=False)
STAGE_LABELS = {"lead": "Lead", "qualified": "Qualifiziert", "proposal": "Angebot", "negotiation": "Verhandlung",
                "won": "Gewonnen", "lost": "Verloren"}


# -- login ----------------------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002 - the usual query name
    return render(request, "login.html", next=next if next.startswith("/") else "/")


@router.post("/login", response_model=None)
def login_submit(request: Request, form: PageForm) -> Response:
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    next_path = str(form.get("next", "/"))
    next_path = next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"
    client = request.client.host if request.client else "?"
    try:
        _principal, token, _csrf = log_in(engine_of(request).db, request.app.state.identity,
                                          request.app.state.login_limiter, username, password, client)
    except LoginRefused as refused:
        if refused.throttled:
            return render(request, "login.html", 429, next=next_path,
                          error="Zu viele Fehlversuche; bitte später erneut.")
        return render(request, "login.html", 401, next=next_path, username=username,
                      error="Benutzername oder Passwort falsch.")
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        max_age=12 * 3600, path="/")
    return response


@router.post("/logout", response_model=None)
def logout(request: Request, form: PageForm) -> Response:
    principal = current_user(request)
    checked_form(request, principal, form)
    with engine_of(request).db.transaction() as conn:
        request.app.state.identity.close_session(conn, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}", response_model=None)
def choose_language(request: Request, code: str) -> Response:
    back = request.headers.get("referer") or "/"
    response = RedirectResponse(back if code in LANGUAGES else "/", status_code=303)
    if code in LANGUAGES:
        response.set_cookie("lang", code, max_age=365 * 86400, samesite="lax", path="/")
    return response


# -- dashboard ------------------------------------------------------------------------------------------
def _visibility(principal: Principal) -> dict[str, Any]:
    if principal.has("manager", "integration"):
        return {"hidden_from": principal.name}
    return {"visible_to_user": principal.name, "visible_to_groups": sorted(principal.groups),
            "hidden_from": principal.name}


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    user = require_user(request)
    engine = engine_of(request)
    _mine, my_total = engine.query_tasks(TaskFilter(assignee=user.name, limit=1))
    _g, group_total = engine.query_tasks(TaskFilter(limit=1, **_visibility(user)))
    _o, overdue = engine.query_tasks(TaskFilter(limit=1, due_before=utcnow(), **_visibility(user)))
    with engine.db.read() as conn:
        running = conn.execute(sa.select(process_instance.c.process_key, sa.func.count())
                               .where(process_instance.c.state == "running")
                               .group_by(process_instance.c.process_key)
                               .order_by(process_instance.c.process_key)).all()
        failed = conn.execute(sa.select(sa.func.count()).select_from(job).where(job.c.state == "failed")).scalar_one()
        sla = crm_queries.incidents_by_sla(conn, utcnow())
        stages = pipeline(conn)
        today = datetime.now().astimezone().date()
        appointments = appointment_pages.agenda(conn, user.name, appointment_pages.local_midnight(today),
                                                appointment_pages.local_midnight(today + timedelta(days=1)),
                                                status="planned")
    return render(request, "dashboard.html", user=user, my_total=my_total, group_total=group_total, overdue=overdue,
                  running=running, failed=failed, sla=sla, stages=stages, stage_labels=STAGE_LABELS,
                  weighted_total=sum((s.weighted for s in stages), Decimal("0.00")), appointments=appointments)


# -- opportunities (the list behind the dashboard's pipeline) -------------------------------------------
@router.get("/opportunities", response_class=HTMLResponse)
def opportunities(request: Request, stage: str = "", page: int = 0) -> HTMLResponse:
    user = require_user(request)
    stage = stage if stage in STAGES else ""
    with engine_of(request).db.read() as conn:
        items, total = crm_lists.list_opportunities(conn, stage=stage or None, limit=50, offset=max(page, 0) * 50)
        names = crm_appointments.account_names(conn, [item["account_id"] for item in items])
    return render(request, "opportunities.html", user=user, items=items, total=total, stage=stage, page=page,
                  stages=STAGES, stage_labels=STAGE_LABELS, names=names)


# -- task inbox -----------------------------------------------------------------------------------------
@router.get("/tasks", response_class=HTMLResponse)
def inbox(request: Request, process: str = "", business_key: str = "", mine: bool = False, overdue: bool = False,
          sort: str = "due", page: int = 0) -> HTMLResponse:
    user = require_user(request)
    sort = sort if sort.lstrip("-") in ("due", "priority", "created") else "due"
    task_filter = TaskFilter(process_key=process or None, business_key=business_key or None,
                             assignee=user.name if mine else None, due_before=utcnow() if overdue else None,
                             sort=sort if sort != "priority" else "-priority", limit=50, offset=max(page, 0) * 50,
                             **_visibility(user))
    tasks, total = engine_of(request).query_tasks(task_filter)
    with engine_of(request).db.read() as conn:
        processes = [d.key for d in engine_of(request).repository.list(conn)]
    return render(request, "inbox.html", user=user, tasks=tasks, total=total, processes=processes, process=process,
                  business_key=business_key, mine=mine, overdue=overdue, sort=sort, page=page)


@router.post("/tasks/{task_id}/claim", response_class=HTMLResponse)
def claim(request: Request, task_id: str, form: PageForm) -> HTMLResponse:
    user = require_user(request)
    checked_form(request, user, form)
    task = engine_of(request).get_task(task_id)
    if not access.may_read_task(request, user, task):
        raise PageForbidden()
    message = None
    try:
        task = engine_of(request).claim(task_id, user.name)
    except (Conflict, InvalidState) as exc:
        message = str(exc)
    return render(request, "task_row.html", user=user, task=task, message=message)


@router.post("/tasks/{task_id}/unclaim", response_class=HTMLResponse)
def unclaim(request: Request, task_id: str, form: PageForm) -> HTMLResponse:
    user = require_user(request)
    checked_form(request, user, form)
    task = engine_of(request).get_task(task_id)
    if task.assignee not in (None, user.name) and not user.has("manager"):
        raise PageForbidden()
    return render(request, "task_row.html", user=user, task=engine_of(request).unclaim(task_id, user.name))


def _task_page(request: Request, user: Principal, task_id: str, values: dict[str, Any] | None = None,
               errors: dict[str, FieldError] | None = None, message: str | None = None,
               status_code: int = 200) -> HTMLResponse:
    engine = engine_of(request)
    task = engine.get_task(task_id)
    if not access.may_read_task(request, user, task):
        raise PageForbidden()
    schema = engine.task_form(task_id)
    instance = engine.get_instance(task.instance_id)
    context = engine.task_data(task_id)  # read-only fields show it also when a refused submission is shown again
    fields = fields_of(schema, values if values is not None else context, context)
    return render(request, "task.html", status_code, user=user, task=task, schema=schema, fields=fields,
                  errors=errors or {}, message=message, instance=instance)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_form(request: Request, task_id: str) -> HTMLResponse:
    return _task_page(request, require_user(request), task_id)


@router.post("/tasks/{task_id}", response_model=None)
def complete_task(request: Request, task_id: str, form: PageForm) -> Response:
    user = require_user(request)
    checked_form(request, user, form)
    engine = engine_of(request)
    schema = engine.task_form(task_id)
    data = parse_submission(schema, form)
    task = engine.get_task(task_id)
    if not access.may_read_task(request, user, task):
        raise PageForbidden()
    try:
        engine.complete_task(task_id, data, user=user.name)
    except FormValidationError as exc:
        errors = field_errors(schema, data, exc.errors)
        return _task_page(request, user, task_id, data, errors, "Bitte die markierten Felder korrigieren.", 422)
    except NotPermitted as exc:  # someone else's own task, or an approval of the caller's own request
        return _task_page(request, user, task_id, data, {}, str(exc), 403)
    except (InvalidState, Conflict) as exc:
        return _task_page(request, user, task_id, data, {}, str(exc), 409)
    return RedirectResponse("/tasks?done=" + quote(task.name or ""), status_code=303)


# -- process designer -----------------------------------------------------------------------------------
@router.get("/designer", response_class=HTMLResponse)
def designer_list(request: Request) -> HTMLResponse:
    user = require_user(request, "designer")
    engine = engine_of(request)
    with engine.db.read() as conn:
        definitions = engine.repository.list(conn, latest_only=False)
    return render(request, "designer_list.html", user=user, definitions=list(reversed(definitions)))


@router.get("/designer/edit", response_class=HTMLResponse)
def designer_edit(request: Request, key: str = "") -> HTMLResponse:
    user = require_user(request, "designer")
    return render(request, "designer.html", user=user, key=key)


# -- instances ------------------------------------------------------------------------------------------
@router.get("/instances", response_class=HTMLResponse)
def instances(request: Request, key: str = "", state: str = "running", page: int = 0) -> HTMLResponse:
    user = require_user(request)
    items, total = engine_of(request).query_instances(InstanceFilter(
        process_key=key or None, state=state or None, audience=access.audience(request, user), limit=50,
        offset=max(page, 0) * 50))
    return render(request, "instances.html", user=user, items=items, total=total, key=key, state=state, page=page)


@router.get("/instances/{instance_id}", response_class=HTMLResponse)
def instance_view(request: Request, instance_id: str, cursor: str = "") -> HTMLResponse:
    """The instance, its diagram and the latest page of its history (newest first; "ältere" pages on)."""
    user = require_user(request)
    access.visible_instance(request, user, instance_id)
    engine = engine_of(request)
    instance = engine.get_instance(instance_id)
    try:
        after = decode_cursor(cursor)[0] if cursor else None
    except ApiProblem:
        after = None  # a cursor typed by hand: show the latest page
    with engine.db.read() as conn:
        history = history_page(conn, instance_id, 100, after, newest_first=True)
        completed = completed_elements(conn, instance_id)
    older = encode_cursor(history.next_after, True) if history.next_after is not None else None
    failed = [j for j in engine.jobs(state="failed", instance_id=instance_id)]
    return render(request, "instance.html", user=user, instance=instance, history=history.items,
                  completed=completed, failed=failed, older=older, paged=bool(cursor))


@router.post("/instances/{instance_id}/cancel", response_model=None)
def cancel_instance(request: Request, instance_id: str, form: PageForm) -> Response:
    user = require_user(request, "manager")
    checked_form(request, user, form)
    access.visible_instance(request, user, instance_id)
    engine_of(request).cancel(instance_id, str(form.get("reason") or "") or None, user=user.name)
    return RedirectResponse(f"/instances/{instance_id}", status_code=303)


# -- customers and products ----------------------------------------------------------------------------
@router.get("/customers", response_class=HTMLResponse)
def customers(request: Request, q: str = "", page: int = 0) -> HTMLResponse:
    user = require_user(request)
    with engine_of(request).db.read() as conn:
        accounts, total = crm_queries.search_accounts(conn, q, limit=50, offset=max(page, 0) * 50)
    return render(request, "customers.html", user=user, accounts=accounts, total=total, q=q, page=page)


@router.get("/customers/{account_id}", response_class=HTMLResponse)
def customer(request: Request, account_id: int) -> HTMLResponse:
    user = require_user(request)
    engine = engine_of(request)
    with engine.db.read() as conn:
        try:
            view = crm_queries.account_360(conn, account_id)
        except DomainError as exc:
            raise NotFound(str(exc)) from exc
        startable = [d.key for d in engine.repository.list(conn)]
    processes, _total = engine.query_instances(InstanceFilter(business_key=view.account["number"],
                                                              audience=access.audience(request, user), limit=100))
    return render(request, "customer.html", user=user, view=view, processes=processes, startable=startable)


@router.post("/customers/{account_id}/start", response_model=None)
def start_for_customer(request: Request, account_id: int, form: PageForm) -> Response:
    user = require_user(request, "clerk", "manager")
    checked_form(request, user, form)
    engine = engine_of(request)
    with engine.db.read() as conn:
        number = crm_queries.account_360(conn, account_id).account["number"]
    instance = engine.start(str(form.get("process")), {"account_id": account_id, "account_number": number},
                            business_key=number, user=user.name)
    return RedirectResponse(f"/instances/{instance.id}", status_code=303)


@router.get("/products", response_class=HTMLResponse)
def products(request: Request) -> HTMLResponse:
    user = require_user(request)
    with engine_of(request).db.read() as conn:
        items = crm_queries.list_products(conn)
    return render(request, "products.html", user=user, products=items)


# -- incidents ------------------------------------------------------------------------------------------
@router.get("/incidents", response_class=HTMLResponse)
def incidents(request: Request) -> HTMLResponse:
    user = require_user(request, "manager", "designer")
    return render(request, "incidents.html", user=user, jobs=engine_of(request).jobs(state="failed", limit=500))


@router.post("/incidents/{job_id}/retry", response_model=None)
def retry_incident(request: Request, job_id: str, form: PageForm) -> Response:
    user = require_user(request, "manager")
    checked_form(request, user, form)
    engine_of(request).retry_job(job_id)
    return RedirectResponse("/incidents", status_code=303)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    app.include_router(customer_pages.router)  # before router: /customers/new is no /customers/{account_id}
    app.include_router(order_pages.router)
    app.include_router(invoice_pages.router)
    app.include_router(search_pages.router)
    app.include_router(router)
    app.include_router(quote_pages.router)
    app.include_router(board_pages.router)
    app.include_router(outbox_pages.router)
    app.include_router(appointment_pages.router)
    app.include_router(start_pages.router)

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login?next=" + quote(exc.next_path), status_code=303)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api/"):
            return problem(404, "Not found", str(exc), "not-found")
        return render(request, "message.html", 404, title="Nicht gefunden", text=str(exc))

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, _exc: PageForbidden) -> Response:
        return render(request, "message.html", 403, title="Keine Berechtigung",
                      text="Diese Seite oder Aktion ist Ihrer Rolle nicht freigegeben.")

