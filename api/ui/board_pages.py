"""Service-desk board: incidents by status with SLA countdowns, one incident (status, routing, log), phone
capture, and problems that group incidents of one cause. The engine's failed jobs live under /incidents; this
is the customers' incidents, hence /service-desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData

from crm import board_queries as bq
from crm import service_desk as sd
from crm.errors import DomainError
from crm.queries import SLA_STATES, sla_state
from crm.sla import LEVELS, PRIORITIES
from crm.status import check_transition
from engine.database import as_utc, utcnow
from engine.errors import NotFound

from ..deps import engine_of
from ..identity import Principal
from .i18n import language_of, translations
from .rendering import PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)

WRITERS = ("clerk", "manager")  # who may change incidents and problems; everybody logged in may look
STATUS_LABELS = {"new": "Neu", "assigned": "Zugewiesen", "pending": "Wartend", "resolved": "Gelöst",
                 "closed": "Geschlossen"}
LEVEL_LABELS = {"high": "hoch", "medium": "mittel", "low": "niedrig"}
ORIGIN_LABELS = {"phone": "Telefon", "mail": "E-Mail", "web": "Web", "rest": "REST", "monitoring": "Monitoring"}
SLA_LABELS = {"within": "im Rahmen", "at_risk": "gefährdet", "breached": "verletzt", "met": "eingehalten",
              "missed": "verfehlt"}
# the codes processes/incident.bpmn routes by (network, housing and voip go to the 2nd level)
CATEGORY_LABELS = {"network": "Netz / Internet", "voip": "Telefonie", "housing": "Housing", "mail": "E-Mail",
                   "hardware": "Hardware", "billing": "Rechnung"}
INCIDENT_PROCESS = "incident"
GROUPS = ("1st-level", "access", "voice", "housing", "backbone")  # suggestions; any group name is accepted
DONE_MESSAGES = {"status": "Status geändert.", "assigned": "Zuweisung gespeichert.", "created": "Störung erfasst.",
                 "analysis": "Analyse gespeichert.", "resolved": "Problem gelöst; seine offenen Störungen auch."}
FIELD_MESSAGES = {
    "summary": "Bitte eine Kurzbeschreibung angeben (höchstens 300 Zeichen).",
    "category": "Bitte eine Kategorie aus der Liste wählen.",
    "impact": "Bitte die Auswirkung wählen.",
    "urgency": "Bitte die Dringlichkeit wählen.",
    "contact_id": "Dieser Ansprechpartner gehört nicht zum Kunden.",
    "assigned_group": "Bitte eine Gruppe angeben (höchstens 100 Zeichen).",
    "assignee": "Der Name der Person ist zu lang (höchstens 200 Zeichen).",
    "resolution": "Bitte die Lösung beschreiben.",
    "text": "Bitte einen Text für den Eintrag angeben.",
    "title": "Bitte einen Titel angeben (höchstens 300 Zeichen).",
}


# -- helpers --------------------------------------------------------------------------------------------
def _t(request: Request, text: str, **args: str) -> str:
    """A message built in Python, translated like template texts (status names inside it too)."""
    gettext = translations(language_of(request)).gettext
    return gettext(text) % {k: gettext(v) for k, v in args.items()} if args else gettext(text)


@dataclass(frozen=True)
class Sla:
    """One deadline as the board shows it: its state for the colour and the time left or past."""

    state: str  # within, at_risk, breached (still open) or met, missed (done)
    overdue: bool
    duration: str
    due: datetime


def duration_text(delta: timedelta) -> str:
    """"3 h 20 min", "2 d 4 h", "15 min": full minutes, no seconds (a countdown, not a stopwatch)."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def sla_of(opened: datetime, due: datetime, done: datetime | None, now: datetime) -> Sla:
    opened_at, due_at, done_at = as_utc(opened), as_utc(due), as_utc(done)
    assert opened_at is not None and due_at is not None
    if done_at is not None:
        return Sla("met" if done_at <= due_at else "missed", done_at > due_at, duration_text(done_at - due_at), due_at)
    return Sla(sla_state(opened_at, due_at, now), due_at <= now, duration_text(due_at - now), due_at)


