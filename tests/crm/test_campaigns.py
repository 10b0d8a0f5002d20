"""Campaigns with personalised mails from a template, and the activity history they leave."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.engine import Connection

from crm import campaigns
from crm.accounts import ContactInput, create_contact
from crm.activities import ActivityInput, log_activity, timeline
from crm.errors import DomainError

from .conftest import NOW

SUBJECT = "Danke für Ihren Besuch, $salutation $title $last_name"
BODY = "$letter_salutation,\n\nschön, dass Sie bei uns am Stand waren ($account).\n"


def _fair(conn: Connection) -> int:
    return campaigns.create_campaign(
        conn, "CeBIT 2026", "trade_fair", date(2026, 3, 2), date(2026, 3, 6), now=NOW
    )


def test_trade_fair_mails_are_personalised_and_recorded(conn: Connection, account_id: int) -> None:
    prof = create_contact(
        conn, ContactInput("Müller", "Herr", "Hans", "Prof. Dr.", email="mueller@example.de"), account_id
    )
    alex = create_contact(conn, ContactInput("Meier", "divers", "Alex", email="alex@example.de"))
    opted_out = create_contact(
        conn, ContactInput("Schmidt", "Frau", email="s@example.de", marketing_opt_out=True), account_id
    )
    no_mail = create_contact(conn, ContactInput("Ohne", "Frau"), account_id)
    fair = _fair(conn)
    assert campaigns.add_members(conn, fair, [prof, alex, opted_out, no_mail, prof], now=NOW) == 4
    assert campaigns.add_members(conn, fair, [prof], now=NOW) == 0  # tagging twice changes nothing
    mails = campaigns.campaign_mails(conn, fair, SUBJECT, BODY)
    assert [(m.contact_id, m.to) for m in mails] == [(alex, "alex@example.de"), (prof, "mueller@example.de")]
    assert mails[1].subject == "Danke für Ihren Besuch, Herr Prof. Dr. Müller"
    assert mails[1].body.startswith(
        "Sehr geehrter Herr Prof. Dr. Müller,\n\nschön, dass Sie bei uns am Stand waren (Muster GmbH)."
    )
    assert mails[0].body.startswith("Guten Tag Alex Meier,")
    for mail in mails:
        campaigns.record_sent(conn, fair, mail, author="anna", now=NOW)
    [history] = timeline(conn, contact_id=prof)
    assert (history.kind, history.campaign_id, history.account_id, history.author) == (
        "email_out",
        fair,
        account_id,
        "anna",
    )
    assert [a.contact_id for a in timeline(conn, account_id=account_id)] == [prof]  # filed on the account too


@pytest.mark.parametrize(
    ("subject", "body", "field"),
    [("Hallo $vorname", BODY, "subject"), (SUBJECT, "Preis: 5 $", "body"), (SUBJECT, "${__class__}", "body")],
)
def test_template_errors_name_the_field(conn: Connection, subject: str, body: str, field: str) -> None:
    with pytest.raises(DomainError) as err:
        campaigns.campaign_mails(conn, _fair(conn), subject, body)
    assert err.value.field == field


def test_campaign_validation(conn: Connection) -> None:
    _fair(conn)
    cases = [
        (("CeBIT 2026", "trade_fair", date(2026, 1, 1), date(2026, 1, 2)), "name"),
        (("Roadshow", "circus", date(2026, 1, 1), date(2026, 1, 2)), "kind"),
        (("Roadshow", "event", date(2026, 1, 2), date(2026, 1, 1)), "ends_on"),
    ]
    for args, field in cases:
        with pytest.raises(DomainError) as err:
            campaigns.create_campaign(conn, *args)
        assert err.value.field == field
    with pytest.raises(DomainError) as err:
        campaigns.add_members(conn, 999, [])
    assert err.value.field == "campaign_id"
    with pytest.raises(DomainError) as err:
        campaigns.add_members(conn, campaigns.campaign_id_by_name(conn, "CeBIT 2026") or 0, [12345])
    assert err.value.field == "contact_ids"


def test_timeline_is_newest_first_and_limited(conn: Connection, account_id: int) -> None:
    person = create_contact(conn, ContactInput("Weber"), account_id)
    for hour in range(5):
        log_activity(
            conn,
            ActivityInput(
                "call", f"Anruf {hour}", "bert", contact_id=person, occurred_at=NOW + timedelta(hours=hour)
            ),
        )
    log_activity(
        conn, ActivityInput("note", "Notiz", "bert", account_id=account_id), now=NOW - timedelta(days=1)
    )
    assert [a.subject for a in timeline(conn, account_id=account_id, limit=3)] == [
        "Anruf 4",
        "Anruf 3",
        "Anruf 2",
    ]
    assert len(timeline(conn, account_id=account_id)) == 6
    assert len(timeline(conn, contact_id=person)) == 5


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (ActivityInput("fax", "x", "a", account_id=0), "kind"),
        (ActivityInput("note", "x", "a"), "account_id"),
        (ActivityInput("note", "", "a", account_id=-1), "account_id"),
        (ActivityInput("note", "x", "a", contact_id=999), "contact_id"),
    ],
)
def test_activity_validation(conn: Connection, account_id: int, data: ActivityInput, field: str) -> None:
    if data.account_id == 0:
        data = ActivityInput(data.kind, data.subject, data.author, account_id=account_id)
    with pytest.raises(DomainError) as err:
        log_activity(conn, data)
    assert err.value.field == field
