"""Demo data: a believable ISP catalogue and customer base for ``make run`` and manual testing.

Deterministic (``random.Random(42)``, fixed dates) and idempotent: products are matched by code, the campaign
by name and accounts by name, and everything about an account (contacts, addresses, activities, quotes,
orders, booked services, contracts, opportunities, appointments, incidents) is only created together with the
account itself, so a second run changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import booked_services, campaigns, contracts, orders, quotes
from . import service_desk as sd
from .accounts import (
    ACCOUNT_NUMBER_BASE,
    ADDRESS_KINDS,
    SLA_CLASSES,
    ContactInput,
    add_address,
    create_account,
    create_contact,
    search_key,
    set_account_status,
)
from .activities import ActivityInput, log_activity
from .appointments import AppointmentInput, create_appointment
from .errors import DomainError
from .numbering import NO_YEAR
from .opportunities import OpportunityInput, create_opportunity
from .positions import PositionInput
from .pricing import PriceLine, compute_totals
from .products import ProductInput, create_product, product_id_by_code
from .schema import (
    account,
    account_segment,
    activity,
    address,
    booked_service,
    contact,
    counter,
    incident,
    opportunity,
    order_position,
    product,
    quote,
    quote_position,
)
from .sla import LEVELS, deadlines, priority
from .sql import insert_or_ignore

DEMO_NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
ACCOUNT_COUNT = 50
SALES = "demo.sales"
FAIR = ("it-sa 2025", date(2025, 10, 7), date(2025, 10, 9))

PRODUCTS = [
    ProductInput(
        "ADSL16",
        "ADSL 16 Business",
        "access",
        "recurring_monthly",
        Decimal("29.90"),
        provisioning_steps=("ip",),
    ),
    ProductInput(
        "ADSL50",
        "VDSL 50 Business",
        "access",
        "recurring_monthly",
        Decimal("39.90"),
        provisioning_steps=("ip",),
    ),
    ProductInput(
        "ADSL100",
        "VDSL 100 Business",
        "access",
        "recurring_monthly",
        Decimal("49.90"),
        provisioning_steps=("ip",),
    ),
    ProductInput(
        "SDSL10",
        "SDSL 10 symmetrisch",
        "access",
        "recurring_monthly",
        Decimal("199.00"),
        provisioning_steps=("ip",),
    ),
    ProductInput(
        "SDSL20",
        "SDSL 20 symmetrisch",
        "access",
        "recurring_monthly",
        Decimal("299.00"),
        provisioning_steps=("ip",),
    ),
    ProductInput("SETUP-DSL", "Einrichtung DSL-Anschluss", "access", "setup_fee", Decimal("99.00")),
    ProductInput("VOIP-TRUNK", "VoIP-Trunk 10 Kanäle", "voice", "recurring_monthly", Decimal("59.00")),
    ProductInput("VOIP-NUM", "Rufnummernblock 10er", "voice", "recurring_monthly", Decimal("9.90")),
    ProductInput(
        "RACK-1HE",
        "Housing 1 HE inkl. 1 A Strom",
        "housing",
        "recurring_monthly",
        Decimal("49.00"),
        provisioning_steps=("ip",),
    ),
    ProductInput("RACK-SETUP", "Einrichtung Housing", "housing", "setup_fee", Decimal("149.00")),
    ProductInput(
        "DOMAIN-DE",
        "Domain .de",
        "domain",
        "recurring_yearly",
        Decimal("12.00"),
        provisioning_steps=("domain",),
    ),
    ProductInput(
        "IPV4-STATIC",
        "Statische IPv4-Adresse",
        "ip",
        "recurring_monthly",
        Decimal("5.00"),
        provisioning_steps=("ip",),
    ),
    ProductInput(
        "MODEM-7530",
        "Modem FRITZ!Box 7530",
        "hardware",
        "hardware",
        Decimal("149.00"),
        provisioning_steps=("hardware",),
    ),
    ProductInput(
        "MODEM-7590",
        "Modem FRITZ!Box 7590 AX",
        "hardware",
        "hardware",
        Decimal("259.00"),
        provisioning_steps=("hardware",),
    ),
    ProductInput(
        "MODEM-SDSL",
        "SDSL-Router LANCOM 1793",
        "hardware",
        "hardware",
        Decimal("689.00"),
        provisioning_steps=("hardware",),
    ),
]

NAME_STEMS = [
    "Nordlicht",
    "Brückner",
    "Havelland",
    "Alpenblick",
    "Rheintal",
    "Spreewerk",
    "Elbufer",
    "Kranich",
    "Lindenhof",
    "Sonnenberg",
    "Weserland",
    "Eichwald",
    "Bergmann",
    "Hafenblick",
    "Mühlbach",
]
_TRADES = [
    "Steuerberatung",
    "Architekten",
    "Logistik",
    "Zahnarztpraxis",
    "Metallbau",
    "Medien",
    "Software",
    "Immobilien",
    "Kanzlei",
    "Druckerei",
]
_LEGAL_FORMS = ["GmbH", "GmbH & Co. KG", "AG", "KG", "e.K.", "GbR"]
_CITIES = [
    ("10115", "Berlin", "030"),
    ("20095", "Hamburg", "040"),
    ("80331", "München", "089"),
    ("50667", "Köln", "0221"),
    ("60311", "Frankfurt am Main", "069"),
    ("04109", "Leipzig", "0341"),
]
_STREETS = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Industriestraße", "Am Markt", "Schulstraße"]
_PEOPLE = [
    ("Herr", "Thomas", "Müller"),
    ("Frau", "Sabine", "Schmidt"),
    ("Herr", "Jan", "Schneider"),
    ("Frau", "Julia", "Fischer"),
    ("divers", "Alex", "Meier"),
    ("Herr", "Stefan", "Weber"),
    ("Frau", "Anna", "Wagner"),
    ("Herr", "Michael", "Becker"),
    ("Frau", "Laura", "Hoffmann"),
    ("none", "Kim", "Schulz"),
]
_TITLES = [None, None, None, "Dr.", "Prof. Dr."]
_ROLES = ["Geschäftsführung", "IT-Leitung", "Einkauf", "Buchhaltung"]
_SEGMENTS = ["xDSL", "SDSL", "VoIP", "housing", "domains"]
_ACCESS = ["ADSL16", "ADSL50", "ADSL100", "SDSL10", "SDSL20"]
_EXTRAS = ["VOIP-TRUNK", "IPV4-STATIC", "DOMAIN-DE"]
_FAULTS = ["Leitung ohne Sync", "VoIP ohne Ton", "Paketverlust", "Domain nicht erreichbar"]


@dataclass
class DemoAccount:
    index: int
    name: str
    legal_form: str
    sla_class: str
    segments: list[str]
    city: tuple[str, str, str]
    street: str
    contacts: list[ContactInput] = field(default_factory=list)
    quote_codes: list[str] = field(default_factory=list)
    stage: str = "prospect"  # prospect, quoted, ordered, delivered
    incident: tuple[str, str, str] | None = None
    fair_visitor: bool = False
    expected_revenue: Decimal = Decimal("0.00")


def _contact(rng: random.Random, city: tuple[str, str, str], person: tuple[str, str, str]) -> ContactInput:
    salutation, first, last = person
    return ContactInput(
        last_name=last,
        salutation=salutation,
        first_name=first,
        academic_title=rng.choice(_TITLES),
        role=rng.choice(_ROLES),
        email=f"{first}.{last}@example.com".lower().replace("ü", "ue"),
        phone=f"{city[2]} {rng.randint(2000000, 9999999)}",
        preferred_language="en" if rng.random() < 0.1 else "de",
        marketing_opt_out=rng.random() < 0.2,
    )


def _plan() -> list[DemoAccount]:
    """All random choices, made up front, so the result does not depend on what already exists."""
    rng = random.Random(42)
    names = [f"{stem} {trade}" for stem in NAME_STEMS for trade in _TRADES]
    rng.shuffle(names)
    plans = []
    for i, stem in enumerate(names[:ACCOUNT_COUNT]):
        legal_form = rng.choice(_LEGAL_FORMS)
        city = rng.choice(_CITIES)
        plan = DemoAccount(
            index=i,
            name=f"{stem} {legal_form}",
            legal_form=legal_form,
            sla_class=rng.choice(["gold", "silver", "bronze"]),
            segments=sorted(rng.sample(_SEGMENTS, rng.randint(1, 3))),
            city=city,
            street=f"{rng.choice(_STREETS)} {rng.randint(1, 120)}",
            expected_revenue=Decimal(rng.randrange(1200, 24000, 100)).quantize(Decimal("0.01")),
        )
        plan.contacts = [_contact(rng, city, person) for person in rng.sample(_PEOPLE, rng.randint(1, 3))]
        if i % 3 == 0:
            plan.stage = ("delivered" if i % 4 == 0 else "ordered") if i % 2 == 0 else "quoted"
            access = rng.choice(_ACCESS)
            modem = "MODEM-SDSL" if access.startswith("SDSL") else rng.choice(["MODEM-7530", "MODEM-7590"])
            plan.quote_codes = [access, "SETUP-DSL", modem, *rng.sample(_EXTRAS, 2)]
        if i % 4 == 1:
            plan.incident = (rng.choice(_FAULTS), rng.choice(LEVELS), rng.choice(LEVELS))
        plan.fair_visitor = i % 5 == 2
        plans.append(plan)
    return plans


def _produce(conn: Connection, account_id: int, order_id: int, plan: DemoAccount) -> None:
    """Run production to the end: sub-orders done, services provisioned and active, a contract over them."""
    orders.start_production(conn, order_id)
    for sub in orders.sub_orders(conn, order_id):
        orders.set_sub_order_status(conn, sub["id"], "in_progress", now=DEMO_NOW)
        orders.set_sub_order_status(conn, sub["id"], "done", now=DEMO_NOW)
    service_ids = booked_services.book_order_services(conn, order_id, now=DEMO_NOW)
    codes = dict(
        conn.execute(
            sa.select(order_position.c.id, product.c.code)
            .join(product, product.c.id == order_position.c.product_id)
            .where(order_position.c.order_id == order_id)
        ).all()
    )
    slug = plan.name.split()[0].lower().replace("ü", "ue").replace("ä", "ae").replace("ö", "oe")
    for service_id in service_ids:
        code = codes[booked_services.get_service(conn, service_id).order_position_id]
        if code in _ACCESS:
            booked_services.set_provisioning(conn, service_id, ip_address=f"192.0.2.{plan.index + 10}")
        elif code == "IPV4-STATIC":
            booked_services.set_provisioning(conn, service_id, ip_address=f"198.51.100.{plan.index + 10}")
        elif code == "DOMAIN-DE":
            booked_services.set_provisioning(conn, service_id, domain_name=f"{slug}-{plan.index}.de")
        booked_services.activate_service(conn, service_id, DEMO_NOW.date())
    contracts.create_contract(
        conn,
        account_id,
        contracts.ContractTerms(DEMO_NOW.date(), 24, 3, booked_service_ids=tuple(service_ids)),
        now=DEMO_NOW,
    )


def _sell(
    conn: Connection, plan: DemoAccount, account_id: int, contact_id: int, product_ids: dict[str, int]
) -> None:
    """Quote, and for ordered accounts the order (delivered ones all the way to active services)."""
    positions = [PositionInput(Decimal(1), product_ids[code]) for code in plan.quote_codes]
    quote_id = quotes.create_quote(
        conn,
        account_id,
        positions,
        (DEMO_NOW + timedelta(days=30)).date(),
        contact_id=contact_id,
        now=DEMO_NOW,
    )
    quotes.send_quote(conn, quote_id, now=DEMO_NOW)
    if plan.stage == "quoted":
        create_opportunity(
            conn,
            OpportunityInput(
                account_id,
                f"{plan.quote_codes[0]} für {plan.name}",
                plan.expected_revenue,
                (DEMO_NOW + timedelta(days=60)).date(),
                stage="proposal",
                source="phone",
                contact_id=contact_id,
                product_id=product_ids[plan.quote_codes[0]],
                owner=SALES,
            ),
            now=DEMO_NOW,
        )
        start = DEMO_NOW.replace(hour=10) + timedelta(days=plan.index)
        create_appointment(
            conn,
            AppointmentInput(
                "Angebotsbesprechung",
                start,
                start + timedelta(hours=1),
                [SALES],
                place=plan.city[1],
                account_id=account_id,
                contact_id=contact_id,
            ),
            now=DEMO_NOW,
        )
        return
    quotes.accept_quote(conn, quote_id, now=DEMO_NOW)
    set_account_status(conn, account_id, "customer")
    order_id = orders.create_order_from_quote(conn, quote_id, now=DEMO_NOW)
    if plan.stage == "delivered":
        _produce(conn, account_id, order_id, plan)


def _load_account(conn: Connection, plan: DemoAccount, product_ids: dict[str, int], fair_id: int) -> None:
    account_id = create_account(
        conn,
        plan.name,
        legal_form=plan.legal_form,
        segments=plan.segments,
        owner=SALES,
        sla_class=plan.sla_class,
        now=DEMO_NOW,
    )
    postal_code, city, _ = plan.city
    add_address(conn, account_id, "billing", plan.street, postal_code, city)
    add_address(conn, account_id, "installation", plan.street, postal_code, city)
    contact_ids = [create_contact(conn, c, account_id, now=DEMO_NOW) for c in plan.contacts]
    log_activity(
        conn,
        ActivityInput(
            "call",
            "Erstkontakt",
            SALES,
            body="Bedarf an Anbindung besprochen.",
            contact_id=contact_ids[0],
            occurred_at=DEMO_NOW - timedelta(days=90 - plan.index),
        ),
    )
    if plan.fair_visitor:
        campaigns.add_members(conn, fair_id, contact_ids[:1], now=DEMO_NOW)
        log_activity(
            conn,
            ActivityInput(
                "meeting",
                "Gespräch am Messestand",
                SALES,
                contact_id=contact_ids[0],
                campaign_id=fair_id,
                occurred_at=datetime(2025, 10, 8, 11, tzinfo=UTC),
            ),
        )
        create_opportunity(
            conn,
            OpportunityInput(
                account_id,
                "Standortvernetzung",
                plan.expected_revenue,
                (DEMO_NOW + timedelta(days=90)).date(),
                stage="qualified",
                source="trade_fair",
                campaign_id=fair_id,
                contact_id=contact_ids[0],
                owner=SALES,
            ),
            now=DEMO_NOW,
        )
    if plan.quote_codes:
        _sell(conn, plan, account_id, contact_ids[0], product_ids)
    if plan.incident:
        summary, impact, urgency = plan.incident
        sd.open_incident(
            conn,
            account_id,
            summary,
            impact=impact,
            urgency=urgency,
            origin="phone",
            contact_id=contact_ids[0],
            now=DEMO_NOW + timedelta(hours=plan.index),
        )


def _ensure_products(conn: Connection) -> tuple[dict[str, int], int]:
    """The catalogue's product ids by code, creating missing products; and how many were created."""
    product_ids: dict[str, int] = {}
    created = 0
    for item in PRODUCTS:
        existing = product_id_by_code(conn, item.code)
        if existing is None:
            existing = create_product(conn, item)
            created += 1
        product_ids[item.code] = existing
    return product_ids, created


