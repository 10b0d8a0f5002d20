"""Billing: ``billing.invoice``, ``billing.payment`` and ``billing.reminder`` on the CRM's invoices.

``billing.accounts_due`` lists the accounts the monthly run still has to bill for a month.

``billing.invoice`` bills a delivered order (``order_id``) or an account's recurring services for a month
(``account_id`` + ``period`` "YYYY-MM", pro rata by ``crm.recurring``), renders the invoice PDF with the
GiroCode and, unless ``e_invoice`` is false, embeds an EN 16931 e-invoice (ZUGFeRD 2 / Factur-X CII XML, built
with ``drafthorse``, checked against the XSD and attached by ``facturx``) so the customer's bookkeeping can
read it without typing. The invoice, its gap-free number and the PDF document on the account are written in
one transaction: a failure leaves nothing behind and gives the number back.

Idempotency without a table of our own: the document's ``uploaded_by`` names the job that made it
(``billing.invoice:<idempotency key>``). The order or account row is locked before that lookup, so a retried
job — also one running at the same time as a stale twin — finds the invoice it created and gets it back
instead of a second number. Reminders use the same mechanism.

Sender data (name, address, VAT ID, IBAN/BIC for the SEPA credit transfer) come from ``SILVERFLOW_SELLER_*``
environment variables with demo defaults.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import facturx
import sqlalchemy as sa
from drafthorse.models.accounting import ApplicableTradeTax, TradeAllowanceCharge
from drafthorse.models.document import Document
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.engine import Connection

from crm import invoices as crm_invoices
from crm import positions as crm_positions
from crm import recurring
from crm.accounts import display_name
from crm.documents import DocumentLinks, DocumentStore
from crm.errors import DomainError
from crm.pricing import CENT, to_cents
from crm.schema import account, address, document, invoice, invoice_position, order, product, sub_order

from .documents import Address, DocumentParams, Sender, money, positions_of, render_pdf, totals
from .registry import BusinessError, ConnectorContext, Registry

EN16931 = "urn:cen.eu:en16931:2017"
SEPA_CREDIT_TRANSFER = "58"  # UNTDID 4461
UNIT_PIECE = "C62"  # UN/ECE rec. 20 "one"
DEFAULT_REMINDER_FEES = {1: Decimal("0.00"), 2: Decimal("5.00")}
REMINDER_PAYMENT_DAYS = 7
MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
          "November", "Dezember")


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 check digits (mod 97 == 1), so a typo in the configuration is refused at start."""
    text = iban.replace(" ", "").upper()
    if not 15 <= len(text) <= 34 or not text[:2].isalpha() or not text[2:4].isdigit() or not text.isalnum():
        return False
    digits = "".join(str(int(ch, 36)) for ch in text[4:] + text[:4])
    return int(digits) % 97 == 1


