"""``crm.*`` operators for campaign mailings:
the service-task face of the CRM services those processes use.

Same rules as ``connectors.crm_actions``: one transaction per call, a CRM ``DomainError`` becomes the BPMN
business error ``CrmRejected``, creating operators are safe to repeat.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from .crm_actions import CrmActions
from .registry import Registry


class CampaignActions(CrmActions):
    pass


def register(registry: Registry, engine: Engine) -> None:
    CampaignActions(engine)
