"""Accounts (customer organisations and private customers), their addresses and contact persons."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .numbering import next_value
from .salutation import LANGUAGES, SALUTATIONS, letter_salutation
from .schema import account, account_segment, address, contact
from .status import Transitions, change_status

ACCOUNT_TRANSITIONS: Transitions = {
    "prospect": frozenset({"customer"}),
    "customer": frozenset({"former"}),
    "former": frozenset({"customer"}),  # a former customer can be won back
}
ACCOUNT_KINDS = ("business", "private")
SLA_CLASSES = ("gold", "silver", "bronze")
ADDRESS_KINDS = ("billing", "installation")
ACCOUNT_NUMBER_BASE = 10000


def search_key(name: str) -> str:
    """Casefolded, whitespace-normalised name: what prefix search compares ("müller" finds "Müller GmbH")."""
    return " ".join(name.casefold().split())


def _successor(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (code point order)."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored; skip to the next encodable code point
        last = 0xE000
    return prefix[:-1] + chr(min(last, 0x10FFFF))


def find_accounts(conn: Connection, prefix: str, limit: int = 20) -> list[sa.Row[tuple[object, ...]]]:
    """Accounts whose name starts with ``prefix`` (case-insensitive), by name: one index range scan."""
    key = search_key(prefix)
    if not key:
        raise DomainError("prefix", "prefix must not be empty")
    if not 1 <= limit <= 500:
        raise DomainError("limit", "limit must be between 1 and 500")
    query = (
        sa.select(account.c.id, account.c.number, account.c.name, account.c.status, account.c.kind)
        .where(account.c.name_key >= key, account.c.name_key < _successor(key))
        .order_by(account.c.name_key, account.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def create_account(
    conn: Connection,
    name: str,
    *,
    kind: str = "business",
    legal_form: str | None = None,
    vat_id: str | None = None,
    segments: Iterable[str] = (),
    owner: str | None = None,
    sla_class: str = "bronze",
    now: datetime | None = None,
) -> int:
    """A new prospect with the next account number (K-10001, K-10002, …)."""
    values = _account_values(
        name=name, kind=kind, legal_form=legal_form, vat_id=vat_id, owner=owner, sla_class=sla_class
    )
    tags = _segments(segments)
    number = f"K-{ACCOUNT_NUMBER_BASE + next_value(conn, 'account')}"
    account_id = int(
        conn.execute(
            account.insert()
            .values(number=number, status="prospect", created_at=v.timestamp(now), **values)
            .returning(account.c.id)
        ).scalar_one()
    )
    set_segments(conn, account_id, tags)
    return account_id


_ACCOUNT_FIELDS = ("name", "kind", "legal_form", "vat_id", "owner", "sla_class")


def _account_values(**fields: str | None) -> dict[str, str | None]:
    """Validate the editable account fields that are given; the search key follows the name."""
    unknown = set(fields) - set(_ACCOUNT_FIELDS)
    if unknown:
        raise DomainError(sorted(unknown)[0], f"{sorted(unknown)[0]} cannot be changed here")
    checks = {
        "name": lambda x: v.required_text("name", x, 300),
        "kind": lambda x: v.one_of("kind", x or "", ACCOUNT_KINDS),
        "legal_form": lambda x: v.optional_text("legal_form", x, 100),
        "vat_id": lambda x: v.optional_text("vat_id", x, 30),
        "owner": lambda x: v.optional_text("owner", x, 200),
        "sla_class": lambda x: v.one_of("sla_class", x or "", SLA_CLASSES),
    }
    values = {key: checks[key](value) for key, value in fields.items()}
    if values.get("name"):
        values["name_key"] = search_key(str(values["name"]))
    return values


def update_account(conn: Connection, account_id: int, **changes: str | None) -> None:
    """Change master data (the PATCH of the REST layer); status and number have their own rules."""
    get_account(conn, account_id)
    if changes:
        conn.execute(account.update().where(account.c.id == account_id).values(**_account_values(**changes)))


def _segments(segments: Iterable[str]) -> list[str]:
    return sorted({v.required_text("segments", s, 50) for s in segments})


def set_segments(conn: Connection, account_id: int, segments: Iterable[str]) -> None:
    """Replace the account's segment tags (e.g. xDSL, VoIP, housing)."""
    tags = _segments(segments)
    conn.execute(account_segment.delete().where(account_segment.c.account_id == account_id))
    if tags:
        conn.execute(account_segment.insert(), [{"account_id": account_id, "segment": t} for t in tags])


