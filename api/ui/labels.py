"""German words for the codes the CRM stores, and DomainError messages as a clerk reads them (customer, order,
invoice and search pages). The pages show these, never the stored code."""

from __future__ import annotations

import re

from crm.errors import DomainError

from .board_pages import STATUS_LABELS as INCIDENT_STATUS
from .quote_pages import STATUSES as QUOTE_STATUS

ACCOUNT_STATUS = {"prospect": "Interessent", "customer": "Kunde", "former": "Ehemaliger Kunde"}
ACCOUNT_KIND = {"business": "Geschäftskunde", "private": "Privatkunde"}
SLA_CLASS = {"gold": "Gold", "silver": "Silber", "bronze": "Bronze"}
ADDRESS_KIND = {"billing": "Rechnungsadresse", "installation": "Installations- und Lieferadresse"}
SALUTATION = {"none": "(ohne)", "Herr": "Herr", "Frau": "Frau", "divers": "divers"}
LANGUAGE = {"de": "Deutsch", "en": "Englisch"}
LEGAL_FORMS = ("GmbH", "GmbH & Co. KG", "UG (haftungsbeschränkt)", "AG", "KG", "OHG", "GbR", "e.K.", "e.V.",
               "Einzelunternehmen", "Freiberufler")
ORDER_STATUS = {"open": "Offen", "in_production": "In Produktion", "delivered": "Ausgeliefert",
                "cancelled": "Storniert"}
SUB_ORDER_STATUS = {"pending": "Wartet", "in_progress": "In Arbeit", "done": "Erledigt", "failed": "Fehlgeschlagen",
                    "cancelled": "Storniert"}
STEP = {"domain": "Domain registrieren", "ip": "IP-Adresse reservieren", "hardware": "Hardware beschaffen"}
INVOICE_STATUS = {"open": "Offen", "paid": "Bezahlt", "cancelled": "Storniert"}
INSTANCE_STATE = {"running": "läuft", "completed": "abgeschlossen", "cancelled": "abgebrochen", "failed": "gestört"}
PERIOD = {"once": "einmalig", "monthly": "monatlich", "yearly": "jährlich"}
MATCHED = {"name": "Name", "number": "Kundennummer", "contact": "Ansprechpartner", "email": "E-Mail",
           "phone": "Telefon", "city": "Ort"}

ALL = {"account_status": ACCOUNT_STATUS, "account_kind": ACCOUNT_KIND, "sla_class": SLA_CLASS,
       "address_kind": ADDRESS_KIND, "salutation": SALUTATION, "language": LANGUAGE, "order_status": ORDER_STATUS,
       "sub_order_status": SUB_ORDER_STATUS, "step": STEP, "invoice_status": INVOICE_STATUS,
       "quote_status": QUOTE_STATUS, "incident_status": INCIDENT_STATUS, "instance_state": INSTANCE_STATE,
       "period": PERIOD, "matched": MATCHED}

_LONGER = re.compile(r"longer than (\d+) characters")


def field_message(exc: DomainError) -> str:
    """The German sentence for a refused field (the CRM's messages are English and name the code)."""
    text = exc.message
    if "is required" in text:
        return "Bitte ausfüllen."
    longer = _LONGER.search(text)
    if longer:
        return f"Zu lang: höchstens {longer.group(1)} Zeichen."
    if exc.field == "email" or exc.field.endswith(".email"):
        return "Keine gültige E-Mail-Adresse."
    if exc.field == "phone":
        return "Keine gültige Telefonnummer (z. B. 030 1234567)."
    if exc.field == "country":
        return "Ländercode aus zwei Buchstaben, z. B. DE."
    if "must be one of" in text:
        return "Bitte einen Wert aus der Liste wählen."
    if "does not exist" in text:
        return "Nicht (mehr) vorhanden."
    return "Ungültige Eingabe."


def label(table: dict[str, str], code: object) -> str:
    """The German word for a code; an unknown code shows as a dash, never raw."""
    return table.get(str(code), "–") if code is not None else "–"


def _install() -> None:
    """Every page template may write ``labels.order_status[code]``: the 360° view rendered by pages.py too."""
    from .rendering import TEMPLATES

    for templates in TEMPLATES.values():
        templates.env.globals["labels"] = ALL


_install()
FLASHES = {"created": "Kunde angelegt.", "saved": "Stammdaten gespeichert.", "address": "Adresse gespeichert.",
           "address_removed": "Adresse entfernt.", "contact": "Ansprechpartner gespeichert.",
           "contact_known": "Diesen Ansprechpartner (gleiche E-Mail-Adresse) gibt es schon.",
           "paid": "Zahlung erfasst.", "payment_sent": "Zahlung an die laufende Abrechnung übergeben."}
ALL["flash"] = FLASHES