def _resolution_sla(row: dict[str, Any], now: datetime) -> Sla:
    return sla_of(row["opened_at"], row["resolution_due"], row["resolved_at"], now)


def _parse_id(raw: str, what: str) -> int:
    """Ids in the path are numbers; anything else is a page that does not exist, not a validation trace."""
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"{what} {raw!r} gibt es nicht")
    return int(raw)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _field_message(exc: DomainError) -> str:
    return FIELD_MESSAGES.get(exc.field, exc.message)


# -- the board ------------------------------------------------------------------------------------------
def _board(request: Request, user: Principal, group: str = "", prio: str = "", mine: bool = False,
           sla: str = "", status_code: int = 200, **extra: Any) -> HTMLResponse:
    now = utcnow()
    with engine_of(request).db.read() as conn:
        chosen = bq.BoardFilter(group=group or None, priority=prio or None, assignee=user.name if mine else None,
                                sla=sla or None, now=now)
        columns = bq.board_incidents(conn, chosen)
        totals = bq.board_totals(conn, chosen)
        groups = sorted(set(bq.assigned_groups(conn)) | set(GROUPS))
    for cards in columns.values():
        for card in cards:
            card["sla"] = _resolution_sla(card, now)
    extra.setdefault("errors", {})
    extra.setdefault("selected", set())
    return render(request, "board.html", status_code, user=user, columns=columns, totals=totals, groups=groups,
                  group=group, prio=prio, mine=mine, sla=sla, sla_states=SLA_STATES, priorities=PRIORITIES,
                  status_labels=STATUS_LABELS, sla_labels=SLA_LABELS, **extra)


@router.get("/service-desk", response_class=HTMLResponse)
def board(request: Request, group: str = "", priority: str = "", mine: bool = False, sla: str = "") -> HTMLResponse:
    """The board; ``sla`` (within, at_risk, breached) is where the dashboard's SLA tiles link to."""
    user = require_user(request)
    return _board(request, user, group, priority if priority in PRIORITIES else "", mine,
                  sla if sla in SLA_STATES else "")


@router.post("/service-desk/problems", response_model=None)
def group_into_problem(request: Request, form: PageForm) -> Response:
    """Checked incidents of the board become one new problem (all or nothing)."""
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    title = _text(form, "title")
    raw_ids = [str(v) for v in form.getlist("incident_ids")]
    selected = {int(v) for v in raw_ids if v.isdigit()}
    errors: dict[str, str] = {}
    if not title or len(title) > 300:
        errors["title"] = _t(request, FIELD_MESSAGES["title"])
    if not selected or len(selected) != len(raw_ids):
        errors["incident_ids"] = _t(request, "Bitte mindestens eine offene Störung auswählen.")
    if not errors:
        try:
            with engine_of(request).db.transaction() as conn:
                problem_id = sd.create_problem(conn, title)
                for incident_id in sorted(selected):
                    sd.link_incident(conn, problem_id, incident_id)
        except DomainError as exc:
            errors["incident_ids"] = _t(request, "Nicht zusammengefasst: %(grund)s", grund=exc.message)
        else:
            return RedirectResponse(f"/service-desk/problems/{problem_id}", status_code=303)
    return _board(request, user, status_code=422, errors=errors, title=title, selected=selected,
                  message=_t(request, "Bitte die markierten Felder korrigieren."))


# -- one incident ---------------------------------------------------------------------------------------
def _incident_page(request: Request, user: Principal, incident_id: int, status_code: int = 200,
                   **extra: Any) -> HTMLResponse:
    now = utcnow()
    with engine_of(request).db.read() as conn:
        try:
            item = bq.incident_detail(conn, incident_id)
        except DomainError as exc:
            raise NotFound(f"Störung {incident_id} gibt es nicht") from exc
        log = sd.incident_log_entries(conn, incident_id)
        groups = sorted(set(bq.assigned_groups(conn)) | set(GROUPS))
    response_sla = sla_of(item["opened_at"], item["response_due"], item["responded_at"], now)
    targets = sorted(sd.INCIDENT_TRANSITIONS.get(item["status"], frozenset()),
                     key=lambda s: list(STATUS_LABELS).index(s))
    extra.setdefault("errors", {})
    extra.setdefault("values", {})
    done = request.query_params.get("done", "")
    return render(request, "board_incident.html", status_code, user=user, item=item, groups=groups,
                  public_log=[e for e in log if e.visibility == "public"],
                  internal_log=[e for e in log if e.visibility == "internal"],
                  response_sla=response_sla, resolution_sla=_resolution_sla(item, now), targets=targets,
                  status_labels=STATUS_LABELS, level_labels=LEVEL_LABELS, origin_labels=ORIGIN_LABELS,
                  sla_labels=SLA_LABELS, done=DONE_MESSAGES.get(done), can_write=user.has(*WRITERS), **extra)


