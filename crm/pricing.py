"""The one totals function for quotes, orders and invoices, so every document adds up the same way.

Rules (German commercial practice): each position total is rounded half-up to cents on its own; VAT is
computed per rate on the sum of the position totals of that rate and rounded half-up once per rate (not per
position, which would drift by cents); gross = net + all VAT. A discount is either a percentage of the
position or a fixed amount off the whole position, never both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .errors import DomainError

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def to_cents(value: Decimal) -> Decimal:
    """Round half-up to cents (``Decimal``'s default is banker's rounding, wrong for invoices)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PriceLine:
    """One position as the pricing rules see it; all amounts are Decimal (floats are refused)."""

    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None


@dataclass(frozen=True)
class Totals:
    positions: tuple[Decimal, ...]
    net: Decimal
    vat_by_rate: dict[Decimal, Decimal] = field(default_factory=dict)
    vat: Decimal = Decimal("0.00")
    gross: Decimal = Decimal("0.00")


def _decimal(value: object, name: str, index: int) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise DomainError(f"positions[{index}].{name}", f"{name} must be a finite Decimal, got {value!r}")
    return value


def position_total(line: PriceLine, index: int = 0) -> Decimal:
    """Quantity × unit price minus the discount, rounded half-up to cents."""
    quantity = _decimal(line.quantity, "quantity", index)
    unit_price = _decimal(line.unit_price, "unit_price", index)
    rate = _decimal(line.vat_rate, "vat_rate", index)
    where = f"positions[{index}]"
    if quantity <= 0:
        raise DomainError(f"{where}.quantity", "quantity must be greater than zero")
    if unit_price < 0:
        raise DomainError(f"{where}.unit_price", "unit_price must not be negative")
    if not 0 <= rate <= 100:
        raise DomainError(f"{where}.vat_rate", "vat_rate must be between 0 and 100 percent")
    if line.discount_percent is not None and line.discount_amount is not None:
        raise DomainError(f"{where}.discount_amount", "give discount_percent or discount_amount, not both")
    gross_line = quantity * unit_price
    discount = Decimal(0)
    if line.discount_percent is not None:
        percent = _decimal(line.discount_percent, "discount_percent", index)
        if not 0 <= percent <= 100:
            raise DomainError(f"{where}.discount_percent", "discount_percent must be between 0 and 100")
        discount = gross_line * percent / HUNDRED
    elif line.discount_amount is not None:
        discount = _decimal(line.discount_amount, "discount_amount", index)
        if discount < 0 or discount > gross_line:
            raise DomainError(
                f"{where}.discount_amount", "discount_amount must be between 0 and the position value"
            )
    return to_cents(gross_line - discount)


def compute_totals(lines: Iterable[PriceLine]) -> Totals:
    """Position totals, net, VAT per rate (keys normalised to 2 places) and gross."""
    items = list(lines)
    totals = tuple(position_total(line, i) for i, line in enumerate(items))
    net_by_rate: dict[Decimal, Decimal] = {}
    for line, total in zip(items, totals, strict=True):
        rate = line.vat_rate.quantize(CENT)
        net_by_rate[rate] = net_by_rate.get(rate, Decimal(0)) + total
    vat_by_rate = {rate: to_cents(net * rate / HUNDRED) for rate, net in sorted(net_by_rate.items())}
    net = sum(totals, Decimal("0.00"))
    vat = sum(vat_by_rate.values(), Decimal("0.00"))
    return Totals(positions=totals, net=net, vat_by_rate=vat_by_rate, vat=vat, gross=net + vat)