def load_demo_data(conn: Connection) -> dict[str, int]:
    """Load what is missing; returns how many products and accounts this run created (0, 0 on a rerun)."""
    product_ids, new_products = _ensure_products(conn)
    created = {"products": new_products, "accounts": 0}
    name, starts_on, ends_on = FAIR
    fair_id = campaigns.campaign_id_by_name(conn, name)
    if fair_id is None:
        fair_id = campaigns.create_campaign(
            conn,
            name,
            "trade_fair",
            starts_on,
            ends_on,
            "IT-Sicherheitsmesse Nürnberg, Stand 7-312",
            now=DEMO_NOW,
        )
    for plan in _plan():
        if conn.execute(sa.select(account.c.id).where(account.c.name == plan.name)).first() is None:
            _load_account(conn, plan, product_ids, fair_id)
            created["accounts"] += 1
    return created



# --- the bulk data set: 10^5 generated accounts for the page bench (``silverflow demo-data --accounts N``) ---

BULK_OWNER = "demo.bulk"  # marks the generated accounts, so a rerun only adds the missing ones
BULK_BATCH = 2_000
BULK_START = datetime(2026, 1, 1, tzinfo=UTC)  # generated records date from 1–15 January 2026: one number year
_BULK_SPAN_SECONDS = int((DEMO_NOW - BULK_START).total_seconds())
_BULK_STEMS = [*NAME_STEMS, "Quellwerk", "Ostwind", "Talblick", "Auenland", "Fichtel", "Gartenhof", "Isarwerk"]
_BULK_TRADES = [*_TRADES, "Bäckerei", "Elektro", "Sanitär", "Autohaus", "Hotel"]
_BULK_QUOTE_STATES = ("draft", "sent", "sent", "accepted", "rejected")
_BULK_INCIDENT_STATES = ("new", "assigned", "pending", "resolved", "closed", "closed", "closed", "closed")
_BULK_GROUPS = ("servicedesk", "support2", "provisioning")
_BULK_STAGES = {"lead": 10, "qualified": 25, "proposal": 50, "negotiation": 75, "won": 100, "lost": 0}


