"""Opportunities: stage rules, the pipeline weighted by probability, leads from the web form."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import opportunities as opp
from crm.activities import timeline
from crm.errors import DomainError
from crm.schema import account, contact

from .conftest import NOW

CLOSE = date(2026, 6, 30)


def _opp(
    conn: Connection,
    account_id: int,
    revenue: str,
    stage: str = "lead",
    probability: int | None = None,
    close: date = CLOSE,
) -> int:
    data = opp.OpportunityInput(
        account_id, "SDSL für Zentrale", D(revenue), close, stage=stage, probability=probability
    )
    return opp.create_opportunity(conn, data, now=NOW)


def test_pipeline_sums_and_weights_per_stage(conn: Connection, account_id: int) -> None:
    _opp(conn, account_id, "1000.00")  # lead, default 10 %
    _opp(conn, account_id, "333.33", "proposal", 33)  # 109.9989
    _opp(conn, account_id, "0.05", "proposal", 10)  # 0.005 → with the one above 110.0039 → 110.00
    _opp(conn, account_id, "2500.00", "negotiation", close=date(2026, 9, 30))
    won = _opp(conn, account_id, "9999.00", "negotiation")
    opp.set_stage(conn, won, "won", now=NOW)
    result = {s.stage: s for s in opp.pipeline(conn)}
    assert list(result) == ["lead", "qualified", "proposal", "negotiation"]
    assert result["lead"] == opp.StageSum("lead", 1, D("1000.00"), D("100.00"))
    assert result["qualified"] == opp.StageSum("qualified", 0, D("0.00"), D("0.00"))
    assert result["proposal"] == opp.StageSum("proposal", 2, D("333.38"), D("110.00"))
    assert result["negotiation"] == opp.StageSum("negotiation", 1, D("2500.00"), D("1875.00"))
    by_period = {s.stage: s.count for s in opp.pipeline(conn, close_until=date(2026, 6, 30))}
    assert by_period["negotiation"] == 0 and by_period["proposal"] == 2


def test_weighted_sum_rounds_half_up_once_per_stage(conn: Connection, account_id: int) -> None:
    for _ in range(3):
        _opp(conn, account_id, "0.05", "qualified", 50)  # 3 × 0.025 = 0.075 → 0.08 (per row it would be 0.09)
    [stage] = [s for s in opp.pipeline(conn) if s.stage == "qualified"]
    assert (stage.revenue, stage.weighted) == (D("0.15"), D("0.08"))


def test_stage_rules(conn: Connection, account_id: int) -> None:
    opportunity_id = _opp(conn, account_id, "100.00")
    assert opp.set_stage(conn, opportunity_id, "negotiation", probability=80) == "lead"
    assert opp.set_stage(conn, opportunity_id, "lost", now=NOW) == "negotiation"
    with pytest.raises(DomainError, match="already lost"):
        opp.set_stage(conn, opportunity_id, "won")
    with pytest.raises(DomainError) as err:
        opp.set_stage(conn, 4711, "won")
    assert err.value.field == "opportunity_id"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"stage": "won"}, "stage"),
        ({"probability": 101}, "probability"),
        ({"source": "tv"}, "source"),
        ({"expected_revenue": D("-1")}, "expected_revenue"),
        ({"title": ""}, "title"),
        ({"product_id": 999}, "product_id"),
        ({"campaign_id": 999}, "campaign_id"),
    ],
)
def test_opportunity_validation(
    conn: Connection, account_id: int, changes: dict[str, object], field: str
) -> None:
    data = {
        "account_id": account_id,
        "title": "X",
        "expected_revenue": D("1.00"),
        "expected_close": CLOSE,
        **changes,
    }
    with pytest.raises(DomainError) as err:
        opp.create_opportunity(conn, opp.OpportunityInput(**data))  # type: ignore[arg-type]
    assert err.value.field == field


def test_web_form_creates_a_lead_and_reuses_known_people(conn: Connection, catalogue: dict[str, int]) -> None:
    form = opp.WebInquiry(
        company="Bäckerei Groß GmbH",
        last_name="Groß",
        first_name="Eva",
        email="eva@gross.de",
        message="Wir brauchen SDSL.",
        product_code="ADSL50",
        phone="089 1234567",
    )
    first = opp.opportunity_from_web_form(conn, form, CLOSE, now=NOW)
    again = opp.opportunity_from_web_form(
        conn,
        opp.WebInquiry(
            company="bäckerei  GROSS gmbh", last_name="Groß", email="EVA@gross.de", message="Noch da?"
        ),
        CLOSE,
    )
    assert first != again
    assert conn.execute(sa.select(sa.func.count()).select_from(account)).scalar_one() == 1
    assert conn.execute(sa.select(sa.func.count()).select_from(contact)).scalar_one() == 1
    account_id = conn.execute(sa.select(account.c.id)).scalar_one()
    assert [a.subject for a in timeline(conn, account_id=account_id)] == ["Kontaktformular"] * 2
    with pytest.raises(DomainError) as err:
        opp.opportunity_from_web_form(
            conn, opp.WebInquiry("X", "Y", "x@y.de", "m", product_code="NOPE"), CLOSE
        )
    assert err.value.field == "product_code"