def segments_of(conn: Connection, account_id: int) -> list[str]:
    rows = conn.execute(
        sa.select(account_segment.c.segment)
        .where(account_segment.c.account_id == account_id)
        .order_by(account_segment.c.segment)
    )
    return list(rows.scalars())


def set_account_status(conn: Connection, account_id: int, status: str) -> None:
    change_status(conn, account, account_id, ACCOUNT_TRANSITIONS, status)


def display_name(name: str, legal_form: str | None) -> str:
    """The name a customer reads: name and legal form, the legal form once even when the name already ends with
    it (imports and the demo store "Bergmann Kanzlei e.K." with legal form "e.K.")."""
    text = " ".join(name.split())
    form = " ".join((legal_form or "").split())
    if not form or text.casefold().endswith(form.casefold()) and (
            len(text) == len(form) or text[-len(form) - 1] in " ,"):
        return text
    return f"{text} {form}"


def account_display_name(conn: Connection, account_id: int) -> str:
    """``display_name`` of a stored account."""
    row = get_account(conn, account_id)
    return display_name(str(row.name), row.legal_form)


def default_delivery_address(conn: Connection, account_id: int) -> dict[str, str] | None:
    """Where an order of the account is delivered unless the back office says otherwise: its installation
    address, else its billing address, addressed to the account; None when it has no address yet."""
    rows = conn.execute(sa.select(address).where(address.c.account_id == account_id)
                        .order_by(address.c.kind != "installation", address.c.id)).all()
    if not rows:
        return None
    first = rows[0]
    return {"name": account_display_name(conn, account_id), "street": first.street,
            "postal_code": first.postal_code, "city": first.city, "country": first.country}


def get_account(conn: Connection, account_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(account).where(account.c.id == account_id)).one_or_none()
    if row is None:
        raise DomainError("account_id", f"account {account_id} does not exist")
    return row


def add_address(
    conn: Connection,
    account_id: int,
    kind: str,
    street: str,
    postal_code: str,
    city: str,
    country: str = "DE",
) -> int:
    """Accounts have several addresses; ``kind`` says what one is for (billing or installation/delivery)."""
    get_account(conn, account_id)
    values = _address_values(kind, street, postal_code, city, country)
    return int(
        conn.execute(address.insert().values(account_id=account_id, **values).returning(address.c.id)).scalar_one()
    )


def _address_values(kind: str, street: str, postal_code: str, city: str, country: str) -> dict[str, str]:
    """The checked columns of an address (one rule for adding and changing one)."""
    country_code = v.required_text("country", country, 2).upper()
    if len(country_code) != 2 or not country_code.isalpha():
        raise DomainError("country", "country must be a two-letter ISO code")
    return {
        "kind": v.one_of("kind", kind, ADDRESS_KINDS),
        "street": v.required_text("street", street, 200),
        "postal_code": v.required_text("postal_code", postal_code, 20),
        "city": v.required_text("city", city, 100),
        "country": country_code,
    }


def get_address(conn: Connection, address_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(address).where(address.c.id == address_id)).one_or_none()
    if row is None:
        raise DomainError("address_id", f"address {address_id} does not exist")
    return row


def update_address(
    conn: Connection, address_id: int, kind: str, street: str, postal_code: str, city: str, country: str = "DE"
) -> None:
    """Correct an address; checked exactly like ``add_address``. Orders keep the delivery address they copied."""
    get_address(conn, address_id)
    values = _address_values(kind, street, postal_code, city, country)
    conn.execute(address.update().where(address.c.id == address_id).values(**values))


def remove_address(conn: Connection, address_id: int) -> None:
    """Remove an address; orders and invoices keep the copy they were made with, nothing else refers to it."""
    get_address(conn, address_id)
    conn.execute(address.delete().where(address.c.id == address_id))


@dataclass(frozen=True)
class ContactInput:
    last_name: str
    salutation: str = "none"
    first_name: str | None = None
    academic_title: str | None = None
    role: str | None = None
    email: str | None = None
    phone: str | None = None
    preferred_language: str = "de"
    marketing_opt_out: bool = False


# one check per editable contact field, shared by create and update so both accept and refuse the same input
_CONTACT_CHECKS: dict[str, Callable[[Any], object]] = {
    "salutation": lambda x: v.one_of("salutation", x, SALUTATIONS),
    "academic_title": lambda x: v.optional_text("academic_title", x, 50),
    "first_name": lambda x: v.optional_text("first_name", x, 100),
    "last_name": lambda x: v.required_text("last_name", x, 100),
    "role": lambda x: v.optional_text("role", x, 100),
    "email": v.email,
    "phone": v.phone,
    "preferred_language": lambda x: v.one_of("preferred_language", x, LANGUAGES),
    "marketing_opt_out": lambda x: v.flag("marketing_opt_out", x),
}


