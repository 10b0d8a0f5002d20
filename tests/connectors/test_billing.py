"""Billing connector on migrated SQLite and PostgreSQL databases: invoice PDFs with an embedded EN 16931
e-invoice that agrees with the CRM, idempotent retries, recurring months, payments and reminders."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import facturx
import pypdf
import pytest
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.engine import Engine

from connectors import billing
from connectors.registry import BusinessError, ConnectorContext, InvalidParameters, Registry
from crm import booked_services as services
from crm import invoices, orders, quotes
from crm.accounts import add_address, create_account
from crm.documents import DocumentStore, documents_of
from crm.positions import PositionInput
from crm.pricing import PriceLine, compute_totals
from crm.products import ProductInput, create_product
from crm.schema import invoice, invoice_position
from engine.database import create_db_engine

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"}


def ctx(key: str) -> ConnectorContext:
    return ConnectorContext(key, "instance-1", "bill", "K-1")


@dataclass
class World:
    engine: Engine
    registry: Registry
    store: DocumentStore
    config: billing.BillingConfig
    account_id: int
    products: dict[str, int]

    def run(self, operator: str, params: dict[str, Any], key: str) -> dict[str, Any]:
        result: dict[str, Any] = self.registry.run(operator, params, ctx(key))
        return result

    def delivered_order(self) -> int:
        """Quote → order → production → every sub-order done: a delivered order."""
        p = self.products
        with self.engine.begin() as conn:
            quote_id = quotes.create_quote(conn, self.account_id, [
                PositionInput(D("1"), p["ADSL50"]),
                PositionInput(D("2"), p["MODEM"], discount_percent=D("10")),
                PositionInput(D("1"), p["SETUP"], discount_amount=D("20.00")),
                PositionInput(D("3"), p["BOOK"]),
            ], date(2026, 4, 1), now=NOW)
            quotes.send_quote(conn, quote_id, now=NOW)
            quotes.accept_quote(conn, quote_id, now=NOW)
            order_id = orders.create_order_from_quote(conn, quote_id, now=NOW)
            orders.start_production(conn, order_id)
            for sub in orders.sub_orders(conn, order_id):
                orders.set_sub_order_status(conn, sub["id"], "in_progress")
                orders.set_sub_order_status(conn, sub["id"], "done", now=NOW)
            assert orders.get_order(conn, order_id).status == "delivered"
            for service_id in services.book_order_services(conn, order_id, now=NOW):  # as production does
                services.activate_service(conn, service_id, date(2026, 3, 1))  # the first month in full
        return order_id

    def pdf(self, document_id: int) -> bytes:
        with self.engine.connect() as conn:
            return self.store.read(conn, document_id)[1]

    def count_invoices(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(invoice)).scalar_one())


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    engine = create_db_engine(db_url)
    config = billing.BillingConfig(documents_dir=tmp_path / "documents")
    registry = Registry()
    billing.register(registry, engine, config)
    with engine.begin() as conn:
        account_id = create_account(conn, "Müller Datentechnik GmbH", legal_form="GmbH", vat_id="DE987654321",
                                    now=NOW)
        add_address(conn, account_id, "installation", "Serverweg 9", "80331", "München")
        add_address(conn, account_id, "billing", "Hauptstraße 5", "80331", "München")
        items = [
            ProductInput("ADSL50", "ADSL 50", "access", "recurring_monthly", D("39.90"), provisioning_steps=("ip",)),
            ProductInput("MODEM", "Modem FritzBox", "hardware", "hardware", D("149.00"),
                         provisioning_steps=("hardware",)),
            ProductInput("SETUP", "Einrichtung", "access", "setup_fee", D("99.00")),
            ProductInput("BOOK", "Handbuch", "hardware", "hardware", D("10.00"), vat_rate=D("7.00")),
        ]
        products = {item.code: create_product(conn, item) for item in items}
    yield World(engine, registry, DocumentStore(config.documents_dir), config, account_id, products)
    engine.dispose()


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _xml(pdf: bytes) -> etree._Element:
    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml", "no valid Factur-X XML in the PDF"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    return etree.fromstring(xml)


def _one(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path}: {found}"
    return str(found[0].text if hasattr(found[0], "text") else found[0])


def _crm_invoice(world: World, invoice_id: int) -> tuple[Any, list[Any]]:
    with world.engine.connect() as conn:
        row = invoices.get_invoice(conn, invoice_id)
        lines = list(conn.execute(sa.select(invoice_position).where(invoice_position.c.invoice_id == invoice_id)
                                  .order_by(invoice_position.c.line_no)))
    return row, lines


def test_invoice_from_an_order_carries_a_matching_en16931_e_invoice(world: World) -> None:
    order_id = world.delivered_order()
    result = world.run("billing.invoice", {"order_id": order_id, "issue_date": "2026-03-10"}, "job-1")
    assert result["number"] == "R-2026-00001" and result["fileName"] == "Rechnung_R-2026-00001.pdf"
    assert result["gross"] == "492.75" and result["dueDate"] == "2026-03-24"
    row, lines = _crm_invoice(world, result["invoiceId"])
    assert (row.net, row.vat, row.gross, row.order_id) == (D("417.10"), D("75.65"), D("492.75"), order_id)

    pdf = world.pdf(result["documentId"])
    text = _text(pdf)
    for expected in ("Rechnung R-2026-00001", "492,75 €", "417,10 €", "73,55 €", "2,10 €", "Müller Datentechnik",
                     "Hauptstraße 5", "80331 München", "Rabatt auf Pos. 3", "24.03.2026", "am 02.03.2026 erbrachten",
                     "GiroCode"):
        assert expected in text, expected

    root = _xml(pdf)
    assert _one(root, "//rsm:ExchangedDocument/ram:ID") == "R-2026-00001"
    assert _one(root, "//rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert _one(root, "//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString") == "20260310"
    assert _one(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == "urn:cen.eu:en16931:2017"
    seller, buyer = "//ram:SellerTradeParty", "//ram:BuyerTradeParty"
    assert _one(root, f"{seller}/ram:Name") == "Silverflow Net GmbH"
    assert _one(root, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID") == "DE123456789"
    assert _one(root, f"{buyer}/ram:Name") == "Müller Datentechnik GmbH"
    assert _one(root, f"{buyer}/ram:PostalTradeAddress/ram:LineOne") == "Hauptstraße 5"  # the billing address
    assert _one(root, f"{buyer}/ram:SpecifiedTaxRegistration/ram:ID") == "DE987654321"
    # lines: same count, quantities, net prices and totals as the CRM's positions, VAT category S with rate
    items = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    assert len(items) == len(lines) == 4
    for item, line in zip(items, lines, strict=True):
        assert D(_one(item, ".//ram:LineTotalAmount")) == line.total
        assert D(_one(item, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount")) == line.unit_price
        assert D(_one(item, ".//ram:BilledQuantity")) == line.quantity
        assert _one(item, ".//ram:ApplicableTradeTax/ram:CategoryCode") == "S"
        assert D(_one(item, ".//ram:ApplicableTradeTax/ram:RateApplicablePercent")) == line.vat_rate
    assert D(_one(items[1], ".//ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount")) == D("29.80")
    # VAT per rate as the CRM's pricing computes it
    crm_totals = compute_totals(PriceLine(line.quantity, line.unit_price, line.vat_rate, line.discount_percent,
                                          line.discount_amount) for line in lines)
    taxes = {D(_one(t, "ram:RateApplicablePercent")): (D(_one(t, "ram:BasisAmount")),
                                                       D(_one(t, "ram:CalculatedAmount")))
             for t in root.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS)}
    assert {rate: vat for rate, (_, vat) in taxes.items()} == crm_totals.vat_by_rate
    assert taxes == {D("19"): (D("387.10"), D("73.55")), D("7"): (D("30.00"), D("2.10"))}
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert D(_one(root, f"{summation}/ram:LineTotalAmount")) == row.net
    assert D(_one(root, f"{summation}/ram:TaxBasisTotalAmount")) == row.net
    assert D(_one(root, f"{summation}/ram:TaxTotalAmount")) == row.vat
    assert D(_one(root, f"{summation}/ram:GrandTotalAmount")) == row.gross
    assert D(_one(root, f"{summation}/ram:DuePayableAmount")) == row.gross
    means = "//ram:SpecifiedTradeSettlementPaymentMeans"
    assert _one(root, f"{means}/ram:TypeCode") == "58"
    assert _one(root, f"{means}/ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == world.config.iban
    assert _one(root, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString") == "20260324"
    delivery = "//ram:ApplicableHeaderTradeDelivery/ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime"
    assert _one(root, f"{delivery}/udt:DateTimeString") == "20260302"  # the order's delivery date

    with world.engine.connect() as conn:
        (doc,) = documents_of(conn, world.account_id)
    assert (doc.invoice_id, doc.order_id, doc.mime_type) == (result["invoiceId"], order_id, "application/pdf")


def test_a_retried_job_gets_its_invoice_back_and_numbers_stay_gap_free(world: World) -> None:
    first_order, second_order, third_order = (world.delivered_order() for _ in range(3))
    first = world.run("billing.invoice", {"order_id": first_order}, "job-a")
    assert world.run("billing.invoice", {"order_id": first_order}, "job-a") == first
    assert world.count_invoices() == 1
    with pytest.raises(BusinessError) as err:  # another job must not bill the order twice
        world.run("billing.invoice", {"order_id": first_order}, "job-b")
    assert err.value.code == "AlreadyInvoiced"
    # two copies of one job at the same time (a stale lock): one invoice, both get it
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        try:
            results.append(world.run("billing.invoice", {"order_id": second_order}, "job-c"))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results[0] == results[1]
    third = world.run("billing.invoice", {"order_id": third_order}, "job-d")
    assert [first["number"], results[0]["number"], third["number"]] == [
        "R-2026-00001", "R-2026-00002", "R-2026-00003"]
    assert world.count_invoices() == 3


def test_recurring_month_invoice(world: World) -> None:
    with world.engine.begin() as conn:
        service_id = services.book_service(conn, world.account_id, world.products["ADSL50"], now=NOW)
        services.activate_service(conn, service_id, date(2026, 4, 16))
    result = world.run("billing.invoice", {"account_id": world.account_id, "period": "2026-04",
                                           "issue_date": "2026-05-01"}, "month-1")
    assert (result["number"], result["gross"], result["dueDate"]) == ("R-2026-00001", "23.74", "2026-05-15")
    assert world.run("billing.invoice", {"account_id": world.account_id, "period": "2026-04"}, "month-1") == result
    with pytest.raises(BusinessError) as err:
        world.run("billing.invoice", {"account_id": world.account_id, "period": "2026-04"}, "month-2")
    assert err.value.code == "NothingToBill"
    pdf = world.pdf(result["documentId"])
    text = _text(pdf)
    assert "R-2026-00001" in text and "23,74 €" in text and "April 2026" in text and "15/30 Tage" in text
    root = _xml(pdf)
    assert _one(root, "//ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString") == "20260401"
    assert _one(root, "//ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString") == "20260430"
    assert D(_one(root, "//ram:IncludedSupplyChainTradeLineItem//ram:LineTotalAmount")) == D("19.95")
    assert D(_one(root, "//ram:GrandTotalAmount")) == D("23.74")


def test_without_e_invoice_the_pdf_has_no_xml(world: World) -> None:
    result = world.run("billing.invoice", {"order_id": world.delivered_order(), "e_invoice": False}, "plain")
    pdf = world.pdf(result["documentId"])
    assert facturx.get_xml_from_pdf(pdf, check_xsd=False) == (False, False)
    assert result["number"] in _text(pdf)


def test_payment_and_reminders(world: World) -> None:
    result = world.run("billing.invoice", {"order_id": world.delivered_order(), "issue_date": "2026-03-01"}, "inv")
    invoice_id = result["invoiceId"]  # due 2026-03-15
    with pytest.raises(BusinessError) as err:
        world.run("billing.reminder", {"invoice_id": invoice_id, "level": 1, "on": "2026-03-15"}, "r0")
    assert err.value.code == "NotOverdue"
    first = world.run("billing.reminder", {"invoice_id": invoice_id, "level": 1, "on": "2026-03-16"}, "r1")
    assert (first["level"], first["fee"], first["amountDue"]) == (1, "0.00", "492.75")
    assert first["fileName"] == "Zahlungserinnerung_R-2026-00001_1.pdf"
    assert world.run("billing.reminder", {"invoice_id": invoice_id, "level": 1, "on": "2026-03-16"}, "r1") == first
    text = _text(world.pdf(first["documentId"]))
    assert "Zahlungserinnerung R-2026-00001" in text and "15.03.2026" in text and "492,75 €" in text
    with pytest.raises(BusinessError) as err:
        world.run("billing.reminder", {"invoice_id": invoice_id, "level": 1, "on": "2026-04-01"}, "r1-again")
    assert err.value.code == "ReminderLevel"
    with pytest.raises(BusinessError) as err:
        world.run("billing.reminder", {"invoice_id": invoice_id, "level": 2, "on": "2026-03-20"}, "r2-early")
    assert err.value.code == "NotOverdue"
    second = world.run("billing.reminder", {"invoice_id": invoice_id, "level": 2, "on": "2026-03-30"}, "r2")
    assert (second["fee"], second["amountDue"], second["fileName"]) == (
        "5.00", "497.75", "Mahnung_R-2026-00001_2.pdf")
    text = _text(world.pdf(second["documentId"]))
    assert "2. Mahnung" in text and "Mahngebühr" in text and "5,00 €" in text and "497,75 €" in text
    with world.engine.connect() as conn:
        row = invoices.get_invoice(conn, invoice_id)
        assert (row.reminders_sent, row.last_reminder_on) == (2, date(2026, 3, 30))
        assert len(documents_of(conn, world.account_id)) == 3

    paid = world.run("billing.payment", {"invoice_id": invoice_id, "paid_at": "2026-04-02T10:00:00+02:00"}, "p1")
    assert paid["status"] == "paid" and paid["number"] == "R-2026-00001"
    with world.engine.connect() as conn:
        row = invoices.get_invoice(conn, invoice_id)
    assert row.status == "paid" and row.paid_at == datetime(2026, 4, 2, 8, 0, tzinfo=UTC)
    after_payment: list[tuple[str, dict[str, Any]]] = [
        ("billing.payment", {"invoice_id": invoice_id}),
        ("billing.reminder", {"invoice_id": invoice_id, "level": 2, "on": "2026-05-01"})]
    for operator, params in after_payment:
        with pytest.raises(BusinessError) as err:
            world.run(operator, params, "after-payment")
        assert err.value.code == "AlreadyPaid"


def test_cancelled_invoices_are_neither_paid_nor_reminded(world: World) -> None:
    result = world.run("billing.invoice", {"order_id": world.delivered_order()}, "inv")
    with world.engine.begin() as conn:
        invoices.cancel_invoice(conn, result["invoiceId"])
    with pytest.raises(BusinessError, match="InvoiceCancelled"):
        world.run("billing.payment", {"invoice_id": result["invoiceId"]}, "p")
    with pytest.raises(BusinessError, match="InvoiceCancelled"):
        world.run("billing.reminder", {"invoice_id": result["invoiceId"], "level": 1}, "r")


def test_bad_ids_and_parameters(world: World) -> None:
    not_found: list[tuple[str, dict[str, Any]]] = [
        ("billing.invoice", {"order_id": 999999}),
        ("billing.invoice", {"account_id": 999999, "period": "2026-03"}),
        ("billing.payment", {"invoice_id": 999999}),
        ("billing.reminder", {"invoice_id": 999999, "level": 1}),
    ]
    for operator, params in not_found:
        with pytest.raises(BusinessError) as err:
            world.run(operator, params, "bad")
        assert err.value.code == "NotFound", (operator, params)
        assert "999999" in err.value.message
    with pytest.raises(BusinessError) as err:
        world.run("billing.invoice", {"account_id": world.account_id, "period": "2026-13"}, "bad")
    assert (err.value.code, err.value.data) == ("Invalid", {"field": "period"})
    with world.engine.begin() as conn:  # an order still open: nothing delivered yet
        quote_id = quotes.create_quote(conn, world.account_id, [PositionInput(D("1"), world.products["ADSL50"])],
                                       date(2026, 4, 1), now=NOW)
        quotes.send_quote(conn, quote_id, now=NOW)
        quotes.accept_quote(conn, quote_id, now=NOW)
        open_order = orders.create_order_from_quote(conn, quote_id, now=NOW)
    with pytest.raises(BusinessError) as err:
        world.run("billing.invoice", {"order_id": open_order}, "bad")
    assert err.value.code == "NotDelivered"
    with pytest.raises(InvalidParameters, match="either order_id or account_id"):
        world.run("billing.invoice", {"order_id": open_order, "account_id": world.account_id}, "bad")
    with pytest.raises(InvalidParameters, match="account_id together with period"):
        world.run("billing.invoice", {"account_id": world.account_id}, "bad")
    with pytest.raises(InvalidParameters, match="level"):
        world.run("billing.reminder", {"invoice_id": 1, "level": 3}, "bad")
    assert world.count_invoices() == 0
    assert world.registry.check("billing.invoice", {"order_id", "e_invoice"}) is None
    assert "unknown parameter(s) amount" in str(world.registry.check("billing.payment", {"invoice_id", "amount"}))


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILVERFLOW_SELLER_NAME", "Netz Nord GmbH")
    monkeypatch.setenv("SILVERFLOW_SELLER_IBAN", "de89 3704 0044 0532 0130 00")
    monkeypatch.setenv("SILVERFLOW_SELLER_VAT_ID", "DE111111111")
    config = billing.BillingConfig.from_env()
    assert (config.name, config.iban, config.vat_id, config.bic) == (
        "Netz Nord GmbH", "DE89370400440532013000", "DE111111111", "BYLADEM1001")
    assert config.sender().city == "10115 Berlin"
    monkeypatch.setenv("SILVERFLOW_SELLER_IBAN", "DE89370400440532013001")
    with pytest.raises(ValueError, match="not a valid IBAN"):
        billing.BillingConfig.from_env()
    assert billing.iban_is_valid("DE02120300000000202051")
    monkeypatch.setenv("SILVERFLOW_SELLER_IBAN", "DE02120300000000202051")
    monkeypatch.setenv("SILVERFLOW_PAYMENT_DAYS", "vierzehn")
    with pytest.raises(ValueError, match="SILVERFLOW_PAYMENT_DAYS"):
        billing.BillingConfig.from_env()
    monkeypatch.setenv("SILVERFLOW_PAYMENT_DAYS", "30")
    assert billing.BillingConfig.from_env().payment_days == 30

