"""CRM read models on the demo data: account search, the 360° view, the catalogue, incidents by SLA state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from crm import service_desk
from crm.accounts import create_account
from crm.demo import load_demo_data
from crm.queries import account_360, incident_sla_state, incidents_by_sla, list_products, search_accounts, sla_state
from crm.schema import incident
from engine.database import create_db_engine


def test_search_and_360_view(db_url: str) -> None:
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        load_demo_data(conn)
        everyone, total = search_accounts(conn, limit=5)
        assert total >= 20 and len(everyone) == 5
        first = everyone[0]
        found, count = search_accounts(conn, first["name"][:4].lower())
        assert count >= 1 and first["id"] in [a["id"] for a in found]
        by_number, _ = search_accounts(conn, first["number"])
        assert [a["id"] for a in by_number] == [first["id"]]
        with_quotes = next(
            a for a in search_accounts(conn, limit=100)[0] if account_360(conn, a["id"]).quotes
        )
        view = account_360(conn, with_quotes["id"])
        assert view.account["number"] == with_quotes["number"] and view.contacts and view.addresses
        assert all(
            c["letter_salutation"].startswith(("Sehr geehrte", "Guten Tag", "Dear")) for c in view.contacts
        )
        assert all(q["gross"] > 0 for q in view.quotes)
        products = list_products(conn)
        assert len(products) >= 15 and {"code", "list_price", "kind"} <= set(products[0])
    engine.dispose()


def test_sla_states(db_url: str) -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    opened = now - timedelta(hours=9)
    assert sla_state(opened, now + timedelta(hours=1), now) == "at_risk"  # 1 of 10 hours left
    assert sla_state(opened, now + timedelta(hours=5), now) == "within"
    assert sla_state(opened, now - timedelta(minutes=1), now) == "breached"
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        load_demo_data(conn)
        open_count = conn.execute(
            sa.select(sa.func.count())
            .select_from(incident)
            .where(incident.c.status.in_(("new", "assigned", "pending")))
        ).scalar_one()
        counts = incidents_by_sla(conn, datetime.now(UTC))
        assert sum(counts.values()) == open_count and set(counts) == {"within", "at_risk", "breached"}
    engine.dispose()


US = timedelta(microseconds=1)
NOW = datetime(2026, 11, 24, 12, 0, 0, 123457, tzinfo=UTC)
# (time open before NOW, time left after NOW, the state): "at risk" means less than a fifth of the time is left
BOUNDARIES = [
    (timedelta(hours=8), timedelta(0), "breached"),  # due exactly now
    (timedelta(hours=8), -US, "breached"),
    (timedelta(days=400), US, "at_risk"),  # one microsecond left
    (timedelta(hours=8), timedelta(hours=2), "within"),  # exactly a fifth left is not "less than"
    (timedelta(hours=8) + US, timedelta(hours=2), "at_risk"),
    (timedelta(hours=8) - US, timedelta(hours=2), "within"),
    (4 * US, US, "within"),  # 1 of 5 µs: where a float share of 0.2 could tip either way
    (5 * US, US, "at_risk"),
    (timedelta(minutes=3, microseconds=5), timedelta(seconds=45, microseconds=1), "at_risk"),
    (timedelta(minutes=3, microseconds=4), timedelta(seconds=45, microseconds=1), "within"),
    (timedelta(0), timedelta(hours=72), "within"),
]


def test_sla_rule_in_sql_agrees_with_python_on_the_boundaries(db_url: str) -> None:
    """The board filters and the dashboard counts in SQL; both must judge every incident as ``sla_state`` does."""
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        account_id = create_account(conn, "Grenzfall GmbH", sla_class="gold")
        cases: dict[int, str] = {}
        for open_for, left, expected in BOUNDARIES:
            assert sla_state(NOW - open_for, NOW + left, NOW) == expected, (open_for, left)
            incident_id = service_desk.open_incident(conn, account_id, "Grenzfall", impact="low", urgency="low",
                                                     now=NOW - open_for)
            conn.execute(incident.update().where(incident.c.id == incident_id)
                         .values(opened_at=NOW - open_for, resolution_due=NOW + left))
            cases[incident_id] = expected
        for now in (NOW, NOW.astimezone(timezone(timedelta(hours=2)))):  # the same instant in any zone
            judged = conn.execute(sa.select(incident.c.id, incident_sla_state(now)))
            in_sql = {int(i): str(state) for i, state in judged}
            assert in_sql == cases
        expected_counts = {state: list(cases.values()).count(state) for state in ("within", "at_risk", "breached")}
        assert incidents_by_sla(conn, NOW) == expected_counts
        service_desk.resolve_incident(conn, next(iter(cases)), "erledigt", now=NOW)  # resolved ones do not count
        assert sum(incidents_by_sla(conn, NOW).values()) == len(cases) - 1
    engine.dispose()