def _reserve_numbers(conn: Connection, kind: str, year: int, count: int) -> int:
    """The first of ``count`` consecutive counter values (``numbering.next_value`` for a whole block at once), so
    generated numbers never collide with the ones the services hand out later."""
    insert_or_ignore(conn, counter, {"kind": kind, "year": year, "value": 0})
    last = conn.execute(
        counter.update()
        .where(counter.c.kind == kind, counter.c.year == year)
        .values(value=counter.c.value + count)
        .returning(counter.c.value)
    ).scalar_one()
    return int(last) - count + 1


def _ids_by(conn: Connection, table: sa.Table, key: str, values: list[Any]) -> dict[Any, int]:
    """Ids of just-inserted rows by a unique column (a multi-row insert with RETURNING in row order runs one
    statement per row on SQLite; reading the ids back is ten times faster)."""
    column = table.c[key]
    return {k: int(i) for k, i in conn.execute(sa.select(column, table.c.id).where(column.in_(values)))}


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(table.insert(), rows)


@dataclass
class _BulkAccount:
    """One generated account with everything that hangs on it, before the database has given ids."""

    row: dict[str, Any]
    segments: list[str]
    addresses: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    quote: dict[str, Any] | None = None
    quote_lines: list[dict[str, Any]] = field(default_factory=list)
    incident: dict[str, Any] | None = None
    opportunity: dict[str, Any] | None = None
    service: dict[str, Any] | None = None


