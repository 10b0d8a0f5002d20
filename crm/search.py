"""The global search: one text finds customers (by name, number, contact person, phone, e-mail, city) and records
(quotes, orders, invoices, incidents by number).

Every branch is an index range scan (``column >= needle AND column < successor``) over an index of migration 0015
or an older one, so a search stays fast at 100 000 accounts on SQLite and PostgreSQL: account names by their
casefolded search key, numbers by their unique index (numbers are stored in capitals: K-10001, R-2026-00001),
contacts by ``lower(last_name)`` and ``lower(email)``, phones by their stored E.164 form, cities by ``lower(city)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .accounts import search_key
from .schema import account, address, contact, incident, invoice, order, quote

MAX_TEXT = 200
PER_KIND = 20
_DIGITS = re.compile(r"[\d\s/()+\-.]+")


@dataclass
class SearchResult:
    """What a search found, grouped by kind; each customer says what matched (name, number, contact, …)."""

    text: str
    customers: list[dict[str, Any]] = field(default_factory=list)
    quotes: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.customers) + len(self.quotes) + len(self.orders) + len(self.invoices) + len(self.incidents)


def _successor(prefix: str) -> str:
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:
        last = 0xE000
    return prefix[:-1] + chr(min(last, 0x10FFFF))


def _prefix(column: Any, needle: str) -> Any:
    """``column`` starts with ``needle``, as a range an index on ``column`` serves (no LIKE, no wildcards)."""
    return sa.and_(column >= needle, column < _successor(needle))


def phone_prefix(text: str) -> str | None:
    """The E.164 form (or its beginning) of a typed phone number: ``030 1234-56`` → ``+49301234 56``…; None when
    the text is no phone number (fewer than four digits or letters in it)."""
    raw = text.strip()
    if not _DIGITS.fullmatch(raw) or sum(ch.isdigit() for ch in raw) < 4:
        return None
    try:
        parsed = phonenumbers.parse(raw, "DE")
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return "+49" + digits[1:]
    return None


def search(conn: Connection, text: str, limit: int = PER_KIND) -> SearchResult:
    """Customers and records matching ``text`` (at most ``limit`` of each kind); empty text finds nothing."""
    text = " ".join(text.split())[:MAX_TEXT]
    result = SearchResult(text)
    if not text:
        return result
    key, lower, upper = search_key(text), text.lower(), text.upper()
    matched: dict[int, set[str]] = {}

    def note(rows: Any, reason: str) -> None:
        for row in rows:
            matched.setdefault(int(row[0]), set()).add(reason)

    note(conn.execute(sa.select(account.c.id).where(_prefix(account.c.name_key, key))
                      .order_by(account.c.name_key).limit(limit)), "name")
    note(conn.execute(sa.select(account.c.id).where(_prefix(account.c.number, upper)).limit(limit)), "number")
    words = lower.split()
    by_person = sa.select(contact.c.account_id).where(contact.c.account_id.is_not(None))
    person = by_person.where(_prefix(sa.func.lower(contact.c.last_name), words[-1]))
    if len(words) > 1:  # "Max Muster": the last word is the surname, the first names must start the first name
        person = person.where(sa.func.lower(contact.c.first_name).like(
            words[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", escape="\\"))
    note(conn.execute(person.limit(limit)), "contact")
    if len(words) > 1:
        note(conn.execute(by_person.where(_prefix(sa.func.lower(contact.c.last_name), lower)).limit(limit)),
             "contact")
    else:
        note(conn.execute(by_person.where(_prefix(sa.func.lower(contact.c.email), lower)).limit(limit)), "email")
    phone = phone_prefix(text)
    if phone:
        note(conn.execute(by_person.where(_prefix(contact.c.phone, phone)).limit(limit)), "phone")
    note(conn.execute(sa.select(address.c.account_id).where(_prefix(sa.func.lower(address.c.city), lower))
                      .limit(limit)), "city")
    if matched:
        rows = conn.execute(sa.select(account.c.id, account.c.number, account.c.name, account.c.legal_form,
                                      account.c.status)
                            .where(account.c.id.in_(list(matched))).order_by(account.c.name_key, account.c.id)
                            .limit(limit))
        cities = _first_cities(conn, list(matched))
        result.customers = [{**dict(r._mapping), "matched": sorted(matched[int(r.id)]),
                             "city": cities.get(int(r.id))} for r in rows]
    for table, target, order_by in ((quote, result.quotes, (quote.c.number, quote.c.version.desc())),
                                    (order, result.orders, (order.c.number,)),
                                    (invoice, result.invoices, (invoice.c.number,)),
                                    (incident, result.incidents, (incident.c.number,))):
        query = (sa.select(table, account.c.name.label("account_name"), account.c.legal_form.label("legal_form"))
                 .outerjoin(account, account.c.id == table.c.account_id)
                 .where(_prefix(table.c.number, upper)).order_by(*order_by).limit(limit))
        target.extend(dict(r._mapping) for r in conn.execute(query))
    return result


def _first_cities(conn: Connection, account_ids: list[int]) -> dict[int, str]:
    rows = conn.execute(sa.select(address.c.account_id, address.c.city).where(address.c.account_id.in_(account_ids))
                        .order_by(address.c.id))
    cities: dict[int, str] = {}
    for row in rows:
        cities.setdefault(int(row.account_id), str(row.city))
    return cities