@dataclass(frozen=True)
class BillingConfig:
    """Who sends the invoices and where their PDFs go; a German GmbH with a demo IBAN by default."""

    name: str = "Silverflow Net GmbH"
    street: str = "Musterstraße 1"
    postal_code: str = "10115"
    city: str = "Berlin"
    country: str = "DE"
    phone: str = "+49 30 1234567"
    email: str = "buchhaltung@silverflow.example"
    vat_id: str = "DE123456789"
    iban: str = "DE02120300000000202051"
    bic: str = "BYLADEM1001"
    bank: str = "Beispielbank"
    payment_days: int = 14
    documents_dir: Path | None = field(default=None)

    def __post_init__(self) -> None:
        if not iban_is_valid(self.iban):
            raise ValueError(f"SILVERFLOW_SELLER_IBAN {self.iban!r} is not a valid IBAN")
        if len(self.country) != 2 or not self.country.isalpha():
            raise ValueError(f"SILVERFLOW_SELLER_COUNTRY {self.country!r} must be a two-letter ISO code")
        if not 0 <= self.payment_days <= 365:
            raise ValueError("SILVERFLOW_PAYMENT_DAYS must be between 0 and 365")

    @staticmethod
    def from_env() -> BillingConfig:
        """``SILVERFLOW_SELLER_NAME``, ``…_STREET``, ``…_POSTAL_CODE``, ``…_CITY``, ``…_COUNTRY``, ``…_PHONE``,
        ``…_EMAIL``, ``…_VAT_ID``, ``…_IBAN``, ``…_BIC``, ``…_BANK``; ``SILVERFLOW_PAYMENT_DAYS``."""
        defaults = BillingConfig()
        env = os.environ

        def get(name: str, default: str) -> str:
            return env.get(f"SILVERFLOW_SELLER_{name}", "").strip() or default

        directory = env.get("SILVERFLOW_DOCUMENTS_DIR")
        days = env.get("SILVERFLOW_PAYMENT_DAYS", "").strip()
        if days and not days.isdigit():
            raise ValueError(f"SILVERFLOW_PAYMENT_DAYS {days!r} must be a whole number of days")
        return BillingConfig(
            name=get("NAME", defaults.name), street=get("STREET", defaults.street),
            postal_code=get("POSTAL_CODE", defaults.postal_code), city=get("CITY", defaults.city),
            country=get("COUNTRY", defaults.country).upper(), phone=get("PHONE", defaults.phone),
            email=get("EMAIL", defaults.email), vat_id=get("VAT_ID", defaults.vat_id),
            iban=get("IBAN", defaults.iban).replace(" ", "").upper(), bic=get("BIC", defaults.bic),
            bank=get("BANK", defaults.bank),
            payment_days=int(days) if days else defaults.payment_days,
            documents_dir=Path(directory) if directory else None)

    def sender(self) -> Sender:
        return Sender(name=self.name, street=self.street, city=f"{self.postal_code} {self.city}", phone=self.phone,
                      email=self.email, vat_id=self.vat_id, iban=self.iban, bic=self.bic, bank=self.bank)


class InvoiceParams(BaseModel):
    order_id: int | None = Field(default=None, description="bill this delivered order")
    account_id: int | None = Field(default=None, description="with period: the account's recurring services")
    period: str | None = Field(default=None, description="billing month YYYY-MM")
    e_invoice: bool = True
    issue_date: date | None = Field(default=None, description="default: today")
    payment_days: int | None = Field(default=None, ge=0, le=365)

    @model_validator(mode="after")
    def _one_source(self) -> InvoiceParams:
        if self.order_id is not None and (self.account_id is not None or self.period is not None):
            raise ValueError("give either order_id or account_id with period, not both")
        if self.order_id is None and (self.account_id is None or self.period is None):
            raise ValueError("give order_id, or account_id together with period (YYYY-MM)")
        return self


class InvoiceResult(BaseModel):
    invoiceId: int
    number: str
    gross: Decimal
    dueDate: date
    documentId: int
    fileName: str


class InvoiceFiles(InvoiceResult):
    """``billing.invoice``'s result with the path of the PDF (carrying the e-invoice XML) for the mail."""

    path: str


class AccountsDueParams(BaseModel):
    period: str = Field(description="billing month YYYY-MM")


class AccountToBill(BaseModel):
    account_id: int
    contact_id: int | None


class AccountsDueResult(BaseModel):
    period: str
    accounts: list[AccountToBill]


class PaymentParams(BaseModel):
    invoice_id: int
    paid_at: datetime | None = Field(default=None, description="default: now")


class PaymentResult(BaseModel):
    invoiceId: int
    number: str
    status: str
    paidAt: datetime


class ReminderParams(BaseModel):
    invoice_id: int
    level: int = Field(ge=1, le=2)
    fee: Decimal | None = Field(default=None, ge=0, le=1000, description="default: 0 for level 1, 5.00 for 2")
    on: date | None = Field(default=None, description="the reminder's date, default: today")


class ReminderResult(BaseModel):
    invoiceId: int
    number: str
    level: int
    fee: Decimal
    amountDue: Decimal
    documentId: int
    fileName: str


class ReminderFiles(ReminderResult):
    """``billing.reminder``'s result with the path of the reminder letter, for the mail that sends it."""

    path: str


def _job_marker(operator: str, context: ConnectorContext) -> str:
    """What ``uploaded_by`` records for the job (the column holds 200 characters: long keys are hashed)."""
    marker = f"{operator}:{context.idempotency_key}"
    if len(marker) <= 200:
        return marker
    return f"{operator}:sha256:{hashlib.sha256(context.idempotency_key.encode()).hexdigest()}"


