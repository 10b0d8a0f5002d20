"""``crm.campaign_*`` and ``mail.send`` for a campaign: who gets the mailing, the CSV list kept once, and a
retried send that mails once and leaves one history entry linked to the campaign."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from connectors import campaign_actions, mail
from connectors.registry import BusinessError, ConnectorContext, Registry
from crm.accounts import ContactInput, create_account, create_contact, set_account_status
from crm.activities import ActivityInput, log_activity
from crm.campaigns import create_campaign
from crm.documents import DocumentStore
from crm.schema import activity, document
from engine.database import create_db_engine
from tests.support.live_app import free_port
from tests.support.smtp import Collector


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[tuple[Registry, sa.engine.Engine, Collector]]:
    engine = create_db_engine(db_url)
    inbox = Collector()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    registry = Registry()
    campaign_actions.register(registry, engine, DocumentStore(tmp_path / "documents"))
    mail.register(registry, mail.MailConfig(port=smtp.port, documents_dir=tmp_path / "documents"), engine=engine)
    try:
        yield registry, engine, inbox
    finally:
        smtp.stop()
        engine.dispose()


def ctx(key: str = "job-1") -> ConnectorContext:
    return ConnectorContext(key, "instance", "element", "K-1")


def _customers(engine: sa.engine.Engine) -> dict[str, int]:
    """Two xDSL customers (one already had the campaign's mail through its buyer), a prospect with the same
    segment, and a freelancer without an account."""
    with engine.begin() as conn:
        ids = {"campaign": create_campaign(conn, "Glasfaser-Aktion", "mailing", date(2026, 5, 1), date(2026, 5, 31))}
        served = create_account(conn, "Alpha GmbH", segments=["xdsl"])
        fresh = create_account(conn, "Beta AG", segments=["xdsl", "voip"])
        prospect = create_account(conn, "Gamma KG", segments=["xdsl"])
        for account_id in (served, fresh):
            set_account_status(conn, account_id, "customer")
        ids["alpha_buyer"] = create_contact(conn, ContactInput(last_name="Adler", email="adler@alpha.example",
                                                               role="Einkauf"), served)
        ids["alpha_boss"] = create_contact(conn, ContactInput(last_name="Zorn", email="zorn@alpha.example",
                                                              role="Geschäftsführer"), served)
        ids["beta_owner"] = create_contact(conn, ContactInput(last_name="Zimmer", email="zimmer@beta.example",
                                                              role="Inhaberin", salutation="Frau"), fresh)
        ids["beta_other"] = create_contact(conn, ContactInput(last_name="Bauer", email="bauer@beta.example"), fresh)
        ids["gamma"] = create_contact(conn, ContactInput(last_name="Groß", email="gross@gamma.example"), prospect)
        ids["freelancer"] = create_contact(conn, ContactInput(last_name="Frei", email="frei@example.org"))
        log_activity(conn, ActivityInput(kind="email_out", subject="Glasfaser", author="silverflow",
                                         contact_id=ids["alpha_buyer"], campaign_id=ids["campaign"]))
    return ids


def test_a_query_selects_one_decision_maker_per_company_and_skips_companies_already_mailed(
        setup: tuple[Registry, sa.engine.Engine, Collector]) -> None:
    registry, engine, _inbox = setup
    ids = _customers(engine)
    result = registry.run("crm.campaign_recipients", {"campaign_id": ids["campaign"], "segment": "xdsl",
                                                      "account_status": "customer"}, ctx())
    assert result["campaign_name"] == "Glasfaser-Aktion"
    assert [(r["contact_id"], r["reason"]) for r in result["recipients"]] == [(ids["beta_owner"], "decision_maker")]
    assert result["recipients"][0]["letter_salutation"] == "Sehr geehrte Frau Zimmer"
    assert {s["contact_id"]: s["reason"] for s in result["skipped"]} == {
        ids["alpha_buyer"]: "already_mailed", ids["alpha_boss"]: "already_mailed",
        ids["beta_other"]: "other_contact_chosen"}
    members_only = registry.run("crm.campaign_recipients", {"campaign_id": ids["campaign"], "segment": " "}, ctx())
    assert members_only["recipients"] == [] and members_only["skipped"] == []  # the campaign has no members yet


def test_unknown_campaign_and_bad_query_are_business_errors_naming_the_field(
        setup: tuple[Registry, sa.engine.Engine, Collector]) -> None:
    registry, engine, _inbox = setup
    ids = _customers(engine)
    with pytest.raises(BusinessError) as unknown:
        registry.run("crm.campaign_recipients", {"campaign_id": 999_999}, ctx())
    assert unknown.value.code == "CrmRejected" and unknown.value.data == {"field": "campaign_id"}
    with pytest.raises(BusinessError) as status:
        registry.run("crm.campaign_recipients", {"campaign_id": ids["campaign"], "account_status": "vip"}, ctx())
    assert status.value.data == {"field": "account_status"}


def test_a_retried_campaign_mail_goes_out_once_and_the_csv_list_is_kept_once(
        setup: tuple[Registry, sa.engine.Engine, Collector]) -> None:
    registry, engine, inbox = setup
    ids = _customers(engine)
    send = {"contact_id": ids["beta_owner"], "template": "newsletter", "campaign_id": ids["campaign"],
            "values": {"headline": "Glasfaser für Beta", "message": "ab Juni verfügbar."}}
    first = registry.run("mail.send", send, ctx("job-7"))
    again = registry.run("mail.send", send, ctx("job-7"))
    assert again["already_sent"] is True and again["activity_id"] == first["activity_id"]
    assert len(inbox.messages) == 1
    assert "Sehr geehrte Frau Zimmer," in inbox.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    with pytest.raises(BusinessError) as unknown:
        registry.run("mail.send", {**send, "campaign_id": 999_999}, ctx("job-8"))
    assert unknown.value.code == "UnknownCampaign" and len(inbox.messages) == 1

    listing = {"campaign_id": ids["campaign"], "contact_ids": [ids["beta_owner"], ids["freelancer"]]}
    kept = registry.run("crm.campaign_mailing_list", listing, ctx("job-9"))
    assert registry.run("crm.campaign_mailing_list", listing, ctx("job-9")) == kept
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(document)).scalar_one() == 1
        linked = conn.execute(sa.select(activity.c.contact_id).where(
            activity.c.campaign_id == ids["campaign"], activity.c.id == first["activity_id"])).scalar_one()
    assert linked == ids["beta_owner"]
    rows = list(csv.DictReader(io.StringIO(Path(kept["path"]).read_bytes().decode("utf-8-sig")), delimiter=";"))
    assert [(r["last_name"], r["account_name"], bool(r["sent_at"])) for r in rows] == [
        ("Frei", "", False), ("Zimmer", "Beta AG", True)]
    members = registry.run("crm.campaign_recipients", {"campaign_id": ids["campaign"]}, ctx())
    assert [s["reason"] for s in members["skipped"]] == ["already_mailed"]  # Zimmer is now a member, mailed
    assert [r["contact_id"] for r in members["recipients"]] == [ids["freelancer"]]
