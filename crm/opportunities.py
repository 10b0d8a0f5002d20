"""Opportunities (sales pipeline): expected revenue × probability per stage, and the web contact form.

Setting an opportunity to ``won`` is what starts the order work; that wiring belongs to the process layer,
which watches :func:`set_stage`'s result. The weighted pipeline is rounded half-up to cents once per stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import ContactInput, contact_by_email, create_account, create_contact, get_account, search_key
from .activities import ActivityInput, log_activity
from .errors import DomainError
from .pricing import HUNDRED, to_cents
from .products import product_id_by_code
from .schema import account, campaign, contact, opportunity, product

OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
STAGES = (*OPEN_STAGES, "won", "lost")
DEFAULT_PROBABILITY = {"lead": 10, "qualified": 25, "proposal": 50, "negotiation": 75, "won": 100, "lost": 0}
SOURCES = ("web_form", "phone", "mail", "trade_fair", "campaign", "referral", "other")


@dataclass(frozen=True)
class OpportunityInput:
    account_id: int
    title: str
    expected_revenue: Decimal
    expected_close: date
    stage: str = "lead"
    probability: int | None = None  # None: the stage's default
    source: str = "other"
    product_id: int | None = None
    contact_id: int | None = None
    campaign_id: int | None = None
    owner: str | None = None


@dataclass(frozen=True)
class StageSum:
    stage: str
    count: int
    revenue: Decimal
    weighted: Decimal


def _probability(value: object, stage: str) -> int:
    if value is None:
        return DEFAULT_PROBABILITY[stage]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise DomainError(
            "probability", f"probability must be a whole percentage from 0 to 100, got {value!r}"
        )
    return value


def create_opportunity(conn: Connection, data: OpportunityInput, now: datetime | None = None) -> int:
    get_account(conn, data.account_id)
    stage = v.one_of("stage", data.stage, OPEN_STAGES)
    v.reference(conn, product, data.product_id, "product_id")
    v.reference(conn, contact, data.contact_id, "contact_id")
    v.reference(conn, campaign, data.campaign_id, "campaign_id")
    values = {
        "account_id": data.account_id,
        "contact_id": data.contact_id,
        "product_id": data.product_id,
        "campaign_id": data.campaign_id,
        "title": v.required_text("title", data.title, 300),
        "expected_revenue": v.money("expected_revenue", data.expected_revenue),
        "probability": _probability(data.probability, stage),
        "expected_close": data.expected_close,
        "stage": stage,
        "source": v.one_of("source", data.source, SOURCES),
        "owner": v.optional_text("owner", data.owner, 200),
        "created_at": v.timestamp(now),
    }
    return int(conn.execute(opportunity.insert().values(**values).returning(opportunity.c.id)).scalar_one())


def set_stage(
    conn: Connection,
    opportunity_id: int,
    stage: str,
    probability: int | None = None,
    now: datetime | None = None,
) -> str:
    """Move an open opportunity to any stage; won and lost are final (100 %, 0 %). Returns the old stage."""
    row = conn.execute(sa.select(opportunity.c.stage).where(opportunity.c.id == opportunity_id)).one_or_none()
    if row is None:
        raise DomainError("opportunity_id", f"opportunity {opportunity_id} does not exist")
    target = v.one_of("stage", stage, STAGES)
    if row.stage not in OPEN_STAGES:
        raise DomainError("stage", f"the opportunity is already {row.stage}")
    values: dict[str, object] = {"stage": target, "probability": _probability(probability, target)}
    if target in ("won", "lost"):
        values.update(probability=DEFAULT_PROBABILITY[target], closed_at=v.timestamp(now))
    updated = conn.execute(
        opportunity.update()
        .where(opportunity.c.id == opportunity_id, opportunity.c.stage == row.stage)
        .values(**values)
    )
    if updated.rowcount != 1:
        raise DomainError("stage", "the opportunity was changed concurrently; reload and retry")
    return str(row.stage)


_UPDATABLE = ("title", "expected_revenue", "probability", "expected_close", "owner", "product_id")


def update_opportunity(conn: Connection, opportunity_id: int, **changes: object) -> None:
    """Change an open opportunity's facts (the PATCH of the REST layer), checked as on creation; the stage has
    its own transition (:func:`set_stage`), and a won or lost one stays as it closed (``DomainError("stage")``).
    A ``probability`` of ``None`` goes back to the stage's default."""
    row = conn.execute(sa.select(opportunity.c.stage).where(opportunity.c.id == opportunity_id)).one_or_none()
    if row is None:
        raise DomainError("opportunity_id", f"opportunity {opportunity_id} does not exist")
    v.changeable(changes, _UPDATABLE)
    if row.stage not in OPEN_STAGES:
        raise DomainError("stage", f"the opportunity is already {row.stage}")
    values: dict[str, object] = {}
    if "title" in changes:
        values["title"] = v.required_text("title", changes["title"], 300)
    if "expected_revenue" in changes:
        values["expected_revenue"] = v.money("expected_revenue", changes["expected_revenue"])
    if "probability" in changes:
        values["probability"] = _probability(changes["probability"], row.stage)
    if "expected_close" in changes:
        values["expected_close"] = v.day("expected_close", changes["expected_close"])
    if "owner" in changes:
        values["owner"] = v.optional_text("owner", changes["owner"], 200)
    if "product_id" in changes:
        values["product_id"] = v.reference(conn, product, changes["product_id"], "product_id")
    if values:
        conn.execute(opportunity.update().where(opportunity.c.id == opportunity_id).values(**values))


