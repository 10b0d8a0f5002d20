"""``crm.*`` operators for contract renewal: the service-task face of the CRM services that process uses.

Same rules as ``connectors.crm_actions``: one transaction per call, a CRM ``DomainError`` becomes the BPMN
business error ``CrmRejected``, creating operators are safe to repeat.

``crm.contract_reminders`` takes the contracts whose renewal reminder is due and marks them reminded in the
same transaction, so the next daily run does not ask about them again. ``crm.contract_decision`` applies what
sales decided: renew (extend the term), let expire (give notice) or renegotiate (a follow-up note on the
account for the account owner). A retried decision finds its own work done instead of doing it twice.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from crm import activities, contracts
from crm.invoices import correspondence_contact
from crm.schema import account, activity

from .crm_actions import CrmActions
from .registry import ConnectorContext, Registry

Decision = Literal["renew", "renegotiate", "let_expire"]


class ContractReminders(BaseModel):
    today: date | None = Field(default=None, description="the day of the run, default: today")


class ContractDecision(BaseModel):
    contract_id: int
    decision: Decision
    expected_end: date = Field(description="the end date sales decided on: a renewal extends from it once")
    months: int | None = Field(default=None, ge=1, le=120, description="renewal term, default: the contract's")
    note: str | None = Field(default=None, max_length=2000)
    author: str = Field(default="silverflow", min_length=1, max_length=200)


class ContractActions(CrmActions):
    def contract_reminders(self, params: ContractReminders, context: ConnectorContext) -> dict[str, Any]:
        """The contracts whose renewal reminder is due today, each marked reminded for its current term."""
        today = params.today or self.clock().date()
        with self._transaction() as conn:
            due = contracts.reminders_due(conn, today)
            for contract_id in due:
                contracts.mark_reminded(conn, contract_id, today)
            found = [self._summary(conn, contract_id) for contract_id in due]
        return {"today": today.isoformat(), "count": len(found), "contracts": found}

    def contract_decision(self, params: ContractDecision, context: ConnectorContext) -> dict[str, Any]:
        """Apply the renewal decision to the contract; the result tells the customer mail what happened."""
        today = self.clock().date()
        activity_id = None
        with self._transaction() as conn:
            row = contracts.get_contract(conn, params.contract_id)
            if params.decision == "renew" and row.end_date <= params.expected_end:
                contracts.renew_contract(conn, params.contract_id, params.months)
            elif params.decision == "let_expire" and row.status == "active":
                contracts.give_notice(conn, params.contract_id, today)
            elif params.decision == "renegotiate":
                activity_id = self._follow_up(conn, row, params)
            summary = self._summary(conn, params.contract_id)
        return {**summary, "decision": params.decision, "activity_id": activity_id}

    def _follow_up(self, conn: Connection, row: Any, params: ContractDecision) -> int:
        """A note on the account asking its owner to renegotiate (the same one again when the job is retried)."""
        subject = f"Vertrag {row.number} neu verhandeln (Ende {row.end_date:%d.%m.%Y})"
        existing = conn.execute(sa.select(activity.c.id).where(activity.c.account_id == row.account_id,
                                                                activity.c.subject == subject)).scalar()
        if existing is not None:
            return int(existing)
        body = f"Kündigungsfrist bis {row.notice_deadline:%d.%m.%Y}." + (f"\n{params.note}" if params.note else "")
        return activities.log_activity(conn, activities.ActivityInput(
            kind="note", subject=subject, body=body, author=params.author, account_id=int(row.account_id)),
            now=self.clock())

    @staticmethod
    def _summary(conn: Connection, contract_id: int) -> dict[str, Any]:
        """What the renewal task shows and the customer mail needs: contract, account, owner, contact."""
        row = contracts.get_contract(conn, contract_id)
        customer = conn.execute(sa.select(account.c.name, account.c.number, account.c.owner)
                                .where(account.c.id == row.account_id)).one()
        return {"contract_id": row.id, "number": row.number, "status": row.status,
                "account_id": row.account_id, "account_name": customer.name, "account_number": customer.number,
                "owner": customer.owner, "contact_id": correspondence_contact(conn, int(row.account_id)),
                "start_date": row.start_date.isoformat(), "end_date": row.end_date.isoformat(),
                "notice_deadline": row.notice_deadline.isoformat(), "auto_renewal": row.auto_renewal,
                "renewal_months": row.renewal_months,
                "booked_service_ids": contracts.services_of_contract(conn, contract_id)}


def register(registry: Registry, engine: Engine) -> ContractActions:
    actions = ContractActions(engine)
    registry.register("crm.contract_reminders", actions.contract_reminders, ContractReminders)
    registry.register("crm.contract_decision", actions.contract_decision, ContractDecision)
    return actions
