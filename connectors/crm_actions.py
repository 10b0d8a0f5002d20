"""``crm.*``: the service-task face of the CRM services, so processes change business data through one
validated path.

Each operator runs its CRM calls in one transaction of our database. A CRM ``DomainError`` (bad input, a
state change not allowed now) becomes the BPMN business error ``CrmRejected`` naming the field, which a
process can catch; anything else is technical and retried by the engine. Operators that create records are
safe to repeat: a retried job finds what the first attempt created instead of creating it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from crm import accounts, activities, credit, invoices, orders, production, quotes, service_desk, sla
from crm.business_calendar import BERLIN, office_calendar
from crm.errors import DomainError
from crm.schema import order, quote_position

from .registry import BusinessError, ConnectorContext, Registry

ESCALATION_SHARE = 0.75  # the team lead hears of an incident at 75 % of its resolution time


class QuoteRef(BaseModel):
    quote_id: int


class LineChange(BaseModel):
    line_no: int = Field(ge=1)
    quantity: Decimal | None = Field(default=None, gt=0)
    discount_percent: Decimal | None = Field(default=None, ge=0, le=100)


class Address(BaseModel):
    """A delivery/installation address as the order review form gives it (``crm.orders`` checks the values)."""

    name: str
    street: str
    postal_code: str
    city: str
    country: str = "DE"


class CreateOrder(BaseModel):
    quote_id: int
    drop_lines: list[int] = Field(default_factory=list)
    adjustments: list[LineChange] = Field(default_factory=list)
    delivery_address: Address | None = None


class OrderRef(BaseModel):
    order_id: int


class CreditParams(BaseModel):
    account_id: int
    amount: Decimal


class SubOrderStatus(BaseModel):
    sub_order_id: int
    status: str


class BookServices(BaseModel):
    order_id: int
    results: list[dict[str, Any]] = Field(default_factory=list)


class LogActivity(BaseModel):
    kind: str = "note"
    subject: str
    body: str | None = None
    account_id: int | None = None
    contact_id: int | None = None
    author: str = "silverflow"


class OpenIncident(BaseModel):
    account_id: int | None = Field(default=None, description="none for a mail from an unknown sender (triage)")
    summary: str
    impact: str
    urgency: str
    origin: str = "phone"
    contact_id: int | None = None
    category: str | None = None
    description: str | None = None
    reporter_email: str | None = None


class IncidentAction(BaseModel):
    incident_id: int
    action: str = Field(description="assign, pending, resume, resolve, close, reopen or attach")
    group: str | None = None
    assignee: str | None = None
    resolution: str | None = None
    by_person: bool = Field(default=False, description="a person's decision (counts as the first response)")
    account_id: int | None = Field(default=None, description="attach: the account triage found")
    contact_id: int | None = None


class IncidentLog(BaseModel):
    incident_id: int
    text: str
    public: bool = False
    author: str = "silverflow"
    by_agent: bool = Field(default=False, description="an agent's entry counts as the first response")


class SlaReports(BaseModel):
    period: str | None = Field(default=None, description="month like 2026-11; default the previous month")


class WorkingDeadline(BaseModel):
    working_days: int = Field(default=0, ge=0, le=366)
    working_hours: float = Field(default=0, ge=0, le=24 * 366)


class CreateProblem(BaseModel):
    title: str
    incident_ids: list[int] = Field(default_factory=list)


class ProblemWorkaround(BaseModel):
    problem_id: int
    root_cause: str | None = None
    workaround: str


class ResolveProblem(BaseModel):
    problem_id: int
    resolution: str


MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
          "November", "Dezember")


def _month_label(period: str) -> str:
    year, month = period.split("-")
    return f"{MONTHS[int(month) - 1]} {year}"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


class CrmActions:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.clock = clock

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except DomainError as exc:
            raise BusinessError("CrmRejected", str(exc), {"field": exc.field}) from None

    # -- sales ----------------------------------------------------------------------------------------
    def quote_summary(self, params: QuoteRef, context: ConnectorContext) -> dict[str, Any]:
        """The quote as a task shows it: positions with line numbers, totals, account and contact, and the
        account's address as the default delivery address the order review offers."""
        with self._transaction() as conn:
            row = quotes.get_quote(conn, params.quote_id)
            delivery = accounts.default_delivery_address(conn, row.account_id)
            lines = conn.execute(sa.select(quote_position).where(quote_position.c.quote_id == params.quote_id)
                                 .order_by(quote_position.c.line_no)).all()
            highest = quotes.max_discount(conn, params.quote_id)
        return {"quote_id": row.id, "number": row.number, "version": row.version, "status": row.status,
                "account_id": row.account_id, "contact_id": row.contact_id, "net": str(row.net),
                "gross": str(row.gross), "delivery_address": delivery, "max_discount": float(highest),
                "positions": [{"line_no": line.line_no, "description": line.description,
                               "quantity": str(line.quantity), "unit_price": str(line.unit_price),
                               "total": str(line.total)} for line in lines]}

    def create_order(self, params: CreateOrder, context: ConnectorContext) -> dict[str, Any]:
        """Order from the accepted quote, positions dropped and adjusted as the back office decided."""
        with self._transaction() as conn:
            existing = conn.execute(sa.select(order.c.id).where(order.c.quote_id == params.quote_id)).scalar()
            if existing is None:
                address = params.delivery_address.model_dump() if params.delivery_address else None
                existing = orders.create_order_from_quote(conn, params.quote_id, params.drop_lines, self.clock(),
                                                          delivery=address)
                for change in params.adjustments:
                    line_no = change.line_no - sum(1 for d in params.drop_lines if d < change.line_no)
                    orders.adjust_position(conn, existing, line_no, orders.Adjustment(
                        quantity=change.quantity, discount_percent=change.discount_percent))
            row = orders.get_order(conn, existing)
            plan = production.production_plan(conn, existing)
        return {"order_id": row.id, "number": row.number, "account_id": row.account_id, "status": row.status,
                "net": str(row.net), "gross": str(row.gross), "sub_orders": len(plan)}

    def credit_check(self, params: CreditParams, context: ConnectorContext) -> dict[str, Any]:
        """Overdue invoices or an amount above the limit make an order risky (a manager decides then)."""
        with self._transaction() as conn:
            result = credit.credit_check(conn, params.account_id, params.amount, self.clock().date())
        return {"risky": result.risky, "reason": result.reason}

    def cancel_order(self, params: OrderRef, context: ConnectorContext) -> dict[str, Any]:
        with self._transaction() as conn:
            if orders.get_order(conn, params.order_id).status != "cancelled":
                orders.cancel_order(conn, params.order_id)
        return {"order_id": params.order_id, "status": "cancelled"}

    # -- production -----------------------------------------------------------------------------------
    def start_production(self, params: OrderRef, context: ConnectorContext) -> dict[str, Any]:
        """The order goes into production; the result lists the sub-orders the process fans out over."""
        with self._transaction() as conn:
            if orders.get_order(conn, params.order_id).status == "open":
                orders.start_production(conn, params.order_id)
            plan = production.production_plan(conn, params.order_id)
        return {"order_id": params.order_id, "sub_orders": plan}

    def sub_order_status(self, params: SubOrderStatus, context: ConnectorContext) -> dict[str, Any]:
        with self._transaction() as conn:
            production.advance_sub_order(conn, params.sub_order_id, params.status, self.clock())
        return {"sub_order_id": params.sub_order_id, "status": params.status}

    def book_services(self, params: BookServices, context: ConnectorContext) -> dict[str, Any]:
        """Record the booked services with what provisioning produced; they are active from today."""
        now = self.clock()
        with self._transaction() as conn:
            ids = production.record_provisioning(conn, params.order_id, params.results, now.date(), now)
            summary = production.services_summary(conn, ids)
        return {"order_id": params.order_id, "services": summary}

    # -- relationship ---------------------------------------------------------------------------------
    def log_activity(self, params: LogActivity, context: ConnectorContext) -> dict[str, Any]:
        with self._transaction() as conn:
            activity_id = activities.log_activity(conn, activities.ActivityInput(
                kind=params.kind, subject=params.subject, author=params.author, body=params.body,
                account_id=params.account_id, contact_id=params.contact_id), now=self.clock())
        return {"activity_id": activity_id}

    # -- service desk ---------------------------------------------------------------------------------
    def open_incident(self, params: OpenIncident, context: ConnectorContext) -> dict[str, Any]:
        """Record the incident with priority and SLA deadlines; ``escalate_at`` is 75 % of the way to the
        resolution deadline, for the process's escalation timer."""
        with self._transaction() as conn:
            incident_id = service_desk.open_incident(
                conn, params.account_id, params.summary, impact=params.impact, urgency=params.urgency,
                origin=params.origin, contact_id=params.contact_id, category=params.category,
                description=params.description, reporter_email=params.reporter_email, now=self.clock())
            return self._incident(conn, incident_id)

    def _incident(self, conn: Connection, incident_id: int) -> dict[str, Any]:
        row = service_desk.get_incident(conn, incident_id)
        due = row.resolution_due
        escalate = sla.escalation_at(service_desk.sla_class_of(conn, row), str(row.priority), due, ESCALATION_SHARE)
        return {"incident_id": row.id, "number": row.number, "status": row.status, "priority": row.priority,
                "category": row.category, "account_id": row.account_id, "contact_id": row.contact_id,
                "response_due": _iso(row.response_due), "resolution_due": _iso(due), "escalate_at": _iso(escalate),
                "problem_id": row.problem_id, "reporter_email": row.reporter_email}

    def incident_action(self, params: IncidentAction, context: ConnectorContext) -> dict[str, Any]:
        """One status step of the incident; repeating the step it already made is a no-op, and assigning an
        assigned incident routes it on (a reopened incident is routed again)."""
        target = {"assign": "assigned", "pending": "pending", "resume": "assigned", "resolve": "resolved",
                  "close": "closed", "reopen": "assigned", "attach": "attach"}.get(params.action)
        if target is None:
            raise BusinessError("CrmRejected", f"action: unknown incident action {params.action!r}")
        now = self.clock()
        with self._transaction() as conn:
            current = service_desk.get_incident(conn, params.incident_id)
            if current.status != target or params.action in ("assign", "attach"):
                self._apply(conn, params, now)
            return self._incident(conn, params.incident_id)

    @staticmethod
    def _apply(conn: Connection, params: IncidentAction, now: datetime) -> None:
        if params.action == "assign":
            service_desk.route_incident(conn, params.incident_id, params.group or "servicedesk", params.assignee,
                                        now, by_person=params.by_person)
        elif params.action == "reopen":
            service_desk.reopen_incident(conn, params.incident_id, params.group or "servicedesk", params.assignee,
                                         now)
        elif params.action == "attach":
            if params.account_id is None:
                raise DomainError("account_id", "attach needs the account_id triage found")
            service_desk.attach_account(conn, params.incident_id, params.account_id, params.contact_id, now)
        elif params.action == "pending":
            service_desk.set_pending(conn, params.incident_id, now, by_person=params.by_person)
        elif params.action == "resume":
            service_desk.resume_incident(conn, params.incident_id, now)
        elif params.action == "resolve":
            service_desk.resolve_incident(conn, params.incident_id, params.resolution or "", now)
        else:
            service_desk.close_incident(conn, params.incident_id, now)

    def incident_log(self, params: IncidentLog, context: ConnectorContext) -> dict[str, Any]:
        with self._transaction() as conn:
            entry = service_desk.add_log_entry(conn, params.incident_id, params.author, params.text,
                                               "public" if params.public else "internal", self.clock(),
                                               by_agent=params.by_agent)
        return {"entry_id": entry}

    def working_deadline(self, params: WorkingDeadline, context: ConnectorContext) -> dict[str, Any]:
        """An instant in business time from now on the office calendar (working days, then working hours), for
        a timer's date expression: the supplier chase after "5 Arbeitstage" waits 5 working days, not P7D."""
        calendar = office_calendar()
        due = calendar.add_working_days(self.clock(), params.working_days)
        due = calendar.add(due, timedelta(hours=params.working_hours))
        return {"due": _iso(due)}

    def sla_reports(self, params: SlaReports, context: ConnectorContext) -> dict[str, Any]:
        """The month's SLA figures of every account with incidents, each with the contact who receives it
        (accounts without a contact with an e-mail address are listed as skipped)."""
        period = params.period
        if period is None:
            first = self.clock().astimezone(BERLIN).date().replace(day=1)
            period = (first - timedelta(days=1)).strftime("%Y-%m")
        reports, skipped = [], []
        with self._transaction() as conn:
            for account_id in service_desk.accounts_with_incidents(conn, period):
                contact_id = invoices.correspondence_contact(conn, account_id)
                if contact_id is None:
                    skipped.append(account_id)
                    continue
                figures = service_desk.sla_report(conn, account_id, period)
                reports.append({**figures, "contact_id": contact_id, "period_label": _month_label(period),
                                "account": accounts.account_display_name(conn, account_id)})
        return {"period": period, "reports": reports, "skipped": skipped}

    def create_problem(self, params: CreateProblem, context: ConnectorContext) -> dict[str, Any]:
        """A problem grouping the given open incidents (a retried job finds the problem it made)."""
        with self._transaction() as conn:
            linked = {service_desk.get_incident(conn, i).problem_id for i in params.incident_ids} - {None}
            problem_id = next(iter(linked)) if len(linked) == 1 else None
            if problem_id is None:
                problem_id = service_desk.create_problem(conn, params.title, now=self.clock())
            for incident_id in params.incident_ids:
                if service_desk.get_incident(conn, incident_id).problem_id != problem_id:
                    service_desk.link_incident(conn, int(problem_id), incident_id)
        return {"problem_id": problem_id, "incident_ids": params.incident_ids}

    def publish_workaround(self, params: ProblemWorkaround, context: ConnectorContext) -> dict[str, Any]:
        """Store root cause and workaround and tell every open linked incident (public log entry)."""
        now = self.clock()
        with self._transaction() as conn:
            incident_ids = service_desk.set_workaround(conn, params.problem_id, params.root_cause, params.workaround)
            for incident_id in incident_ids:
                service_desk.add_log_entry(conn, incident_id, "silverflow",
                                           f"Workaround: {params.workaround}", "public", now, by_agent=False)
        return {"problem_id": params.problem_id, "informed": incident_ids}

    def resolve_problem(self, params: ResolveProblem, context: ConnectorContext) -> dict[str, Any]:
        with self._transaction() as conn:
            resolved = service_desk.resolve_problem(conn, params.problem_id, params.resolution, self.clock())
            linked = service_desk.incidents_of_problem(conn, params.problem_id)
        return {"problem_id": params.problem_id, "resolved_incidents": resolved, "incident_ids": linked}


