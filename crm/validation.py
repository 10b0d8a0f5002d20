"""Small input checks shared by the services; each raises DomainError naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import DomainError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def required_text(field: str, value: object, max_length: int) -> str:
    if value is not None and not isinstance(value, str):
        raise DomainError(field, f"{field} must be text, got {value!r}")
    text = (value or "").strip()
    if not text:
        raise DomainError(field, f"{field} is required")
    if len(text) > max_length:
        raise DomainError(field, f"{field} is longer than {max_length} characters")
    return text


def optional_text(field: str, value: object, max_length: int) -> str | None:
    return None if value is None or (isinstance(value, str) and not value.strip()) else required_text(
        field, value, max_length)


def one_of(field: str, value: object, allowed: Iterable[str]) -> str:
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise DomainError(field, f"{field} must be one of {', '.join(options)}, got {value!r}")
    return value


def email(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > 254 or not _EMAIL.match(text):
        raise DomainError("email", f"email {value!r} is not a valid e-mail address")
    return text


def phone(value: str | None, region: str = "DE") -> str | None:
    """Normalise to E.164 (``+49301234567``); national numbers are read in ``region``."""
    if value is None or not value.strip():
        return None
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise DomainError("phone", f"phone {value!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise DomainError("phone", f"phone {value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def money(field: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise DomainError(field, f"{field} must be a non-negative Decimal, got {value!r}")
    if value != value.quantize(Decimal("0.01")):
        raise DomainError(field, f"{field} must not have more than two decimal places")
    return value


def vat_rate(value: Decimal, field: str = "vat_rate") -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value <= 100:
        raise DomainError(field, f"{field} must be a Decimal between 0 and 100, got {value!r}")
    return value


def day(field: str, value: object) -> date:
    """A calendar day (a datetime is refused: which day it means depends on the time zone)."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise DomainError(field, f"{field} must be a date, got {value!r}")
    return value


def aware(field: str, value: datetime) -> datetime:
    """A timezone-aware instant, in UTC (naive datetimes are ambiguous: whose wall clock?)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise DomainError(field, f"{field} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def timestamp(now: datetime | None) -> datetime:
    """The moment of a change: the caller's clock (tests, imports of history) or the current UTC time."""
    return datetime.now(UTC) if now is None else aware("now", now)


def positive_int(field: str, value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise DomainError(field, f"{field} must be a whole number from 1 to {maximum}, got {value!r}")
    return value


def flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise DomainError(field, f"{field} must be true or false, got {value!r}")
    return value


def changeable(changes: Mapping[str, object], allowed: Iterable[str]) -> None:
    """An update names only fields it may change: anything else (a typo, a read-only field) is refused by name."""
    options = tuple(allowed)
    for name in changes:
        if name not in options:
            raise DomainError(name, f"{name} cannot be changed (allowed: {', '.join(options)})")


def reference(conn: Connection, table: sa.Table, row_id: object, field: str) -> int | None:
    """An id given in ``field`` must name a row of ``table`` (``None``: no link)."""
    if row_id is None:
        return None
    if isinstance(row_id, bool) or not isinstance(row_id, int):
        raise DomainError(field, f"{field} must be a record id, got {row_id!r}")
    if conn.execute(sa.select(table.c.id).where(table.c.id == row_id)).first() is None:
        raise DomainError(field, f"{field} {row_id} does not exist")
    return row_id
