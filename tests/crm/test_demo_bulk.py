"""The bulk data set of the page bench: complete records, numbers that the services continue, reruns that only
add what is missing, and the same values on every database."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm.accounts import create_account
from crm.demo import BULK_OWNER, load_bulk_accounts
from crm.queries import account_360, search_accounts
from crm.schema import account, contact, incident, quote, quote_position
from crm.service_desk import open_incident
from crm.sla import deadlines


def _bulk(conn: Connection) -> list[sa.Row[tuple[object, ...]]]:
    return list(conn.execute(sa.select(account).where(account.c.owner == BULK_OWNER).order_by(account.c.id)))


def test_bulk_accounts_are_complete_and_numbered_like_the_services(conn: Connection) -> None:
    create_account(conn, "Vorher GmbH")  # K-10001 is taken before the bulk load
    assert load_bulk_accounts(conn, 40, batch_size=16) == 40
    accounts = _bulk(conn)
    assert len(accounts) == 40 and accounts[0].number == "K-10002" and accounts[-1].number == "K-10041"
    assert create_account(conn, "Danach GmbH") and conn.execute(
        sa.select(account.c.number).where(account.c.name == "Danach GmbH")).scalar_one() == "K-10042"

    view = account_360(conn, int(accounts[1].id))  # index 1: a prospect with a quote
    assert view.contacts and {a["kind"] for a in view.addresses} == {"billing", "installation"}
    assert view.segments and view.activities and not view.services
    [offer] = view.quotes
    lines = conn.execute(sa.select(quote_position).where(quote_position.c.quote_id == offer["id"])).all()
    assert len(lines) == 3 and sum((line.total for line in lines), Decimal(0)) == offer["net"]
    assert offer["gross"] == offer["net"] + offer["vat"]
    assert offer["contact_id"] == min(c["id"] for c in view.contacts)  # the account's first person
    assert account_360(conn, int(accounts[0].id)).services[0]["status"] == "active"  # index 0: a customer

    troubled = conn.execute(sa.select(incident, account.c.sla_class).join(account)
                            .where(account.c.owner == BULK_OWNER)).all()
    assert len(troubled) == 5  # every eighth account
    for row in troubled:
        assert row.resolution_due == deadlines(row.sla_class, row.priority, row.opened_at).resolution_due
        assert conn.execute(sa.select(contact.c.account_id).where(contact.c.id == row.contact_id)).scalar_one() \
            == row.account_id
    numbers = sorted(str(row.number) for row in troubled)
    later = open_incident(conn, int(accounts[0].id), "Nach dem Bulk", impact="low", urgency="low")
    assert conn.execute(sa.select(incident.c.number).where(incident.c.id == later)).scalar_one() > numbers[-1]
    found, total = search_accounts(conn, accounts[7].name)
    assert total == 1 and found[0]["id"] == accounts[7].id


def test_a_rerun_adds_only_the_missing_accounts_with_the_same_values(conn: Connection) -> None:
    assert load_bulk_accounts(conn, 12) == 12
    first = [(a.name, a.sla_class, a.status) for a in _bulk(conn)]
    assert load_bulk_accounts(conn, 12) == 0
    assert load_bulk_accounts(conn, 20) == 8
    again = [(a.name, a.sla_class, a.status) for a in _bulk(conn)]
    assert again[:12] == first and len(again) == 20
    assert conn.execute(sa.select(sa.func.count()).select_from(quote)).scalar_one() == 5  # indices 1, 5, 9, 13, 17