def _business(exc: DomainError) -> BusinessError:
    return BusinessError("Invalid", exc.message, {"field": exc.field})


def _period_text(year: int, month: int) -> str:
    return f"{MONTHS[month - 1]} {year}"


class Billing:
    def __init__(self, engine: sa.engine.Engine, config: BillingConfig) -> None:
        self.engine = engine
        self.config = config
        self.store = DocumentStore(config.documents_dir)

    # --- billing.invoice ---------------------------------------------------------------------------------

    def invoice(self, params: InvoiceParams, context: ConnectorContext) -> InvoiceResult:
        """Create, render and file an invoice for a delivered order or an account's billing month."""
        marker = _job_marker("billing.invoice", context)
        issue = params.issue_date or datetime.now(UTC).date()
        payment_days = self.config.payment_days if params.payment_days is None else params.payment_days
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            try:
                period: tuple[int, int] | None = None
                if params.order_id is not None:
                    row = conn.execute(sa.select(order).where(order.c.id == params.order_id)
                                       .with_for_update()).one_or_none()
                    if row is None:
                        raise BusinessError("NotFound", f"order {params.order_id} does not exist",
                                            {"orderId": params.order_id})
                    done = self._done(conn, marker)
                    if done is not None:
                        return done
                    self._check_billable_order(conn, row)
                    invoice_id = crm_invoices.create_invoice_from_order(conn, int(row.id), issue, payment_days, now)
                else:
                    assert params.account_id is not None and params.period is not None  # the validator says so
                    period = recurring.parse_period(params.period)
                    row = conn.execute(sa.select(account.c.id).where(account.c.id == params.account_id)
                                       .with_for_update()).one_or_none()
                    if row is None:
                        raise BusinessError("NotFound", f"account {params.account_id} does not exist",
                                            {"accountId": params.account_id})
                    done = self._done(conn, marker)
                    if done is not None:
                        return done
                    moment = datetime.combine(issue, now.timetz())
                    created = recurring.bill_period(conn, int(row.id), *period, moment, payment_days)
                    if created is None:
                        raise BusinessError("NothingToBill", f"account {params.account_id} has nothing (left) to "
                                            f"bill for {params.period}", {"accountId": params.account_id})
                    invoice_id = created
                inv = crm_invoices.get_invoice(conn, invoice_id)
                pdf = self.invoice_pdf(conn, inv, params.e_invoice, period)
                file_name = f"Rechnung_{inv.number}.pdf"
                links = DocumentLinks(account_id=int(inv.account_id), order_id=inv.order_id, invoice_id=invoice_id)
                document_id = self.store.store(conn, pdf, file_name, "application/pdf", links, marker, now)
            except DomainError as exc:
                raise _business(exc) from None
        return InvoiceResult(invoiceId=invoice_id, number=str(inv.number), gross=inv.gross, dueDate=inv.due_date,
                             documentId=document_id, fileName=file_name)

    def _done(self, conn: Connection, marker: str) -> InvoiceResult | None:
        """The invoice a job with this idempotency key already created, if it did."""
        row = conn.execute(
            sa.select(document.c.id, document.c.file_name, invoice.c.id.label("invoice_id"), invoice.c.number,
                      invoice.c.gross, invoice.c.due_date)
            .join(invoice, invoice.c.id == document.c.invoice_id)
            .where(document.c.uploaded_by == marker)
            .order_by(document.c.id.desc())
        ).first()
        if row is None:
            return None
        return InvoiceResult(invoiceId=row.invoice_id, number=row.number, gross=row.gross, dueDate=row.due_date,
                             documentId=row.id, fileName=row.file_name)

    @staticmethod
    def _check_billable_order(conn: Connection, row: sa.Row[tuple[object, ...]]) -> None:
        """Delivered (or in production with every sub-order done) and not invoiced yet."""
        if row.status == "cancelled":
            raise BusinessError("OrderCancelled", f"order {row.number} is cancelled", {"orderId": row.id})
        pending = conn.execute(sa.select(sa.func.count()).select_from(sub_order).where(
            sub_order.c.order_id == row.id, sub_order.c.status.not_in(("done", "cancelled")))).scalar_one()
        if not (row.status == "delivered" or (row.status == "in_production" and pending == 0)):
            raise BusinessError("NotDelivered", f"order {row.number} is {row.status}: only delivered orders are "
                                "billed", {"orderId": row.id})
        billed = conn.execute(sa.select(invoice.c.number).where(invoice.c.order_id == row.id,
                                                                 invoice.c.status != "cancelled")).first()
        if billed is not None:
            raise BusinessError("AlreadyInvoiced", f"order {row.number} is billed by invoice {billed.number}",
                                {"orderId": row.id, "number": billed.number})

    def invoice_with_files(self, params: InvoiceParams, context: ConnectorContext) -> InvoiceFiles:
        """``billing.invoice``: the invoice as ``invoice`` makes it, plus the path of its PDF, so the mail can
        attach it (the Factur-X PDF carries the EN 16931 XML; no second file is needed)."""
        result = self.invoice(params, context)
        with self.engine.connect() as conn:
            path = self._path_of(conn, result.documentId)
        return InvoiceFiles(**result.model_dump(), path=path)

    def _path_of(self, conn: Connection, document_id: int) -> str:
        sha256 = conn.execute(sa.select(document.c.sha256).where(document.c.id == document_id)).scalar_one()
        return str(self.store.path_of(str(sha256)))

    # --- billing.accounts_due ------------------------------------------------------------------------------

    def accounts_due(self, params: AccountsDueParams, context: ConnectorContext) -> AccountsDueResult:
        """The monthly run's work list: accounts with recurring services still unbilled for the month, each
        with the contact who receives the invoice (None: no contact with an e-mail address)."""
        with self.engine.connect() as conn:
            try:
                year, month = recurring.parse_period(params.period)
                due = [AccountToBill(account_id=account_id, contact_id=crm_invoices.correspondence_contact(
                    conn, account_id)) for account_id in recurring.accounts_with_open_lines(conn, year, month)]
            except DomainError as exc:
                raise _business(exc) from None
        return AccountsDueResult(period=f"{year:04d}-{month:02d}", accounts=due)

    # --- documents -----------------------------------------------------------------------------------------

    def _recipient(self, conn: Connection, account_id: int) -> tuple[sa.Row[tuple[object, ...]],
                                                                     sa.Row[tuple[object, ...]] | None]:
        """The account and its billing address (else any address it has)."""
        acc = conn.execute(sa.select(account).where(account.c.id == account_id)).one()
        addr = conn.execute(
            sa.select(address).where(address.c.account_id == account_id)
            .order_by(sa.case((address.c.kind == "billing", 0), else_=1), address.c.id)
        ).first()
        return acc, addr

    def _document_params(self, conn: Connection, inv: sa.Row[tuple[object, ...]], lines: list[dict[str, Any]],
                         **extra: Any) -> DocumentParams:
        acc, addr = self._recipient(conn, int(inv.account_id))
        city = "" if addr is None else f"{addr.postal_code} {addr.city}"
        if addr is not None and addr.country != "DE":
            city = f"{city}, {addr.country}"
        recipient = Address(name=display_name(str(acc.name), acc.legal_form),
                            street="" if addr is None else str(addr.street), city=city)
        values: dict[str, Any] = {
            "kind": "invoice", "number": inv.number, "date": inv.issue_date, "customer_number": acc.number,
            "recipient": recipient, "positions": positions_of(lines, crm_positions.periods_of(conn, lines)),
            "payment_days": (inv.due_date - inv.issue_date).days,
            "sender": self.config.sender(),
        }
        values.update(extra)
        return DocumentParams(**values)

    def invoice_pdf(self, conn: Connection, inv: sa.Row[tuple[object, ...]], e_invoice: bool,
                    period: tuple[int, int] | None) -> bytes:
        """The invoice PDF; with ``e_invoice`` a Factur-X PDF carrying the EN 16931 XML."""
        lines = crm_positions.read(conn, invoice_position, "invoice_id", int(inv.id))
        delivered_on = self._delivered_on(conn, inv.order_id)
        intro = f"für unsere Leistungen berechnen wir Ihnen (fällig am {inv.due_date:%d.%m.%Y}):"
        if delivered_on is not None:
            intro = f"für unsere am {delivered_on:%d.%m.%Y} erbrachten Lieferungen und Leistungen berechnen wir " \
                    f"Ihnen (fällig am {inv.due_date:%d.%m.%Y}):"
        if period is not None:
            intro = f"für den Abrechnungszeitraum {_period_text(*period)} berechnen wir Ihnen " \
                    f"(fällig am {inv.due_date:%d.%m.%Y}):"
        params = self._document_params(conn, inv, lines, intro=intro)
        net, vat, gross = totals(params.positions)
        if (net, gross) != (inv.net, inv.gross) or sum(vat.values(), Decimal(0)) != inv.vat:
            raise RuntimeError(f"PDF totals {net}/{gross} differ from invoice {inv.number} ({inv.net}/{inv.gross})")
        pdf = render_pdf(params)
        if not e_invoice:
            return pdf
        xml = self.cii_xml(conn, inv, lines, period, delivered_on)
        metadata = {"author": self.config.name, "keywords": "Factur-X, ZUGFeRD, Rechnung",
                    "title": f"{self.config.name}: Rechnung {inv.number}",
                    "subject": f"Rechnung {inv.number} vom {inv.issue_date:%d.%m.%Y}"}
        result: bytes = facturx.generate_from_binary(pdf, xml, flavor="factur-x", level="en16931", check_xsd=True,
                                                     pdf_metadata=metadata, lang="de-DE")
        return result

    @staticmethod
    def _delivered_on(conn: Connection, order_id: Any) -> date | None:
        """The delivery date of a billed order: the date of supply an invoice must state (§ 14 UStG)."""
        if order_id is None:
            return None
        delivered_at = conn.execute(sa.select(order.c.delivered_at).where(order.c.id == order_id)).scalar_one()
        return None if delivered_at is None else delivered_at.date()

    def cii_xml(self, conn: Connection, inv: sa.Row[tuple[object, ...]], lines: list[dict[str, Any]],
                period: tuple[int, int] | None, delivered_on: date | None = None) -> bytes:
        """EN 16931 CII XML of the invoice, from the same stored positions and totals as the PDF."""
        acc, addr = self._recipient(conn, int(inv.account_id))
        codes = dict(conn.execute(sa.select(product.c.id, product.c.code).where(
            product.c.id.in_({line["product_id"] for line in lines if line["product_id"] is not None}))).all())
        cfg = self.config
        doc = Document()
        doc.context.guideline_parameter.id = EN16931
        doc.header.id = inv.number
        doc.header.type_code = "380"  # commercial invoice
        doc.header.issue_date_time = inv.issue_date

        seller = doc.trade.agreement.seller
        seller.name = cfg.name
        seller.address.postcode = cfg.postal_code
        seller.address.line_one = cfg.street
        seller.address.city_name = cfg.city
        seller.address.country_id = cfg.country
        seller.electronic_address.uri_ID = ("EM", cfg.email)
        seller.tax_registrations.add(TaxRegistration(id=("VA", cfg.vat_id)))

        buyer = doc.trade.agreement.buyer
        buyer.id = acc.number
        buyer.name = acc.name
        buyer.address.country_id = "DE" if addr is None else addr.country
        if addr is not None:
            buyer.address.postcode = addr.postal_code
            buyer.address.line_one = addr.street
            buyer.address.city_name = addr.city
        if acc.vat_id:
            buyer.tax_registrations.add(TaxRegistration(id=("VA", acc.vat_id)))

        if delivered_on is not None:
            doc.trade.delivery.event.occurrence = delivered_on

        settlement = doc.trade.settlement
        settlement.payment_reference = inv.number
        settlement.currency_code = "EUR"
        means = PaymentMeans()
        means.type_code = SEPA_CREDIT_TRANSFER
        means.information.add("SEPA-Überweisung")
        means.payee_account.iban = cfg.iban
        means.payee_account.account_name = cfg.name
        means.payee_institution.bic = cfg.bic
        settlement.payment_means.add(means)
        if period is not None:
            first, last = recurring.month_bounds(*period)
            settlement.period.start = first
            settlement.period.end = last
        terms = PaymentTerms()
        terms.description = f"Zahlbar bis {inv.due_date:%d.%m.%Y} ohne Abzug"
        terms.due = inv.due_date
        settlement.terms.add(terms)

        net_by_rate: dict[Decimal, Decimal] = {}
        for line in lines:
            rate = Decimal(line["vat_rate"]).quantize(CENT)
            net_by_rate[rate] = net_by_rate.get(rate, Decimal(0)) + line["total"]
            doc.trade.items.add(_line_item(line, rate, codes.get(line["product_id"])))
        vat_by_rate = crm_positions.totals_of(lines).vat_by_rate
        for rate, basis in sorted(net_by_rate.items()):
            tax = ApplicableTradeTax()
            tax.calculated_amount = vat_by_rate[rate]
            tax.type_code = "VAT"
            tax.basis_amount = basis
            tax.category_code = _category(rate)
            tax.rate_applicable_percent = rate
            settlement.trade_tax.add(tax)
        summation = settlement.monetary_summation
        summation.line_total = inv.net
        summation.charge_total = Decimal("0.00")
        summation.allowance_total = Decimal("0.00")
        summation.tax_basis_total = (inv.net, None)
        summation.tax_total = (inv.vat, "EUR")
        summation.grand_total = (inv.gross, None)
        summation.due_amount = inv.gross
        xml: bytes = doc.serialize(schema="FACTUR-X_EN16931")
        return xml

    # --- billing.payment -------------------------------------------------------------------------------------

    def payment(self, params: PaymentParams, context: ConnectorContext) -> PaymentResult:
        """Record that an open invoice was paid."""
        paid_at = params.paid_at or datetime.now(UTC)
        if paid_at.tzinfo is None:
            paid_at = paid_at.replace(tzinfo=UTC)
        with self.engine.begin() as conn:
            inv = self._open_invoice(conn, params.invoice_id)
            try:
                crm_invoices.mark_paid(conn, params.invoice_id, now=paid_at)
            except DomainError as exc:
                raise _business(exc) from None
        return PaymentResult(invoiceId=params.invoice_id, number=str(inv.number), status="paid", paidAt=paid_at)

    def _open_invoice(self, conn: Connection, invoice_id: int) -> sa.Row[tuple[object, ...]]:
        """The invoice row, locked; unknown, paid and cancelled invoices are business errors."""
        inv = conn.execute(sa.select(invoice).where(invoice.c.id == invoice_id).with_for_update()).one_or_none()
        if inv is None:
            raise BusinessError("NotFound", f"invoice {invoice_id} does not exist", {"invoiceId": invoice_id})
        if inv.status == "paid":
            raise BusinessError("AlreadyPaid", f"invoice {inv.number} is already paid", {"invoiceId": invoice_id})
        if inv.status == "cancelled":
            raise BusinessError("InvoiceCancelled", f"invoice {inv.number} is cancelled", {"invoiceId": invoice_id})
        return inv

    # --- billing.reminder ------------------------------------------------------------------------------------

    def reminder(self, params: ReminderParams, context: ConnectorContext) -> ReminderResult:
        """Count a reminder of an overdue invoice and file the reminder letter (PDF) on the account."""
        marker = _job_marker("billing.reminder", context)
        today = params.on or datetime.now(UTC).date()
        fee = to_cents(DEFAULT_REMINDER_FEES[params.level] if params.fee is None else params.fee)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(invoice.c.id).where(invoice.c.id == params.invoice_id)
                                  .with_for_update()).first()
            if exists is None:
                raise BusinessError("NotFound", f"invoice {params.invoice_id} does not exist",
                                    {"invoiceId": params.invoice_id})
            done = conn.execute(sa.select(document.c.id, document.c.file_name).where(
                document.c.uploaded_by == marker, document.c.invoice_id == params.invoice_id)).first()
            inv = self._open_invoice(conn, params.invoice_id) if done is None else \
                crm_invoices.get_invoice(conn, params.invoice_id)
            if done is not None:  # a retried job: the reminder is counted and filed already
                return ReminderResult(invoiceId=params.invoice_id, number=str(inv.number), level=params.level,
                                      fee=fee, amountDue=inv.gross + fee, documentId=done.id,
                                      fileName=done.file_name)
            expected = int(inv.reminders_sent) + 1
            if params.level != expected:
                raise BusinessError("ReminderLevel", f"invoice {inv.number} had {inv.reminders_sent} reminder(s): "
                                    f"the next one is level {expected}, not {params.level}",
                                    {"invoiceId": params.invoice_id, "expectedLevel": expected})
            try:
                crm_invoices.record_reminder(conn, params.invoice_id, today)
            except DomainError as exc:
                code = "NotOverdue" if exc.field in ("due_date", "last_reminder_on") else "Invalid"
                raise BusinessError(code, exc.message, {"field": exc.field}) from None
            lines = crm_positions.read(conn, invoice_position, "invoice_id", params.invoice_id)
            if params.level == 1:
                intro = (f"sicher haben Sie übersehen, dass unsere Rechnung {inv.number} vom "
                         f"{inv.issue_date:%d.%m.%Y} über {money(inv.gross)} am {inv.due_date:%d.%m.%Y} "
                         "fällig war. Bitte überweisen Sie den offenen Betrag.")
            else:
                intro = (f"<b>{params.level}. Mahnung</b>: trotz unserer Zahlungserinnerung vom "
                         f"{inv.last_reminder_on:%d.%m.%Y} ist unsere Rechnung {inv.number} vom "
                         f"{inv.issue_date:%d.%m.%Y} über {money(inv.gross)} noch offen. "
                         f"Wir berechnen eine Mahngebühr von {money(fee)}.")
            params_pdf = self._document_params(conn, inv, lines, kind="reminder", date=today, fee=fee, intro=intro,
                                               payment_days=REMINDER_PAYMENT_DAYS)
            pdf = render_pdf(params_pdf)
            file_name = f"{'Zahlungserinnerung' if params.level == 1 else 'Mahnung'}_{inv.number}_{params.level}.pdf"
            links = DocumentLinks(account_id=int(inv.account_id), invoice_id=params.invoice_id)
            document_id = self.store.store(conn, pdf, file_name, "application/pdf", links, marker, now)
        return ReminderResult(invoiceId=params.invoice_id, number=str(inv.number), level=params.level, fee=fee,
                              amountDue=inv.gross + fee, documentId=document_id, fileName=file_name)


    def reminder_with_files(self, params: ReminderParams, context: ConnectorContext) -> ReminderFiles:
        """``billing.reminder``: the reminder as ``reminder`` files it, plus the letter's path for the mail."""
        result = self.reminder(params, context)
        with self.engine.connect() as conn:
            path = self._path_of(conn, result.documentId)
        return ReminderFiles(**result.model_dump(), path=path)