@router.get("/service-desk/incidents/new", response_class=HTMLResponse)
def new_incident(request: Request, account_id: str = "", account: str = "") -> HTMLResponse:
    user = require_user(request, *WRITERS)
    return _capture_page(request, user, {"account": account or account_id})


def _capture_page(request: Request, user: Principal, values: dict[str, str], errors: dict[str, str] | None = None,
                  status_code: int = 200, message: str | None = None) -> HTMLResponse:
    found, contacts = None, []
    if values.get("account"):
        with engine_of(request).db.read() as conn:
            found = bq.find_account(conn, values["account"])
            contacts = bq.contacts_of(conn, found["id"]) if found else []
        if found is None and errors is None:
            errors = {"account": _t(request, "Kunde %(kunde)s nicht gefunden.", kunde=values["account"])}
    return render(request, "board_incident_new.html", status_code, user=user, values=values, errors=errors or {},
                  account=found, contacts=contacts, levels=LEVELS, level_labels=LEVEL_LABELS,
                  category_labels=CATEGORY_LABELS, message=message or (
                      _t(request, "Bitte die markierten Felder korrigieren.") if status_code == 422 else None))


def _capture_errors(request: Request, conn: Connection, values: dict[str, str]) -> tuple[dict[str, str], Any]:
    """Field by field, in German, before the process starts: its first step records the incident on a worker,
    where a refused field would only show up as a failed job."""
    errors: dict[str, str] = {}
    found = bq.find_account(conn, values["account"]) if values["account"] else None
    if not values["account"]:
        errors["account"] = _t(request, "Bitte den Kunden angeben (Kundennummer).")
    elif found is None:
        errors["account"] = _t(request, "Kunde %(kunde)s nicht gefunden.", kunde=values["account"])
    if values["contact_id"] and (found is None or not values["contact_id"].isdigit() or int(values["contact_id"])
                                 not in {c["id"] for c in bq.contacts_of(conn, found["id"])}):
        errors["contact_id"] = _t(request, FIELD_MESSAGES["contact_id"])
    for name in ("impact", "urgency"):
        if values[name] not in LEVELS:
            errors[name] = _t(request, FIELD_MESSAGES[name])
    if not values["summary"] or len(values["summary"]) > 300:
        errors["summary"] = _t(request, FIELD_MESSAGES["summary"])
    if values["category"] and values["category"] not in CATEGORY_LABELS:
        errors["category"] = _t(request, FIELD_MESSAGES["category"])
    return errors, found


@router.post("/service-desk/incidents/new", response_model=None)
def capture_incident(request: Request, form: PageForm) -> Response:
    """An incident taken on the phone starts the ``incident`` process (origin ``phone``): it records the incident
    with the SLA deadlines of the account's class, routes it and puts its task into the group's inbox."""
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    values = {name: _text(form, name) for name in ("account", "contact_id", "category", "impact", "urgency",
                                                   "summary", "description")}
    engine = engine_of(request)
    with engine.db.read() as conn:
        errors, found = _capture_errors(request, conn, values)
    if errors:
        return _capture_page(request, user, values, errors, 422)
    contact_id = int(values["contact_id"]) if values["contact_id"] else None
    variables = {"account_id": int(found["id"]), "contact_id": contact_id, "summary": values["summary"],
                 "impact": values["impact"], "urgency": values["urgency"],
                 "origin": "phone", "category": values["category"] or None,
                 "description": values["description"] or None}
    try:
        instance = engine.start(INCIDENT_PROCESS, variables, business_key=str(found["number"]), user=user.name)
    except NotFound:
        return _capture_page(request, user, values, {}, 409, message=_t(
            request, "Der Prozess „%(prozess)s“ ist nicht bereitgestellt; die Störung wurde nicht erfasst.",
            prozess=INCIDENT_PROCESS))
    return RedirectResponse(f"/instances/{instance.id}", status_code=303)


