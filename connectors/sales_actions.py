"""``crm.*`` operators for acquisition (lead to quote) and opportunity-won:
the service-task face of the CRM services those processes use.

Same rules as ``connectors.crm_actions``: one transaction per call, a CRM ``DomainError`` becomes the BPMN
business error ``CrmRejected``, creating operators are safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy.engine import Connection, Engine

from crm import accounts, activities, appointments, products, quotes
from crm.errors import DomainError
from crm.positions import PositionInput
from crm.schema import product
from crm.service_queries import get_opportunity

from .crm_actions import CrmActions, QuoteRef
from .registry import ConnectorContext, Registry

Channel = Literal["manual", "web_form", "trade_fair"]
# how the first contact is filed in the history, per channel
FIRST_CONTACT = {"manual": ("call", "Erstkontakt (Vertrieb)"),
                 "web_form": ("email_in", "Erstkontakt (Kontaktformular)"),
                 "trade_fair": ("meeting", "Erstkontakt (Messe)")}


class FindDuplicates(BaseModel):
    company: str
    email: str | None = None


class CaptureLead(BaseModel):
    company: str
    last_name: str
    first_name: str | None = None
    salutation: str = "none"
    email: str | None = None
    phone: str | None = None
    account_id: int | None = Field(default=None, description="an existing account sales chose; none: a new one")
    channel: Channel = "manual"
    message: str | None = None
    owner: str | None = None


class BookAppointment(BaseModel):
    topic: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: list[str] = Field(description="user names; a form's comma-separated text is split")
    place: str | None = None
    account_id: int | None = None
    contact_id: int | None = None

    @field_validator("participants", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [name.strip() for name in value.split(",") if name.strip()] if isinstance(value, str) else value


class CataloguePosition(BaseModel):
    product_code: str = Field(min_length=1)
    quantity: Decimal = Field(default=Decimal(1), gt=0)
    discount_percent: Decimal | None = Field(default=None, ge=0, le=100)


class PrepareQuote(BaseModel):
    account_id: int
    contact_id: int | None = None
    positions: list[CataloguePosition]
    valid_days: int = Field(default=30, ge=1, le=365)
    quote_id: int | None = Field(default=None, description="the draft to revise (after a refused discount)")


class QuoteStatus(BaseModel):
    quote_id: int
    status: Literal["sent", "accepted", "rejected", "expired"]


class DiscountApproval(BaseModel):
    quote_id: int
    approved_by: str = Field(min_length=1, max_length=200,
                             description="login of the manager who approved (the task's completedBy variable)")


class OpportunityRef(BaseModel):
    opportunity_id: int


class OpportunityQuote(BaseModel):
    opportunity_id: int
    positions: list[CataloguePosition]
    valid_days: int = Field(default=30, ge=1, le=365)


def _catalogue_positions(conn: Connection, items: Sequence[CataloguePosition]) -> list[PositionInput]:
    """Positions picked by product code, priced from the catalogue; an unknown code names its row."""
    if not items:
        raise DomainError("positions", "at least one position is required")
    result = []
    for index, item in enumerate(items):
        product_id = products.product_id_by_code(conn, item.product_code)
        if product_id is None:
            raise DomainError(f"positions[{index}].product_code",
                              f"product {item.product_code!r} is not in the catalogue")
        result.append(PositionInput(item.quantity, product_id, discount_percent=item.discount_percent))
    return result


def expiry_of(valid_until: date) -> str:
    """The instant a quote expires: the start of the day after its last valid day (UTC), for a BPMN timer."""
    return datetime.combine(valid_until + timedelta(days=1), time(0), UTC).isoformat()


class SalesActions(CrmActions):
    # -- lead -----------------------------------------------------------------------------------------
    def find_duplicates(self, params: FindDuplicates, context: ConnectorContext) -> dict[str, Any]:
        """Accounts with the lead's company name or a contact with its e-mail address."""
        with self._transaction() as conn:
            found = accounts.possible_duplicates(conn, params.company, params.email)
        return {"found": bool(found), "candidates": [asdict(d) for d in found]}

    def capture_lead(self, params: CaptureLead, context: ConnectorContext) -> dict[str, Any]:
        """Account (the chosen one, else a new prospect) and contact (reused by e-mail), with the first contact
        in the history. A retried job finds the account and contact its first attempt created."""
        now = self.clock()
        with self._transaction() as conn:
            account_id = params.account_id if params.account_id is not None else self._captured(conn, params)
            if account_id is None:
                account_id = accounts.create_account(conn, params.company, owner=params.owner, now=now)
            else:
                accounts.get_account(conn, account_id)
            contact_id = accounts.contact_by_email(conn, account_id, params.email) if params.email else None
            if contact_id is None:
                contact_id = accounts.create_contact(conn, accounts.ContactInput(
                    params.last_name, salutation=params.salutation, first_name=params.first_name,
                    email=params.email, phone=params.phone), account_id, now=now)
            kind, subject = FIRST_CONTACT[params.channel]
            activity_id = activities.log_activity(conn, activities.ActivityInput(
                kind=kind, subject=subject, author=params.owner or "silverflow", body=params.message,
                contact_id=contact_id), now=now)
            number = accounts.get_account(conn, account_id).number
        return {"account_id": account_id, "account_number": number, "contact_id": contact_id,
                "activity_id": activity_id}

    @staticmethod
    def _captured(conn: Connection, params: CaptureLead) -> int | None:
        """An account of this name that already has a contact with this e-mail: the same lead, captured before."""
        if not params.email:
            return None
        return next((d.account_id for d in accounts.possible_duplicates(conn, params.company, params.email)
                     if d.matched_by == ["name", "email"]), None)

    def book_appointment(self, params: BookAppointment, context: ConnectorContext) -> dict[str, Any]:
        """Book the appointment; a participant already booked then is the business error ``CrmRejected``."""
        data = appointments.AppointmentInput(
            topic=params.topic, starts_at=params.starts_at, ends_at=params.ends_at, participants=params.participants,
            place=params.place, account_id=params.account_id, contact_id=params.contact_id)
        with self._transaction() as conn:
            appointment_id = appointments.booked_appointment(conn, data) \
                or appointments.create_appointment(conn, data, now=self.clock())
        return {"appointment_id": appointment_id, "starts_at": params.starts_at.isoformat(),
                "ends_at": params.ends_at.isoformat()}

    # -- quote ----------------------------------------------------------------------------------------
    def prepare_quote(self, params: PrepareQuote, context: ConnectorContext) -> dict[str, Any]:
        """A draft quote from catalogue positions, or the revised positions of the draft ``quote_id``."""
        valid_until = self.clock().date() + timedelta(days=params.valid_days)
        with self._transaction() as conn:
            positions = _catalogue_positions(conn, params.positions)
            if params.quote_id is not None:
                quotes.update_positions(conn, params.quote_id, positions)
                quote_id = params.quote_id
            else:
                quote_id = self._new_quote(conn, params.account_id, params.contact_id, valid_until, positions)
        return self._offer(quote_id, params.positions, context)

    def _new_quote(self, conn: Connection, account_id: int, contact_id: int | None, valid_until: date,
                   positions: list[PositionInput]) -> int:
        return quotes.matching_quote(conn, account_id, contact_id, valid_until, positions) \
            or quotes.create_quote(conn, account_id, positions, valid_until, contact_id=contact_id, now=self.clock())

    def _offer(self, quote_id: int, positions: Sequence[CataloguePosition],
               context: ConnectorContext) -> dict[str, Any]:
        """The quote as the process needs it: summary, validity, expiry instant and the highest discount."""
        summary = self.quote_summary(QuoteRef(quote_id=quote_id), context)
        with self._transaction() as conn:
            valid_until = quotes.get_quote(conn, quote_id).valid_until
        discounts = [p.discount_percent for p in positions if p.discount_percent is not None]
        return {**summary, "valid_until": valid_until.isoformat(), "expires_at": expiry_of(valid_until),
                "max_discount": float(max(discounts, default=Decimal(0)))}

    def quote_status(self, params: QuoteStatus, context: ConnectorContext) -> dict[str, Any]:
        """Sent, accepted, rejected or expired, as the customer's answer or the calendar decides; repeating the
        status the quote already has is a no-op."""
        now = self.clock()
        change: dict[str, Callable[[Connection], None]] = {
            "sent": lambda conn: quotes.send_quote(conn, params.quote_id, now),
            "accepted": lambda conn: quotes.accept_quote(conn, params.quote_id, now),
            "rejected": lambda conn: quotes.reject_quote(conn, params.quote_id, now),
            "expired": lambda conn: quotes.expire_quote(conn, params.quote_id),
        }
        with self._transaction() as conn:
            if quotes.get_quote(conn, params.quote_id).status != params.status:
                change[params.status](conn)
            row = quotes.get_quote(conn, params.quote_id)
        return {"quote_id": row.id, "number": row.number, "status": row.status}

    def approve_quote_discount(self, params: DiscountApproval, context: ConnectorContext) -> dict[str, Any]:
        """Record management's approval of the draft's discount on the quote (what sending and ordering check)."""
        with self._transaction() as conn:
            quotes.approve_discount(conn, params.quote_id, params.approved_by, now=self.clock())
            row = quotes.get_quote(conn, params.quote_id)
        return {"quote_id": row.id, "approved_by": row.discount_approved_by,
                "approved_percent": float(row.discount_approved_percent)}

    # -- opportunity ----------------------------------------------------------------------------------
    def opportunity_summary(self, params: OpportunityRef, context: ConnectorContext) -> dict[str, Any]:
        """The won opportunity for the back office's order form, with its product as the suggested position."""
        with self._transaction() as conn:
            row = get_opportunity(conn, params.opportunity_id)
            customer = accounts.get_account(conn, row["account_id"])
            item = conn.execute(product.select().where(product.c.id == row["product_id"])).one_or_none()
        suggested = [{"product_code": item.code, "quantity": 1}] if item is not None else []
        return {"opportunity_id": row["id"], "title": row["title"], "stage": row["stage"],
                "account_id": row["account_id"], "account_number": customer.number, "account_name": customer.name,
                "contact_id": row["contact_id"], "expected_revenue": str(row["expected_revenue"]),
                "product_code": item.code if item is not None else None,
                "product_name": item.name if item is not None else None, "positions": suggested}

    def quote_for_opportunity(self, params: OpportunityQuote, context: ConnectorContext) -> dict[str, Any]:
        """The won opportunity's deal as an accepted quote (what an order is made from)."""
        now = self.clock()
        with self._transaction() as conn:
            row = get_opportunity(conn, params.opportunity_id)
            if row["stage"] != "won":
                raise DomainError("opportunity_id", f"opportunity {row['id']} is {row['stage']}, not won")
            positions = _catalogue_positions(conn, params.positions)
            quote_id = self._new_quote(conn, row["account_id"], row["contact_id"],
                                       now.date() + timedelta(days=params.valid_days), positions)
            if quotes.get_quote(conn, quote_id).status == "draft":
                quotes.send_quote(conn, quote_id, now)
                quotes.accept_quote(conn, quote_id, now)
        return self._offer(quote_id, params.positions, context)


def register(registry: Registry, engine: Engine, clock: Callable[[], datetime] | None = None) -> SalesActions:
    actions = SalesActions(engine, clock) if clock else SalesActions(engine)
    registry.register("crm.find_duplicates", actions.find_duplicates, FindDuplicates)
    registry.register("crm.capture_lead", actions.capture_lead, CaptureLead)
    registry.register("crm.book_appointment", actions.book_appointment, BookAppointment)
    registry.register("crm.prepare_quote", actions.prepare_quote, PrepareQuote)
    registry.register("crm.quote_status", actions.quote_status, QuoteStatus)
    registry.register("crm.approve_quote_discount", actions.approve_quote_discount, DiscountApproval)
    registry.register("crm.opportunity_summary", actions.opportunity_summary, OpportunityRef)
    registry.register("crm.quote_for_opportunity", actions.quote_for_opportunity, OpportunityQuote)
    return actions
