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

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import booked_services, campaigns, contracts, orders, quotes
from . import service_desk as sd
from .accounts import ContactInput, add_address, create_account, create_contact, set_account_status
from .activities import ActivityInput, log_activity
from .appointments import AppointmentInput, create_appointment
from .opportunities import OpportunityInput, create_opportunity
from .positions import PositionInput
from .products import ProductInput, create_product, product_id_by_code
from .schema import account, order_position, product
from .sla import LEVELS

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