@router.get("/service-desk/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: str) -> HTMLResponse:
    user = require_user(request)
    return _incident_page(request, user, _parse_id(incident_id, "Störung"))


def _refusal(request: Request, current: str, target: str) -> str:
    allowed = ", ".join(_t(request, STATUS_LABELS[s]) for s in sorted(sd.INCIDENT_TRANSITIONS.get(current, ())))
    return _t(request, "Der Status kann nicht von „%(von)s“ auf „%(nach)s“ wechseln. Erlaubt: %(erlaubt)s.",
              von=STATUS_LABELS.get(current, current), nach=STATUS_LABELS.get(target, target),
              erlaubt=allowed or "–")


@router.post("/service-desk/incidents/{incident_id}/status", response_model=None)
def change_incident_status(request: Request, incident_id: str, form: PageForm) -> Response:
    """Only the transitions crm allows; a refused one is explained on the page (409), nothing is written."""
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    number = _parse_id(incident_id, "Störung")
    target, resolution = _text(form, "status"), _text(form, "resolution")
    values = {"status": target, "resolution": resolution}
    with engine_of(request).db.read() as conn:
        try:
            current = sd.get_incident(conn, number)
        except DomainError as exc:
            raise NotFound(f"Störung {number} gibt es nicht") from exc
    try:
        check_transition(sd.INCIDENT_TRANSITIONS, str(current.status), target)
    except DomainError:
        return _incident_page(request, user, number, 409, values=values,
                              message=_refusal(request, str(current.status), target))
    try:
        with engine_of(request).db.transaction() as conn:
            if target == "assigned":
                group = _text(form, "group") or str(current.assigned_group or "")
                if not group:
                    raise DomainError("assigned_group", "assigned_group is required")
                sd.assign_incident(conn, number, group, _text(form, "assignee") or str(current.assignee or "") or None)
            elif target == "pending":
                sd.set_pending(conn, number)
            elif target == "resolved":
                sd.resolve_incident(conn, number, resolution)
            else:
                sd.close_incident(conn, number)
    except DomainError as exc:
        errors = {exc.field: _t(request, _field_message(exc))}
        return _incident_page(request, user, number, 422 if exc.field != "status" else 409, values=values,
                              errors=errors, message=_t(request, "Status nicht geändert: %(grund)s",
                                                        grund=errors[exc.field]))
    return RedirectResponse(f"/service-desk/incidents/{number}?done=status", status_code=303)


@router.post("/service-desk/incidents/{incident_id}/assign", response_model=None)
def assign(request: Request, incident_id: str, form: PageForm) -> Response:
    """Route to a group (and person): the transition into ``assigned``, or a re-routing while assigned."""
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    number = _parse_id(incident_id, "Störung")
    group, person = _text(form, "group"), _text(form, "assignee")
    values = {"group": group, "assignee": person}
    with engine_of(request).db.read() as conn:
        try:
            status = str(sd.get_incident(conn, number).status)
        except DomainError as exc:
            raise NotFound(f"Störung {number} gibt es nicht") from exc
    if status != "assigned":
        try:
            check_transition(sd.INCIDENT_TRANSITIONS, status, "assigned")
        except DomainError:
            return _incident_page(request, user, number, 409, values=values,
                                  message=_refusal(request, status, "assigned"))
    try:
        with engine_of(request).db.transaction() as conn:
            sd.route_incident(conn, number, group, person or None)
    except DomainError as exc:
        field = "group" if exc.field == "assigned_group" else exc.field
        text = _t(request, _field_message(exc))
        return _incident_page(request, user, number, 422, values=values, errors={field: text},
                              message=_t(request, "Nicht zugewiesen: %(grund)s", grund=text))
    return RedirectResponse(f"/service-desk/incidents/{number}?done=assigned", status_code=303)


@router.post("/service-desk/incidents/{incident_id}/log", response_model=None)
def add_log(request: Request, incident_id: str, form: PageForm) -> Response:
    """A public or internal log entry; htmx swaps only the log section (``hx-select``), plain forms redirect."""
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    number = _parse_id(incident_id, "Störung")
    text, visibility = _text(form, "text"), _text(form, "visibility") or "internal"
    htmx = request.headers.get("HX-Request") == "true"
    try:
        with engine_of(request).db.transaction() as conn:
            sd.add_log_entry(conn, number, user.name, text, visibility)
    except DomainError as exc:
        if exc.field == "incident_id":
            raise NotFound(f"Störung {number} gibt es nicht") from exc
        errors = {"log_" + exc.field: _t(request, _field_message(exc))}
        # htmx swaps only 2xx answers: the error goes back as 200 into the log section
        return _incident_page(request, user, number, 200 if htmx else 422, errors=errors,
                              values={"log_text": text, "log_visibility": visibility})
    if htmx:
        return _incident_page(request, user, number, log_saved=True)
    return RedirectResponse(f"/service-desk/incidents/{number}#log", status_code=303)


# -- problems -------------------------------------------------------------------------------------------
def _problem_page(request: Request, user: Principal, problem_id: int, status_code: int = 200,
                  **extra: Any) -> HTMLResponse:
    now = utcnow()
    with engine_of(request).db.read() as conn:
        try:
            item, incidents = bq.problem_detail(conn, problem_id)
        except DomainError as exc:
            raise NotFound(f"Problem {problem_id} gibt es nicht") from exc
    for row in incidents:
        row["sla"] = _resolution_sla(row, now)
    extra.setdefault("errors", {})
    extra.setdefault("values", {})
    return render(request, "board_problem.html", status_code, user=user, problem=item, incidents=incidents,
                  status_labels=STATUS_LABELS, sla_labels=SLA_LABELS, can_write=user.has(*WRITERS),
                  done=DONE_MESSAGES.get(request.query_params.get("done", "")), **extra)


@router.get("/service-desk/problems/{problem_id}", response_class=HTMLResponse)
def problem_page(request: Request, problem_id: str) -> HTMLResponse:
    user = require_user(request)
    return _problem_page(request, user, _parse_id(problem_id, "Problem"))


@router.post("/service-desk/problems/{problem_id}", response_model=None)
def edit_problem(request: Request, problem_id: str, form: PageForm) -> Response:
    """Root cause and workaround, while the problem is open."""
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    number = _parse_id(problem_id, "Problem")
    values = {"root_cause": _text(form, "root_cause"), "workaround": _text(form, "workaround")}
    try:
        with engine_of(request).db.transaction() as conn:
            sd.record_analysis(conn, number, values)
    except DomainError as exc:
        if "does not exist" in exc.message:
            raise NotFound(f"Problem {number} gibt es nicht") from exc
        return _problem_page(request, user, number, 409, values=values,
                             message=_t(request, "Ein gelöstes Problem kann nicht mehr geändert werden."))
    return RedirectResponse(f"/service-desk/problems/{number}?done=analysis", status_code=303)


@router.post("/service-desk/problems/{problem_id}/resolve", response_model=None)
def resolve_problem(request: Request, problem_id: str, form: PageForm) -> Response:
    """Resolving the problem resolves every still-open incident linked to it, in one transaction."""
    user = require_user(request, *WRITERS)
    checked_form(request, user, form)
    number = _parse_id(problem_id, "Problem")
    resolution = _text(form, "resolution")
    try:
        with engine_of(request).db.transaction() as conn:
            sd.resolve_problem(conn, number, resolution)
    except DomainError as exc:
        if "does not exist" in exc.message:
            raise NotFound(f"Problem {number} gibt es nicht") from exc
        if exc.field == "resolution":
            return _problem_page(request, user, number, 422, values={"resolution": resolution},
                                 errors={"resolution": _t(request, FIELD_MESSAGES["resolution"])})
        return _problem_page(request, user, number, 409, values={"resolution": resolution},
                             message=_t(request, "Das Problem ist bereits gelöst."))
    return RedirectResponse(f"/service-desk/problems/{number}?done=resolved", status_code=303)