def _contact_values(fields: Mapping[str, object]) -> dict[str, object]:
    """Validate the contact fields given; an unknown or read-only field is refused by name."""
    for name in fields:
        if name not in _CONTACT_CHECKS:
            raise DomainError(name, f"{name} cannot be changed (allowed: {', '.join(_CONTACT_CHECKS)})")
    for name in ("academic_title", "first_name", "last_name", "role", "email", "phone"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise DomainError(name, f"{name} must be text, got {fields[name]!r}")
    return {name: _CONTACT_CHECKS[name](value) for name, value in fields.items()}


def create_contact(
    conn: Connection, data: ContactInput, account_id: int | None = None, now: datetime | None = None
) -> int:
    """A person, optionally of an account; e-mail checked, phone stored as E.164 (national = German)."""
    if account_id is not None:
        get_account(conn, account_id)
    values = _contact_values({**asdict(data), "marketing_opt_out": bool(data.marketing_opt_out)})
    values.update(account_id=account_id, created_at=v.timestamp(now))
    return int(conn.execute(contact.insert().values(**values).returning(contact.c.id)).scalar_one())


def get_contact(conn: Connection, contact_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(contact).where(contact.c.id == contact_id)).one_or_none()
    if row is None:
        raise DomainError("contact_id", f"contact {contact_id} does not exist")
    return row


def update_contact(conn: Connection, contact_id: int, **changes: object) -> None:
    """Change a person's data (the PATCH of the REST layer), validated exactly like ``create_contact``."""
    get_contact(conn, contact_id)
    values = _contact_values(changes)
    if values:
        conn.execute(contact.update().where(contact.c.id == contact_id).values(**values))


def contact_salutation(conn: Connection, contact_id: int) -> str:
    """The letter salutation of a stored contact, in the contact's preferred language."""
    row = get_contact(conn, contact_id)
    return letter_salutation(
        row.salutation, row.last_name, row.first_name, row.academic_title, row.preferred_language
    )


def contact_by_email(conn: Connection, account_id: int, email: str) -> int | None:
    """The account's contact with this e-mail address (case-insensitive): a known person is not added twice."""
    query = (
        sa.select(contact.c.id)
        .where(contact.c.account_id == account_id, sa.func.lower(contact.c.email) == email.lower())
        .order_by(contact.c.id)
    )
    found = conn.execute(query).scalars().first()
    return int(found) if found is not None else None


@dataclass
class Duplicate:
    """An account that may already be the lead, and what matched (name, email)."""

    account_id: int
    number: str
    name: str
    matched_by: list[str]
    contact_id: int | None = None
    contact_name: str | None = None


def possible_duplicates(conn: Connection, company: str, email: str | None, limit: int = 10) -> list[Duplicate]:
    """Accounts that may already be this lead: the same name (case and spacing ignored) or a contact with the
    same e-mail address. One entry per account, so sales can pick it or knowingly create a new one."""
    found: dict[int, Duplicate] = {}
    by_name = (
        sa.select(account.c.id, account.c.number, account.c.name)
        .where(account.c.name_key == search_key(v.required_text("company", company, 300)))
        .order_by(account.c.id)
        .limit(limit)
    )
    for row in conn.execute(by_name):
        found[int(row.id)] = Duplicate(int(row.id), str(row.number), str(row.name), ["name"])
    address = v.email(email)
    if address is None:
        return list(found.values())
    by_email = (
        sa.select(contact.c.id, contact.c.account_id, contact.c.first_name, contact.c.last_name,
                  account.c.number, account.c.name)
        .join(account, account.c.id == contact.c.account_id)
        .where(sa.func.lower(contact.c.email) == address.lower())
        .order_by(contact.c.id)
        .limit(limit)
    )
    for person in conn.execute(by_email):
        entry = found.setdefault(int(person.account_id), Duplicate(int(person.account_id), str(person.number),
                                                                   str(person.name), []))
        if entry.contact_id is None:
            entry.matched_by.append("email")
            entry.contact_id = int(person.id)
            entry.contact_name = " ".join(str(x) for x in (person.first_name, person.last_name) if x)
    return list(found.values())