def register(registry: Registry, engine: Engine, clock: Callable[[], datetime] | None = None) -> CrmActions:
    actions = CrmActions(engine, clock) if clock else CrmActions(engine)
    registry.register("crm.quote_summary", actions.quote_summary, QuoteRef)
    registry.register("crm.create_order", actions.create_order, CreateOrder)
    registry.register("crm.credit_check", actions.credit_check, CreditParams)
    registry.register("crm.cancel_order", actions.cancel_order, OrderRef)
    registry.register("crm.start_production", actions.start_production, OrderRef)
    registry.register("crm.sub_order_status", actions.sub_order_status, SubOrderStatus)
    registry.register("crm.book_services", actions.book_services, BookServices)
    registry.register("crm.log_activity", actions.log_activity, LogActivity)
    registry.register("crm.open_incident", actions.open_incident, OpenIncident)
    registry.register("crm.incident_action", actions.incident_action, IncidentAction)
    registry.register("crm.incident_log", actions.incident_log, IncidentLog)
    registry.register("crm.working_deadline", actions.working_deadline, WorkingDeadline)
    registry.register("crm.sla_reports", actions.sla_reports, SlaReports)
    registry.register("crm.create_problem", actions.create_problem, CreateProblem)
    registry.register("crm.publish_workaround", actions.publish_workaround, ProblemWorkaround)
    registry.register("crm.resolve_problem", actions.resolve_problem, ResolveProblem)
    return actions



