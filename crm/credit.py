"""The credit check before an order goes into production: a rule the back office can explain to a customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .accounts import get_account
from .schema import invoice

NEW_CUSTOMER_LIMIT = Decimal("1000.00")
CUSTOMER_LIMIT = Decimal("5000.00")


@dataclass(frozen=True)
class CreditResult:
    risky: bool
    reason: str


def credit_check(conn: Connection, account_id: int, amount: Decimal, today: date) -> CreditResult:
    """Risky: overdue open invoices, or an amount above the limit (lower for a prospect without history)."""
    account = get_account(conn, account_id)
    overdue = conn.execute(
        sa.select(sa.func.count()).select_from(invoice)
        .where(invoice.c.account_id == account_id, invoice.c.status == "open", invoice.c.due_date < today)
    ).scalar_one()
    if overdue:
        return CreditResult(True, f"{overdue} überfällige Rechnung(en) offen")
    limit = NEW_CUSTOMER_LIMIT if account.status == "prospect" else CUSTOMER_LIMIT
    if amount > limit:
        return CreditResult(True, f"Auftragswert {amount} EUR über dem Limit von {limit} EUR")
    return CreditResult(False, "unauffällig")