def pipeline(
    conn: Connection, close_from: date | None = None, close_until: date | None = None
) -> list[StageSum]:
    """Per open stage: count, expected revenue and revenue weighted by probability (optionally by close date).

    The database sums revenue × probability (exact on cents, even where SQLite adds in binary floating point,
    because the result is read back rounded to cents); dividing by 100 and rounding happens here in Decimal.
    """
    weighted_cents = sa.type_coerce(
        opportunity.c.expected_revenue * opportunity.c.probability, sa.Numeric(18, 2)
    )
    query = (
        sa.select(
            opportunity.c.stage,
            sa.func.count(),
            sa.func.sum(opportunity.c.expected_revenue),
            sa.func.sum(weighted_cents),
        )
        .where(opportunity.c.stage.in_(OPEN_STAGES))
        .group_by(opportunity.c.stage)
    )
    if close_from is not None:
        query = query.where(opportunity.c.expected_close >= close_from)
    if close_until is not None:
        query = query.where(opportunity.c.expected_close <= close_until)
    found = {row[0]: row for row in conn.execute(query)}
    zero = Decimal("0.00")
    result = []
    for stage in OPEN_STAGES:
        row = found.get(stage)
        if row is None:
            result.append(StageSum(stage, 0, zero, zero))
        else:
            result.append(
                StageSum(
                    stage, int(row[1]), Decimal(row[2]).quantize(zero), to_cents(Decimal(row[3]) / HUNDRED)
                )
            )
    return result


@dataclass(frozen=True)
class WebInquiry:
    """What the public contact form sends."""

    company: str
    last_name: str
    email: str
    message: str
    first_name: str | None = None
    phone: str | None = None
    product_code: str | None = None
    expected_revenue: Decimal = Decimal("0.00")


def opportunity_from_web_form(
    conn: Connection, form: WebInquiry, expected_close: date, now: datetime | None = None
) -> int:
    """A lead from the web form; the account (by name) and contact (by e-mail) are reused or created."""
    company = v.required_text("company", form.company, 300)
    email = v.email(form.email)
    if email is None:
        raise DomainError("email", "email is required")
    product_id = None
    if form.product_code:
        product_id = product_id_by_code(conn, form.product_code)
        if product_id is None:
            raise DomainError("product_code", f"product {form.product_code!r} does not exist")
    account_id = (
        conn.execute(
            sa.select(account.c.id).where(account.c.name_key == search_key(company)).order_by(account.c.id)
        )
        .scalars()
        .first()
    )
    if account_id is None:
        account_id = create_account(conn, company, now=now)
    contact_id = contact_by_email(conn, account_id, email)
    if contact_id is None:
        contact_id = create_contact(
            conn,
            ContactInput(form.last_name, first_name=form.first_name, email=email, phone=form.phone),
            account_id,
            now=now,
        )
    opportunity_id = create_opportunity(
        conn,
        OpportunityInput(
            account_id=account_id,
            title=f"Web-Anfrage: {company}"[:300],
            expected_revenue=form.expected_revenue,
            expected_close=expected_close,
            source="web_form",
            product_id=product_id,
            contact_id=contact_id,
        ),
        now=now,
    )
    log_activity(
        conn,
        ActivityInput(
            kind="email_in", subject="Kontaktformular", body=form.message, author="web", contact_id=contact_id
        ),
        now=now,
    )
    return opportunity_id
