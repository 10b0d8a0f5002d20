"""``crm.*`` operators for campaign mailings:
the service-task face of the CRM services those processes use.

Same rules as ``connectors.crm_actions``: one transaction per call, a CRM ``DomainError`` becomes the BPMN
business error ``CrmRejected``, creating operators are safe to repeat.

``crm.campaign_recipients`` chooses who gets a campaign's mail (one person per company, opted-out contacts and
those mailed by an earlier run left out); the mails themselves go out through ``mail.send`` with ``campaign_id``,
which records each send as the contact's history entry linked to the campaign. ``crm.campaign_mailing_list``
tags the recipients as campaign members and keeps the list as a CSV document: campaigns hold no documents of
their own, so it is an internal document (no account) whose reference the process keeps, the way a Camunda
process keeps a file reference and an Odoo mailing its exported recipient list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.engine import Connection, Engine

from crm import campaigns
from crm.documents import DocumentLinks, DocumentStore
from crm.schema import campaign, document

from .crm_actions import CrmActions
from .registry import ConnectorContext, Registry


class RecipientQuery(BaseModel):
    campaign_id: int
    segment: str | None = Field(default=None, description="instead of the members: accounts with this segment tag")
    account_status: str | None = Field(default=None, description="instead of the members: accounts in this status")

    @field_validator("segment", "account_status", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        """A form's empty field means "no query": the campaign's members are mailed."""
        return None if isinstance(value, str) and not value.strip() else value


class MailingList(BaseModel):
    campaign_id: int
    contact_ids: list[int]


class CampaignActions(CrmActions):
    def __init__(self, engine: Engine, store: DocumentStore | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(engine, clock)
        self.store = store or DocumentStore()

    def campaign_recipients(self, params: RecipientQuery, context: ConnectorContext) -> dict[str, Any]:
        """The mailing's recipients (one per company) and everyone left out, each with the reason."""
        with self._transaction() as conn:
            people = campaigns.mailing_audience(conn, params.campaign_id, params.segment, params.account_status)
            choice = campaigns.choose_recipients(people, campaigns.campaign_mail_times(conn, params.campaign_id))
            name = conn.execute(sa.select(campaign.c.name).where(campaign.c.id == params.campaign_id)).scalar_one()
        return {"campaign_id": params.campaign_id, "campaign_name": name, "recipients": choice.recipients,
                "skipped": choice.skipped}

    def campaign_mailing_list(self, params: MailingList, context: ConnectorContext) -> dict[str, Any]:
        """Tag the recipients as campaign members and store their list as CSV (a retry finds the same document)."""
        with self._transaction() as conn:
            campaigns.add_members(conn, params.campaign_id, params.contact_ids, now=self.clock())
            rows = campaigns.mailing_list_rows(conn, params.campaign_id, params.contact_ids)
            data = campaigns.mailing_list_csv(rows)
            file_name = campaigns.mailing_list_file_name(params.campaign_id)
            document_id = self._existing(conn, data, file_name)
            if document_id is None:
                document_id = self.store.store(conn, data, file_name, "text/csv", DocumentLinks(),
                                               uploaded_by=campaigns.MAILING_LIST_UPLOADER, now=self.clock())
        digest = hashlib.sha256(data).hexdigest()
        return {"document_id": document_id, "file_name": file_name, "path": str(self.store.path_of(digest)),
                "sha256": digest, "rows": len(rows)}

    @staticmethod
    def _existing(conn: Connection, data: bytes, file_name: str) -> int | None:
        found = conn.execute(sa.select(document.c.id).where(
            document.c.sha256 == hashlib.sha256(data).hexdigest(), document.c.file_name == file_name,
            document.c.account_id.is_(None))).scalar()
        return None if found is None else int(found)


def register(registry: Registry, engine: Engine, store: DocumentStore | None = None) -> CampaignActions:
    actions = CampaignActions(engine, store)
    registry.register("crm.campaign_recipients", actions.campaign_recipients, RecipientQuery)
    registry.register("crm.campaign_mailing_list", actions.campaign_mailing_list, MailingList)
    return actions
