"""Small input checks shared by the services; each raises DomainError naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

import phonenumbers

from .errors import DomainError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def required_text(field: str, value: str | None, max_length: int) -> str:
    text = (value or "").strip()
    if not text:
        raise DomainError(field, f"{field} is required")
    if len(text) > max_length:
        raise DomainError(field, f"{field} is longer than {max_length} characters")
    return text


def optional_text(field: str, value: str | None, max_length: int) -> str | None:
    return required_text(field, value, max_length) if value and value.strip() else None


def one_of(field: str, value: str, allowed: Iterable[str]) -> str:
    options = tuple(allowed)
    if value not in options:
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


def money(field: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise DomainError(field, f"{field} must be a non-negative Decimal, got {value!r}")
    if value != value.quantize(Decimal("0.01")):
        raise DomainError(field, f"{field} must not have more than two decimal places")
    return value


def vat_rate(value: Decimal, field: str = "vat_rate") -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value <= 100:
        raise DomainError(field, f"{field} must be a Decimal between 0 and 100, got {value!r}")
    return value


def aware(field: str, value: datetime) -> datetime:
    """A timezone-aware instant, in UTC (naive datetimes are ambiguous: whose wall clock?)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise DomainError(field, f"{field} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def timestamp(now: datetime | None) -> datetime:
    """The moment of a change: the caller's clock (tests, imports of history) or the current UTC time."""
    return datetime.now(UTC) if now is None else aware("now", now)


def positive_int(field: str, value: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise DomainError(field, f"{field} must be a whole number from 1 to {maximum}, got {value!r}")
    return value