def _bulk_quote(rng: random.Random, plan: _BulkAccount, products: dict[str, Any]) -> None:
    codes = [rng.choice(_ACCESS), "SETUP-DSL", rng.choice(["MODEM-7530", "MODEM-7590"])]
    lines = [
        {"line_no": n, "product_id": products[code].id, "description": products[code].name,
         "quantity": Decimal(1), "unit_price": products[code].list_price, "vat_rate": products[code].vat_rate}
        for n, code in enumerate(codes, start=1)
    ]
    totals = compute_totals(PriceLine(x["quantity"], x["unit_price"], x["vat_rate"]) for x in lines)
    plan.quote_lines = [{**line, "total": total} for line, total in zip(lines, totals.positions, strict=True)]
    created = plan.row["created_at"] + timedelta(hours=rng.randint(1, 48))
    status = rng.choice(_BULK_QUOTE_STATES)
    plan.quote = {
        "version": 1, "status": status, "valid_until": (created + timedelta(days=30)).date(),
        "net": totals.net, "vat": totals.vat, "gross": totals.gross, "created_at": created,
        "sent_at": None if status == "draft" else created + timedelta(hours=1),
        "decided_at": created + timedelta(days=3) if status in ("accepted", "rejected") else None,
    }


def _bulk_incident(rng: random.Random, plan: _BulkAccount) -> None:
    impact, urgency = rng.choice(LEVELS), rng.choice(LEVELS)
    prio = priority(impact, urgency)
    status = rng.choice(_BULK_INCIDENT_STATES)
    opened = BULK_START + timedelta(seconds=rng.randrange(_BULK_SPAN_SECONDS))
    due = deadlines(plan.row["sla_class"], prio, opened)
    done = opened + timedelta(hours=rng.randint(1, 48))
    plan.incident = {
        "origin": rng.choice(sd.ORIGINS), "summary": rng.choice(_FAULTS), "impact": impact, "urgency": urgency,
        "priority": prio, "status": status, "assigned_group": None if status == "new" else rng.choice(_BULK_GROUPS),
        "opened_at": opened, "response_due": due.response_due, "resolution_due": due.resolution_due,
        "responded_at": None if status == "new" else opened + timedelta(minutes=20),
        "resolved_at": done if status in ("resolved", "closed") else None,
        "closed_at": done + timedelta(days=3) if status == "closed" else None,
    }


