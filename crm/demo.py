"""Demo data: a believable ISP catalogue and customer base for ``make run`` and manual testing.

Deterministic (``random.Random(42)``, fixed dates) and idempotent: products are matched by code and accounts
by name, and an account's contacts, addresses, quotes, orders and incidents are only created together with
the account itself, so a second run changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import orders, quotes
from . import service_desk as sd
from .accounts import ContactInput, add_address, create_account, create_contact, set_account_status
from .positions import PositionInput
from .products import ProductInput, create_product, product_id_by_code
from .schema import account

DEMO_NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
ACCOUNT_COUNT = 30

PRODUCTS = [
    ProductInput("ADSL16", "ADSL 16 Business", "access", "recurring_monthly", Decimal("29.90"),
                 provisioning_steps=("ip",)),
    ProductInput("ADSL50", "VDSL 50 Business", "access", "recurring_monthly", Decimal("39.90"),
                 provisioning_steps=("ip",)),
    ProductInput("ADSL100", "VDSL 100 Business", "access", "recurring_monthly", Decimal("49.90"),
                 provisioning_steps=("ip",)),
    ProductInput("SDSL10", "SDSL 10 symmetrisch", "access", "recurring_monthly", Decimal("199.00"),
                 provisioning_steps=("ip",)),
    ProductInput("SDSL20", "SDSL 20 symmetrisch", "access", "recurring_monthly", Decimal("299.00"),
                 provisioning_steps=("ip",)),
    ProductInput("SETUP-DSL", "Einrichtung DSL-Anschluss", "access", "setup_fee", Decimal("99.00")),
    ProductInput("VOIP-TRUNK", "VoIP-Trunk 10 Kanäle", "voice", "recurring_monthly", Decimal("59.00")),
    ProductInput("VOIP-NUM", "Rufnummernblock 10er", "voice", "recurring_monthly", Decimal("9.90")),
    ProductInput("RACK-1HE", "Housing 1 HE inkl. 1 A Strom", "housing", "recurring_monthly", Decimal("49.00"),
                 provisioning_steps=("ip",)),
    ProductInput("RACK-SETUP", "Einrichtung Housing", "housing", "setup_fee", Decimal("149.00")),
    ProductInput("DOMAIN-DE", "Domain .de", "domain", "recurring_yearly", Decimal("12.00"),
                 provisioning_steps=("domain",)),
    ProductInput("IPV4-STATIC", "Statische IPv4-Adresse", "ip", "recurring_monthly", Decimal("5.00"),
                 provisioning_steps=("ip",)),
    ProductInput("MODEM-7530", "Modem FRITZ!Box 7530", "hardware", "hardware", Decimal("149.00"),
                 provisioning_steps=("hardware",)),
    ProductInput("MODEM-7590", "Modem FRITZ!Box 7590 AX", "hardware", "hardware", Decimal("259.00"),
                 provisioning_steps=("hardware",)),
    ProductInput("MODEM-SDSL", "SDSL-Router LANCOM 1793", "hardware", "hardware", Decimal("689.00"),
                 provisioning_steps=("hardware",)),
]

_NAME_STEMS = ["Nordlicht", "Brückner", "Havelland", "Alpenblick", "Rheintal", "Spreewerk", "Elbufer", "Kranich",
               "Lindenhof", "Sonnenberg", "Weserland", "Eichwald", "Bergmann", "Hafenblick", "Mühlbach"]
_TRADES = ["Steuerberatung", "Architekten", "Logistik", "Zahnarztpraxis", "Metallbau", "Medien", "Software",
           "Immobilien", "Kanzlei", "Druckerei"]
_LEGAL_FORMS = ["GmbH", "GmbH & Co. KG", "AG", "KG", "e.K.", "GbR"]
_CITIES = [("10115", "Berlin", "030"), ("20095", "Hamburg", "040"), ("80331", "München", "089"),
           ("50667", "Köln", "0221"), ("60311", "Frankfurt am Main", "069"), ("04109", "Leipzig", "0341")]
_STREETS = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Industriestraße", "Am Markt", "Schulstraße"]
_PEOPLE = [("Herr", "Thomas", "Müller"), ("Frau", "Sabine", "Schmidt"), ("Herr", "Jan", "Schneider"),
           ("Frau", "Julia", "Fischer"), ("divers", "Alex", "Meier"), ("Herr", "Stefan", "Weber"),
           ("Frau", "Anna", "Wagner"), ("Herr", "Michael", "Becker"), ("Frau", "Laura", "Hoffmann"),
           ("none", "Kim", "Schulz")]
_TITLES = [None, None, None, "Dr.", "Prof. Dr."]
_ROLES = ["Geschäftsführung", "IT-Leitung", "Einkauf", "Buchhaltung"]
_SEGMENTS = ["xDSL", "SDSL", "VoIP", "housing", "domains"]


@dataclass
class DemoAccount:
    name: str
    legal_form: str
    sla_class: str
    segments: list[str]
    city: tuple[str, str, str]
    street: str
    contacts: list[ContactInput] = field(default_factory=list)
    quote_codes: list[str] = field(default_factory=list)
    stage: str = "prospect"  # prospect, quoted, ordered
    incident: tuple[str, str, str] | None = None


def _plan() -> list[DemoAccount]:
    """All random choices, made up front, so the result does not depend on what already exists."""
    rng = random.Random(42)
    names = [f"{stem} {trade}" for stem in _NAME_STEMS for trade in _TRADES]
    rng.shuffle(names)
    plans = []
    for i, stem in enumerate(names[:ACCOUNT_COUNT]):
        legal_form = rng.choice(_LEGAL_FORMS)
        city = rng.choice(_CITIES)
        plan = DemoAccount(
            name=f"{stem} {legal_form}", legal_form=legal_form, sla_class=rng.choice(["gold", "silver", "bronze"]),
            segments=sorted(rng.sample(_SEGMENTS, rng.randint(1, 3))), city=city,
            street=f"{rng.choice(_STREETS)} {rng.randint(1, 120)}",
        )
        for salutation, first, last in rng.sample(_PEOPLE, rng.randint(1, 3)):
            plan.contacts.append(ContactInput(
                last_name=last, salutation=salutation, first_name=first, academic_title=rng.choice(_TITLES),
                role=rng.choice(_ROLES), email=f"{first.lower()}.{last.lower()}@example.com".replace("ü", "ue"),
                phone=f"{city[2]} {rng.randint(2000000, 9999999)}",
                preferred_language="en" if rng.random() < 0.1 else "de", marketing_opt_out=rng.random() < 0.2,
            ))
        if i % 3 == 0:
            plan.stage = "ordered" if i % 2 == 0 else "quoted"
            access = rng.choice(["ADSL16", "ADSL50", "ADSL100", "SDSL10", "SDSL20"])
            modem = "MODEM-SDSL" if access.startswith("SDSL") else rng.choice(["MODEM-7530", "MODEM-7590"])
            plan.quote_codes = [access, "SETUP-DSL", modem] + rng.sample(["VOIP-TRUNK", "IPV4-STATIC", "DOMAIN-DE"], 2)
        if i % 4 == 1:
            plan.incident = (rng.choice(["Leitung ohne Sync", "VoIP ohne Ton", "Paketverlust"]),
                             rng.choice(sd.LEVELS), rng.choice(sd.LEVELS))
        plans.append(plan)
    return plans


def _load_account(conn: Connection, plan: DemoAccount, product_ids: dict[str, int], index: int) -> None:
    account_id = create_account(conn, plan.name, legal_form=plan.legal_form, segments=plan.segments,
                                owner="demo.sales", sla_class=plan.sla_class, now=DEMO_NOW)
    postal_code, city, _ = plan.city
    add_address(conn, account_id, "billing", plan.street, postal_code, city)
    add_address(conn, account_id, "installation", plan.street, postal_code, city)
    contact_ids = [create_contact(conn, c, account_id, now=DEMO_NOW) for c in plan.contacts]
    if plan.quote_codes:
        positions = [PositionInput(Decimal(1), product_ids[code]) for code in plan.quote_codes]
        quote_id = quotes.create_quote(conn, account_id, positions, (DEMO_NOW + timedelta(days=30)).date(),
                                       contact_id=contact_ids[0], now=DEMO_NOW)
        quotes.send_quote(conn, quote_id, now=DEMO_NOW)
        if plan.stage == "ordered":
            quotes.accept_quote(conn, quote_id, now=DEMO_NOW)
            set_account_status(conn, account_id, "customer")
            orders.create_order_from_quote(conn, quote_id, now=DEMO_NOW)
    if plan.incident:
        summary, impact, urgency = plan.incident
        sd.open_incident(conn, account_id, summary, impact=impact, urgency=urgency, origin="phone",
                         contact_id=contact_ids[0], now=DEMO_NOW + timedelta(hours=index))


def load_demo_data(conn: Connection) -> dict[str, int]:
    """Load what is missing; returns how many products and accounts this run created (0, 0 on a rerun)."""
    created = {"products": 0, "accounts": 0}
    product_ids: dict[str, int] = {}
    for item in PRODUCTS:
        existing = product_id_by_code(conn, item.code)
        if existing is None:
            existing = create_product(conn, item)
            created["products"] += 1
        product_ids[item.code] = existing
    for index, plan in enumerate(_plan()):
        if conn.execute(sa.select(account.c.id).where(account.c.name == plan.name)).first() is None:
            _load_account(conn, plan, product_ids, index)
            created["accounts"] += 1
    return created