def _category(rate: Decimal) -> str:
    """UNCL 5305: S = standard (and reduced) rate, Z = zero rated."""
    return "S" if rate > 0 else "Z"


def _line_item(line: dict[str, Any], rate: Decimal, code: str | None) -> LineItem:
    item = LineItem()
    item.document.line_id = str(line["line_no"])
    if code:
        item.product.seller_assigned_id = code
    item.product.name = line["description"]
    item.agreement.net.amount = line["unit_price"]
    item.delivery.billed_quantity = (line["quantity"], UNIT_PIECE)
    item.settlement.trade_tax.type_code = "VAT"
    item.settlement.trade_tax.category_code = _category(rate)
    item.settlement.trade_tax.rate_applicable_percent = rate
    undiscounted = to_cents(line["quantity"] * line["unit_price"])
    if undiscounted != line["total"]:
        allowance = TradeAllowanceCharge()
        allowance.indicator = False
        if line["discount_percent"]:
            allowance.calculation_percent = line["discount_percent"]
            allowance.basis_amount = undiscounted
        allowance.actual_amount = undiscounted - line["total"]
        allowance.reason = "Rabatt"
        item.settlement.allowance_charge.add(allowance)
    item.settlement.monetary_summation.total_amount = line["total"]
    return item


def register(registry: Registry, engine: sa.engine.Engine, config: BillingConfig | None = None) -> None:
    billing = Billing(engine, config or BillingConfig.from_env())
    registry.register("billing.invoice", billing.invoice_with_files, InvoiceParams, InvoiceFiles)
    registry.register("billing.payment", billing.payment, PaymentParams, PaymentResult)
    registry.register("billing.reminder", billing.reminder_with_files, ReminderParams, ReminderFiles)
    registry.register("billing.accounts_due", billing.accounts_due, AccountsDueParams, AccountsDueResult)