def _bulk_plan(index: int, products: dict[str, Any]) -> _BulkAccount:
    """Every value of account number ``index`` drawn from ``random.Random(index)``: the same on every run.

    All have contacts (1–3), two addresses and a first call; every second is a customer with an active access
    service, every fourth has a quote with three positions, every fifth an opportunity, every eighth an incident.
    """
    rng = random.Random(index)
    legal_form = rng.choice(_LEGAL_FORMS)
    name = f"{rng.choice(_BULK_STEMS)} {rng.choice(_BULK_TRADES)} {index + 1} {legal_form}"
    postal_code, city_name, _ = city = rng.choice(_CITIES)
    street = f"{rng.choice(_STREETS)} {rng.randint(1, 120)}"
    created = BULK_START + timedelta(seconds=rng.randrange(_BULK_SPAN_SECONDS))
    plan = _BulkAccount(
        row={"name": name, "name_key": search_key(name), "kind": "business", "legal_form": legal_form,
             "status": "customer" if index % 2 == 0 else "prospect", "sla_class": rng.choice(SLA_CLASSES),
             "owner": BULK_OWNER, "created_at": created},
        segments=sorted(rng.sample(_SEGMENTS, rng.randint(1, 2))),
        addresses=[{"kind": kind, "street": street, "postal_code": postal_code, "city": city_name, "country": "DE"}
                   for kind in ADDRESS_KINDS],
        contacts=[{**vars(_contact(rng, city, person)), "created_at": created}
                  for person in rng.sample(_PEOPLE, rng.randint(1, 3))],
    )
    if index % 2 == 0:
        plan.service = {"product_id": products[_ACCESS[index % len(_ACCESS)]].id, "quantity": Decimal(1),
                        "billing_period": "monthly", "status": "active", "start_date": created.date(),
                        "ip_address": f"100.{64 + index // 65536 % 64}.{index // 256 % 256}.{index % 256}",
                        "created_at": created}
    if index % 4 == 1:
        _bulk_quote(rng, plan, products)
    if index % 5 == 2:
        stage = rng.choice(list(_BULK_STAGES))
        plan.opportunity = {
            "title": "Standortvernetzung", "expected_revenue": Decimal(rng.randrange(1200, 24000, 100)),
            "probability": _BULK_STAGES[stage],
            "expected_close": (DEMO_NOW + timedelta(days=rng.randint(7, 180))).date(),
            "stage": stage, "source": "phone", "owner": SALES, "created_at": created,
            "closed_at": created + timedelta(days=5) if stage in ("won", "lost") else None,
        }
    if index % 8 == 3:
        _bulk_incident(rng, plan)
    return plan


