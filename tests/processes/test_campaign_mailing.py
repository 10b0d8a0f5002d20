"""The campaign mailing through the REST API: sales prepares and reviews, one person per company gets a
personalised mail over real SMTP, each send is a history entry linked to the campaign, the recipient list is
kept as CSV, and a second run of the same campaign mails nobody twice."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crm.accounts import ContactInput, create_account, create_contact
from crm.campaigns import add_members, create_campaign
from crm.schema import activity

from .conftest import World

MAIL = {"segment": "", "account_status": "", "headline": "Danke für Ihren Besuch auf der CeBIT",
        "message": "es hat uns gefreut, Sie an unserem Stand zu begrüßen."}


def _fair(world: World) -> dict[str, int]:
    """Five contacts of three companies: a managing director and a buyer, two without a leading role, and one
    contact who opted out of marketing."""
    people = {}
    with world.api.engine.db.transaction() as conn:
        bakery = create_account(conn, "Bäckerei Schmidt")
        it = create_account(conn, "Müller IT")
        print_shop = create_account(conn, "Zeller Druck")
        for key, data, account in [
            ("schmidt", ContactInput(last_name="Schmidt", first_name="Anna", salutation="Frau",
                                     role="Geschäftsführerin", email="schmidt@baeckerei.example"), bakery),
            ("albers", ContactInput(last_name="Albers", first_name="Bernd", salutation="Herr", role="Einkauf",
                                    email="albers@baeckerei.example"), bakery),
            ("mueller", ContactInput(last_name="Müller", first_name="Carl", salutation="Herr", academic_title="Dr.",
                                     role="IT-Leitung", email="mueller@mueller-it.example"), it),
            ("becker", ContactInput(last_name="Becker", first_name="Dora", salutation="Frau",
                                    email="becker@mueller-it.example"), it),
            ("zeller", ContactInput(last_name="Zeller", first_name="Emil", salutation="Herr", marketing_opt_out=True,
                                    email="zeller@druck.example"), print_shop),
        ]:
            people[key] = create_contact(conn, data, account)
        people["campaign"] = create_campaign(conn, "CeBIT 2026", "trade_fair", date(2026, 3, 10), date(2026, 3, 14))
        add_members(conn, people["campaign"], [v for k, v in people.items() if k != "campaign"])
    return people


def _run(world: World, campaign_id: int, drop: list[int] | None = None) -> tuple[str, dict[str, Any]]:
    instance = world.start("campaign-mailing", {})
    world.complete(instance, "prepare", "sales", {"campaign_id": campaign_id, **MAIL})
    world.task(instance, "review", "sales")
    selection = world.instance(instance)["variables"]["selection"]
    world.complete(instance, "review", "sales", {"drop_contact_ids": drop or [], "approved": True})
    return instance, selection


def test_one_personal_mail_per_company_with_history_and_csv_and_no_second_mail(world: World) -> None:
    people = _fair(world)
    instance, selection = _run(world, people["campaign"])
    chosen = {r["contact_id"]: r["reason"] for r in selection["recipients"]}
    assert chosen == {people["schmidt"]: "decision_maker", people["becker"]: "first_by_name"}
    assert {s["contact_id"]: s["reason"] for s in selection["skipped"]} == {
        people["albers"]: "other_contact_chosen", people["mueller"]: "other_contact_chosen",
        people["zeller"]: "opted_out"}
    variables = world.wait_state(instance, "completed")["variables"]

    mails = {str(m["To"]): m.get_body(("plain",)).get_content() for m in world.inbox.messages}  # type: ignore[union-attr]
    assert sorted(mails) == ["Anna Schmidt <schmidt@baeckerei.example>", "Dora Becker <becker@mueller-it.example>"]
    assert "Sehr geehrte Frau Schmidt," in mails["Anna Schmidt <schmidt@baeckerei.example>"]
    assert "Sehr geehrte Frau Becker," in mails["Dora Becker <becker@mueller-it.example>"]
    assert set(world.inbox.subjects()) == {MAIL["headline"]}

    with world.api.engine.db.read() as conn:
        history = conn.execute(sa.select(activity.c.contact_id, activity.c.kind, activity.c.subject)
                               .where(activity.c.campaign_id == people["campaign"])).all()
    assert sorted(history) == sorted([(people["schmidt"], "email_out", MAIL["headline"]),
                                      (people["becker"], "email_out", MAIL["headline"])])

    listing = variables["mailing_list"]
    assert listing["rows"] == 2 and listing["file_name"] == f"kampagne-{people['campaign']}-empfaenger.csv"
    rows = list(csv.DictReader(io.StringIO(Path(listing["path"]).read_bytes().decode("utf-8-sig")), delimiter=";"))
    assert [(r["email"], r["letter_salutation"], r["account_name"]) for r in rows] == [
        ("becker@mueller-it.example", "Sehr geehrte Frau Becker", "Müller IT"),
        ("schmidt@baeckerei.example", "Sehr geehrte Frau Schmidt", "Bäckerei Schmidt")]
    assert all(r["sent_at"] for r in rows)

    again, repeated = _run(world, people["campaign"])
    assert repeated["recipients"] == []
    assert {s["reason"] for s in repeated["skipped"]} == {"already_mailed", "opted_out"}
    world.wait_state(again, "completed")
    history_of_again = world.api.client("admin").get(f"/process-instances/{again}/history").json()
    assert "dropped" in {entry.get("elementId") for entry in history_of_again}
    assert len(world.inbox.messages) == 2


def test_sales_can_drop_a_recipient_and_an_unknown_campaign_goes_back_to_preparation(world: World) -> None:
    people = _fair(world)
    instance = world.start("campaign-mailing", {})
    world.complete(instance, "prepare", "sales", {"campaign_id": 999_999, **MAIL})
    world.task(instance, "prepare", "sales")  # CrmRejected on the selection: back to the form
    bad = world.api.client("sales").post(f"/tasks/{world.task(instance, 'prepare', 'sales')['id']}/complete",
                                         json={"data": {"campaign_id": people["campaign"], "segment": ""}})
    assert bad.status_code in (400, 422) and "headline" in bad.text
    world.complete(instance, "prepare", "sales", {"campaign_id": people["campaign"], **MAIL})
    world.task(instance, "review", "sales")
    world.complete(instance, "review", "sales", {"drop_contact_ids": [people["becker"]], "approved": True})
    variables = world.wait_state(instance, "completed")["variables"]
    assert [str(m["To"]) for m in world.inbox.messages] == ["Anna Schmidt <schmidt@baeckerei.example>"]
    assert variables["mailing_list"]["rows"] == 1
