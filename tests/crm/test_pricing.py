"""Totals and rounding: half-up to cents per position, VAT per rate on the rate's sum."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from crm.errors import DomainError
from crm.pricing import PriceLine, compute_totals, to_cents


def test_half_up_not_bankers_rounding() -> None:
    assert to_cents(D("0.125")) == D("0.13")
    assert to_cents(D("0.135")) == D("0.14")
    assert to_cents(D("2.675")) == D("2.68")  # a float would give 2.67


def test_each_position_rounded_before_summing() -> None:
    # 3 × 0.335 = 1.005 → 1.01 per position; summing first would give 2.01 instead of 2.02
    lines = [PriceLine(D("3"), D("0.335"), D("19")), PriceLine(D("3"), D("0.335"), D("19"))]
    totals = compute_totals(lines)
    assert totals.positions == (D("1.01"), D("1.01"))
    assert totals.net == D("2.02")


def test_vat_per_rate_on_the_sum_of_that_rate() -> None:
    # Per position: 0.03 × 19 % = 0.0057 → 0.01, three times 0.03; on the rate's sum: 0.09 × 19 % → 0.02.
    lines = [PriceLine(D("1"), D("0.03"), D("19"))] * 3 + [PriceLine(D("2"), D("10.00"), D("7"))]
    totals = compute_totals(lines)
    assert totals.vat_by_rate == {D("7.00"): D("1.40"), D("19.00"): D("0.02")}
    assert totals.net == D("20.09")
    assert totals.vat == D("1.42")
    assert totals.gross == D("21.51")


def test_discount_percent_and_amount() -> None:
    percent = PriceLine(
        D("3"), D("33.33"), D("19"), discount_percent=D("12.5")
    )  # 99.99 − 12.49875 = 87.49125
    amount = PriceLine(D("2"), D("49.95"), D("19"), discount_amount=D("10.00"))
    totals = compute_totals([percent, amount])
    assert totals.positions == (D("87.49"), D("89.90"))
    assert totals.vat_by_rate == {D("19.00"): D("33.70")}  # 177.39 × 0.19 = 33.7041
    assert totals.gross == D("211.09")


def test_fractional_quantity_and_zero_rate() -> None:
    totals = compute_totals([PriceLine(D("1.5"), D("0.99"), D("0"))])
    assert totals.positions == (D("1.49"),)  # 1.485 → 1.49
    assert totals.vat == D("0.00")
    assert totals.gross == D("1.49")


def test_empty_document_is_zero() -> None:
    totals = compute_totals([])
    assert (totals.net, totals.vat, totals.gross) == (D("0.00"), D("0.00"), D("0.00"))


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (
            PriceLine(D("1"), D("10"), D("19"), discount_percent=D("5"), discount_amount=D("1")),
            "discount_amount",
        ),
        (PriceLine(D("0"), D("10"), D("19")), "quantity"),
        (PriceLine(D("1"), D("-1"), D("19")), "unit_price"),
        (PriceLine(D("1"), D("10"), D("119")), "vat_rate"),
        (PriceLine(D("1"), D("10"), D("19"), discount_percent=D("101")), "discount_percent"),
        (PriceLine(D("1"), D("10"), D("19"), discount_amount=D("10.01")), "discount_amount"),
        (PriceLine(1.5, D("10"), D("19")), "quantity"),  # type: ignore[arg-type]
        (PriceLine(D("1"), D("NaN"), D("19")), "unit_price"),
    ],
)
def test_bad_positions_name_the_field(line: PriceLine, field: str) -> None:
    with pytest.raises(DomainError) as err:
        compute_totals([PriceLine(D("1"), D("1"), D("19")), line])
    assert err.value.field == f"positions[1].{field}"
    assert field in err.value.message