def _write_bulk(conn: Connection, plans: list[_BulkAccount]) -> None:
    """One batch: account numbers and document numbers reserved in blocks, then accounts and what points at them."""
    first = _reserve_numbers(conn, "account", NO_YEAR, len(plans))
    numbers = [f"K-{ACCOUNT_NUMBER_BASE + first + n}" for n in range(len(plans))]
    _insert(conn, account, [{**p.row, "number": number} for number, p in zip(numbers, plans, strict=True)])
    account_ids = _ids_by(conn, account, "number", numbers)
    with_ids = [(account_ids[number], p) for number, p in zip(numbers, plans, strict=True)]
    _insert(conn, account_segment, [{"account_id": i, "segment": s} for i, p in with_ids for s in p.segments])
    _insert(conn, address, [{**a, "account_id": i} for i, p in with_ids for a in p.addresses])
    _insert(conn, contact, [{**c, "account_id": i} for i, p in with_ids for c in p.contacts])
    # the first person of each account is the one its call, quote, opportunity and incident name
    first_contact = {int(a): int(c) for a, c in conn.execute(
        sa.select(contact.c.account_id, sa.func.min(contact.c.id))
        .where(contact.c.account_id.in_(list(account_ids.values())))
        .group_by(contact.c.account_id)
    )}
    rows = [(i, first_contact[i], p) for i, p in with_ids]
    _insert(conn, activity, [
        {"account_id": i, "contact_id": c, "kind": "call", "author": SALES, "subject": "Erstkontakt",
         "body": "Bedarf an Anbindung besprochen.", "occurred_at": p.row["created_at"]}
        for i, c, p in rows
    ])
    _insert(conn, booked_service, [{**p.service, "account_id": i} for i, _c, p in rows if p.service])
    _insert(conn, opportunity, [{**p.opportunity, "account_id": i, "contact_id": c}
                                for i, c, p in rows if p.opportunity])
    year = BULK_START.year
    quoted = [(i, c, p.quote, p.quote_lines) for i, c, p in rows if p.quote]
    if quoted:
        first = _reserve_numbers(conn, "quote", year, len(quoted))
        numbers = [f"Q-{year}-{first + n:05d}" for n in range(len(quoted))]
        _insert(conn, quote, [{**q, "number": number, "account_id": i, "contact_id": c}
                              for number, (i, c, q, _lines) in zip(numbers, quoted, strict=True)])
        quote_ids = _ids_by(conn, quote, "number", numbers)
        _insert(conn, quote_position, [{**line, "quote_id": quote_ids[number]}
                                       for number, (*_, lines) in zip(numbers, quoted, strict=True)
                                       for line in lines])
    troubled = [(i, c, p.incident) for i, c, p in rows if p.incident]
    if troubled:
        first = _reserve_numbers(conn, "incident", year, len(troubled))
        _insert(conn, incident, [{**row, "number": f"I-{year}-{first + n:05d}", "account_id": i, "contact_id": c}
                                 for n, (i, c, row) in enumerate(troubled)])


def load_bulk_accounts(conn: Connection, count: int, batch_size: int = BULK_BATCH) -> int:
    """Make sure ``count`` generated accounts exist (the 100 000-account data set of the page bench); returns
    how many this run added. Rows go in as multi-row inserts, not through the services that validate one record
    at a time (minutes instead of hours); the values are what the services would write."""
    if count < 0:
        raise DomainError("accounts", f"the number of accounts must not be negative, got {count}")
    existing = int(conn.execute(sa.select(sa.func.count()).where(account.c.owner == BULK_OWNER)).scalar_one())
    product_ids, _created = _ensure_products(conn)
    products = {row.code: row for row in conn.execute(sa.select(product).where(product.c.id.in_(product_ids.values())))}
    for start in range(existing, count, batch_size):
        _write_bulk(conn, [_bulk_plan(index, products) for index in range(start, min(count, start + batch_size))])
    return max(count - existing, 0)
