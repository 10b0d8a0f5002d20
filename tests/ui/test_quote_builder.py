"""Quote builder, quote page (PDF, send) and product editing: over HTTP with TestClient, and once in Chromium."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from pypdf import PdfReader

from api.app import create_app
from api.settings import Settings
from api.ui.i18n import translations
from api.ui.quote_pages import parse_decimal
from crm import products as crm_products
from crm.accounts import ContactInput, add_address, create_account, create_contact
from crm.errors import DomainError
from crm.products import ProductInput, create_product
from crm.schema import account, document, product, product_step, quote, quote_position
from tests.support.bpmn_builder import Bpmn
from tests.support.live_app import Api

ROOT = Path(__file__).parents[2]
# 2 × 100,00 € − 10 % = 180,00 € (19 %); 3 × 10,00 € = 30,00 € (7 %); 1 × 49,90 € = 49,90 € (19 %)
# net 259,90 €; VAT 19 % on 229,90 € = 43,68 €; VAT 7 % on 30,00 € = 2,10 €; gross 305,68 €
NET, VAT19, VAT7, GROSS = "259,90 €", "43,68 €", "2,10 €", "305,68 €"
# the PDF: einmalig 180,00 + 19 % = 214,20 €; monatlich 49,90 + 19 % = 59,38 €; jährlich 30,00 + 7 % = 32,10 €
PDF_SUMS = ("Gesamt einmalig\n214,20 €", "Gesamt monatlich\n59,38 €", "Gesamt jährlich\n32,10 €")


@dataclass
class Shop:
    account_id: int
    contact_id: int
    router: int  # 100,00 € at 19 %
    domain: int  # 10,00 € at 7 %
    vdsl: int  # 49,90 € at 19 %
    retired: int  # inactive


def _shop(engine: Any) -> Shop:
    with engine.db.transaction() as conn:
        account_id = create_account(conn, "Bäckerei Sonnenschein", legal_form="GmbH")
        add_address(conn, account_id, "billing", "Hauptstraße 5", "10115", "Berlin")
        contact_id = create_contact(conn, ContactInput("Schmidt", "Frau", "Eva", "Dr."), account_id)
        ids = [create_product(conn, ProductInput(code, name, category, kind, Decimal(price), Decimal(rate),
                                                 active=active))
               for code, name, category, kind, price, rate, active in (
                   ("RTR1", "Business-Router", "hardware", "hardware", "100.00", "19", True),
                   ("DOM1", "Domain .de", "domain", "recurring_yearly", "10.00", "7", True),
                   ("VDSL50", "VDSL 50 Business", "access", "recurring_monthly", "49.90", "19", True),
                   ("OLD1", "ISDN Anschluss", "voice", "recurring_monthly", "19.90", "19", False))]
    return Shop(account_id, contact_id, *ids)


def _login(client: TestClient, user: str, password: str) -> str:
    """Log in and return the session's CSRF token (as the pages embed it)."""
    response = client.post("/login", data={"username": user, "password": password, "next": "/products"})
    assert response.status_code == 200, response.text
    return re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]


@dataclass
class Browser:
    client: TestClient
    engine: Any
    shop: Shop
    csrf: str = ""

    def login(self, user: str) -> None:
        self.client.cookies.clear()
        self.csrf = _login(self.client, user, f"{user}-password")

    def post(self, path: str, data: dict[str, str] | list[tuple[str, str]]) -> Any:
        """A form post as a browser sends it (repeated names in order), with the CSRF header htmx adds."""
        return self.client.post(path, content=urlencode(list(data.items()) if isinstance(data, dict) else data),
                                headers={"X-CSRF-Token": self.csrf,
                                         "Content-Type": "application/x-www-form-urlencoded"},
                                follow_redirects=False)


@contextmanager
def _web(db_url: str) -> Iterator[Browser]:
    app = create_app(Settings(database_url=db_url), run_worker=False)
    engine = app.state.engine
    with engine.db.transaction() as conn:
        for name, roles in (("clara", ["clerk"]), ("maria", ["manager"])):
            app.state.identity.add_user(conn, name, f"{name}-password", roles, ["sales"])
    with TestClient(app) as client:
        browser = Browser(client, engine, _shop(engine))
        browser.login("clara")
        yield browser
    engine.db.dispose()


@pytest.fixture
def web(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """Pages over HTTP on SQLite (what differs between databases is covered by ``web_db``)."""
    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path / "documents"))
    with _web(sqlite_url) as browser:
        yield browser


@pytest.fixture
def web_db(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """The same on SQLite and PostgreSQL, for the tests that write quotes, documents and products."""
    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path / "documents"))
    with _web(db_url) as browser:
        yield browser


def _three_positions(shop: Shop) -> list[tuple[str, str]]:
    return [("product_id", str(shop.router)), ("quantity", "2"), ("discount_percent", "10"), ("description", ""),
            ("product_id", str(shop.domain)), ("quantity", "3"), ("discount_percent", ""), ("description", ""),
            ("product_id", str(shop.vdsl)), ("quantity", "1"), ("discount_percent", ""),
            ("description", "VDSL 50 mit fester IP")]


def _totals(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-total="([^"]+)">([^<]+)<', html))


def test_german_numbers_are_parsed_and_junk_is_refused() -> None:
    assert parse_decimal("1.234,50") == Decimal("1234.50")
    assert parse_decimal(" 29,90 € ") == Decimal("29.90")
    assert parse_decimal("29.90") == Decimal("29.90")
    assert parse_decimal("") is None
    for junk in ("12,3,4", "1.23.4", "abc", "1e5", "NaN", "12.345,6.7"):
        with pytest.raises(ValueError):
            parse_decimal(junk)


def test_builder_page_lists_only_active_products_and_filters(web: Browser) -> None:
    page = web.client.get(f"/customers/{web.shop.account_id}/quotes/new")
    assert page.status_code == 200
    assert 'data-product="RTR1"' in page.text and 'data-product="OLD1"' not in page.text
    assert "Dr. Eva Schmidt" in " ".join(page.text.split())
    found = web.client.get("/quotes/catalogue", params={"q": "router"})
    assert 'data-product="RTR1"' in found.text and 'data-product="DOM1"' not in found.text
    assert "Keine passenden Produkte." in web.client.get("/quotes/catalogue", params={"q": "zzz"}).text
    assert web.client.get("/customers/999999/quotes/new").status_code == 404


def test_preview_totals_are_computed_on_the_server(web: Browser) -> None:
    response = web.post("/quotes/preview", _three_positions(web.shop))
    assert response.status_code == 200
    assert _totals(response.text) == {"net": NET, "vat-7": VAT7, "vat-19": VAT19, "gross": GROSS}
    # the row totals come along out of band
    assert re.search(r'id="line-total-0"[^>]*hx-swap-oob="true">180,00 €', response.text)
    assert re.search(r'id="line-total-2"[^>]*hx-swap-oob="true">49,90 €', response.text)
    # German decimal comma in quantity and discount
    comma = web.post("/quotes/preview", [("product_id", str(web.shop.vdsl)), ("quantity", "1,5"),
                                         ("discount_percent", "2,5"), ("description", "")])
    assert _totals(comma.text)["net"] == "72,98 €"  # 1.5 × 49.90 = 74.85 − 2.5 % = 72.98 (half up)


def test_preview_explains_bad_rows_instead_of_totals(web: Browser) -> None:
    bad = web.post("/quotes/preview", [("product_id", str(web.shop.router)), ("quantity", "0"),
                                       ("discount_percent", "150"), ("description", ""),
                                       ("product_id", str(web.shop.domain)), ("quantity", "zwei"),
                                       ("discount_percent", ""), ("description", "")])
    assert bad.status_code == 200  # htmx swaps 2xx only
    assert "Position 1: Die Menge muss größer als 0 sein." in bad.text
    assert "Position 2: Menge „zwei“ ist keine Zahl." in bad.text
    assert 'data-total="gross"' not in bad.text
    assert "Position 1: Der Rabatt" in web.post("/quotes/preview", [
        ("product_id", str(web.shop.router)), ("quantity", "1"), ("discount_percent", "150"),
        ("description", "")]).text
    retired = web.post("/quotes/positions", {"add": str(web.shop.retired)})
    assert "Dieses Produkt ist nicht (mehr) im Katalog." in retired.text


def test_preview_needs_csrf_and_a_seller(web: Browser) -> None:
    web.csrf = "wrong"
    assert web.post("/quotes/preview", _three_positions(web.shop)).status_code == 403
    web.client.cookies.clear()
    assert web.post("/quotes/preview", {}).status_code == 303  # to /login


def test_add_and_remove_positions(web: Browser) -> None:
    added = web.post("/quotes/positions", [*_three_positions(web.shop)[:4], ("add", str(web.shop.domain))])
    assert added.text.count('name="product_id"') == 2
    assert _totals(added.text)["gross"] == "224,90 €"  # 180,00 × 1,19 = 214,20 + 10,00 × 1,07 = 10,70
    removed = web.post("/quotes/positions", [*_three_positions(web.shop), ("remove", "0")])
    assert removed.text.count('name="product_id"') == 2 and 'value="VDSL 50 mit fester IP"' in removed.text
    assert _totals(removed.text)["net"] == "79,90 €"


def _save(web: Browser) -> int:
    valid_until = (date.today() + timedelta(days=30)).isoformat()
    response = web.post(f"/customers/{web.shop.account_id}/quotes",
                        [("csrf_token", web.csrf), ("valid_until", valid_until),
                         ("contact_id", str(web.shop.contact_id)), *_three_positions(web.shop)])
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/quotes/(\d+)\?flash=created", response.headers["location"])
    assert match
    return int(match.group(1))


def test_save_creates_the_quote_and_shows_it(web_db: Browser) -> None:
    quote_id = _save(web_db)
    with web_db.engine.db.read() as conn:
        row = conn.execute(sa.select(quote).where(quote.c.id == quote_id)).one()
        lines = conn.execute(sa.select(quote_position).where(quote_position.c.quote_id == quote_id)
                             .order_by(quote_position.c.line_no)).all()
    assert (row.status, row.version, row.account_id, row.contact_id) == ("draft", 1, web_db.shop.account_id,
                                                                         web_db.shop.contact_id)
    assert row.gross == Decimal("305.68") and row.net == Decimal("259.90")
    assert [(line.description, line.quantity, line.discount_percent) for line in lines] == [
        ("Business-Router", Decimal("2"), Decimal("10")), ("Domain .de", Decimal("3"), None),
        ("VDSL 50 mit fester IP", Decimal("1"), None)]
    page = web_db.client.get(f"/quotes/{quote_id}?flash=created")
    assert row.number in page.text and "Angebot gespeichert." in page.text and "Entwurf" in page.text
    assert _totals(page.text) == {"net": NET, "gross": GROSS}
    assert f'href="/customers/{web_db.shop.account_id}/quotes/new"' in page.text


def test_save_refuses_bad_input_and_keeps_what_was_typed(web: Browser) -> None:
    empty = web.post(f"/customers/{web.shop.account_id}/quotes",
                     {"csrf_token": web.csrf, "valid_until": date.today().isoformat()})
    assert empty.status_code == 422 and "Bitte mindestens ein Produkt hinzufügen." in empty.text
    past = web.post(f"/customers/{web.shop.account_id}/quotes",
                    [("csrf_token", web.csrf), ("valid_until", "2020-01-01"), *_three_positions(web.shop)])
    assert past.status_code == 422 and "darf nicht in der Vergangenheit liegen" in past.text
    assert 'value="VDSL 50 mit fester IP"' in past.text and 'value="2020-01-01"' in past.text
    no_date = web.post(f"/customers/{web.shop.account_id}/quotes",
                       [("csrf_token", web.csrf), ("valid_until", "morgen"), *_three_positions(web.shop)])
    assert no_date.status_code == 422 and "gültiges Datum" in no_date.text
    with web.engine.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(quote)).scalar_one() == 0


def test_edit_positions_while_draft_then_send(web: Browser) -> None:
    quote_id = _save(web)
    edit = web.client.get(f"/quotes/{quote_id}/edit")
    assert edit.status_code == 200 and _totals(edit.text)["gross"] == GROSS
    assert 'value="VDSL 50 mit fester IP"' in edit.text
    changed = web.post(f"/quotes/{quote_id}/edit", [("csrf_token", web.csrf), *_three_positions(web.shop)[:4]])
    assert changed.headers["location"] == f"/quotes/{quote_id}?flash=updated"
    with web.engine.db.read() as conn:
        assert conn.execute(sa.select(quote.c.gross).where(quote.c.id == quote_id)).scalar_one() == Decimal("214.20")
    sent = web.post(f"/quotes/{quote_id}/send", {"csrf_token": web.csrf})
    assert sent.status_code == 303 and sent.headers["location"] == f"/quotes/{quote_id}?flash=sent"
    page = web.client.get(sent.headers["location"])
    assert "Angebot als versendet markiert." in page.text and 'data-status="sent"' in page.text
    assert "/edit" not in page.text
    refused = web.post(f"/quotes/{quote_id}/edit", [("csrf_token", web.csrf), *_three_positions(web.shop)])
    assert refused.status_code == 409 and "Nur ein Entwurf kann geändert werden" in refused.text
    again = web.post(f"/quotes/{quote_id}/send", {"csrf_token": web.csrf})
    assert again.status_code == 409 and "Nur ein Entwurf kann versendet werden" in again.text
    assert "Akquise-Prozess" not in page.text
    revised = web.post(f"/quotes/{quote_id}/revise", {"csrf_token": web.csrf})
    assert revised.status_code == 303
    new_page = web.client.get(revised.headers["location"])
    assert "Version 2" in new_page.text and 'data-status="draft"' in new_page.text


def test_pdf_of_a_draft_is_rendered_for_the_download_and_the_sent_letter_is_kept(web_db: Browser) -> None:
    quote_id = _save(web_db)
    with web_db.engine.db.read() as conn:
        number = conn.execute(sa.select(quote.c.number).where(quote.c.id == quote_id)).scalar_one()
    response = web_db.client.get(f"/quotes/{quote_id}/pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    # saved, not shown: Chromium's PDF viewer does not run in a sandboxed document, so an inline preview would need
    # the sandbox CSP dropped; the letter is a download with the RFC 6266 name and never active content
    assert response.headers["content-disposition"] == (f'attachment; filename="Angebot-{number}-v1.pdf"; '
                                                       f"filename*=UTF-8''Angebot-{number}-v1.pdf")
    assert response.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert number in text and "Dr. Eva Schmidt" in text
    # the letter sums each period apart (a router once, VDSL monthly, the domain yearly), never one mixed total
    assert all(sum_ in text for sum_ in PDF_SUMS) and GROSS.replace(" €", "") not in text
    assert "Hauptstraße 5" in text
    # a GET never writes: viewing a draft (twice) keeps nothing
    assert web_db.client.get(f"/quotes/{quote_id}/pdf").status_code == 200
    with web_db.engine.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(document)).scalar_one() == 0
    # sending keeps the letter the customer gets; downloading again hands out those bytes, no new copy
    web_db.post(f"/quotes/{quote_id}/send", {"csrf_token": web_db.csrf})
    sent = web_db.client.get(f"/quotes/{quote_id}/pdf")
    assert web_db.client.get(f"/quotes/{quote_id}/pdf").content == sent.content
    with web_db.engine.db.read() as conn:
        docs = conn.execute(sa.select(document).where(document.c.quote_id == quote_id)).all()
    assert [(d.account_id, d.file_name, d.mime_type, d.size, d.uploaded_by) for d in docs] == [
        (web_db.shop.account_id, f"quote-{number}.pdf", "application/pdf", len(sent.content), "clara")]
    assert web_db.client.get("/quotes/999999/pdf").status_code == 404


def test_sending_points_to_a_running_acquisition_process(web: Browser) -> None:
    acquisition = Bpmn("acquisition").node("start", "startEvent").node("follow_up", "userTask") \
        .node("end", "endEvent").chain("start", "follow_up", "end")
    web.engine.deploy([("acquisition.bpmn", acquisition.xml())])
    with web.engine.db.read() as conn:
        number = conn.execute(sa.select(account.c.number).where(account.c.id == web.shop.account_id)).scalar_one()
    instance = web.engine.start("acquisition", business_key=number)
    quote_id = _save(web)
    sent = web.post(f"/quotes/{quote_id}/send", {"csrf_token": web.csrf})
    assert sent.headers["location"] == f"/quotes/{quote_id}?flash=sent&acquisition={instance.id}"
    page = web.client.get(sent.headers["location"])
    assert "Für diesen Kunden läuft ein Akquise-Prozess:" in page.text
    assert f'href="/instances/{instance.id}"' in page.text
    assert web.engine.get_instance(instance.id).state == "running"  # the process is left to its own steps


def _product_form(**changes: Any) -> list[tuple[str, str]]:
    values = {"name": "Business-Router Pro", "description": "WLAN, VPN", "category": "hardware", "kind": "hardware",
              "list_price": "1.234,50", "vat_rate": "19", "active": "true"}
    values.update(changes)
    return [*((k, v) for k, v in values.items() if v is not None), ("provisioning_steps", "hardware"),
            ("provisioning_steps", "ip")]


def test_product_edit_shows_errors_inline_then_saves(web_db: Browser) -> None:
    web_db.login("maria")
    form = web_db.client.get(f"/products/{web_db.shop.router}/edit")
    assert form.status_code == 200 and 'value="100,00"' in form.text and "RTR1" in form.text
    assert all(f'<label for="{name}"' in form.text for name in ("name", "description", "category", "kind",
                                                                 "list_price", "vat_rate"))
    bad = web_db.post(f"/products/{web_db.shop.router}/edit",
                   [("csrf_token", web_db.csrf), *_product_form(name="", list_price="12,345", vat_rate="120")])
    assert bad.status_code == 422
    for field in ("name", "list_price", "vat_rate"):
        inline = rf'data-field="{field}">.*?<span class="field-error" id="{field}-error"'
        assert re.search(inline, bad.text, re.S), field
    assert 'value="12,345"' in bad.text  # what was typed stays
    ok = web_db.post(f"/products/{web_db.shop.router}/edit", [("csrf_token", web_db.csrf), *_product_form(active=None)])
    assert ok.status_code == 303 and ok.headers["location"] == "/products?saved=RTR1"
    with web_db.engine.db.read() as conn:
        row = conn.execute(sa.select(product).where(product.c.id == web_db.shop.router)).one()
        steps = conn.execute(sa.select(product_step.c.step).where(product_step.c.product_id == row.id)
                             .order_by(product_step.c.step)).scalars().all()
    assert (row.name, row.description, row.list_price, row.vat_rate, row.active) == (
        "Business-Router Pro", "WLAN, VPN", Decimal("1234.50"), Decimal("19"), False)
    assert steps == ["hardware", "ip"]
    assert 'data-product="RTR1"' not in web_db.client.get("/quotes/catalogue").text  # inactive: no longer offered


def test_new_product_and_duplicate_code(web: Browser) -> None:
    web.login("maria")
    assert web.client.get("/products/new").status_code == 200
    created = web.post("/products/new", [("csrf_token", web.csrf), ("code", "SDSL10"),
                                         *_product_form(name="SDSL 10", category="access", kind="recurring_monthly",
                                                        list_price="89,00", vat_rate="19")])
    assert created.status_code == 303
    with web.engine.db.read() as conn:
        assert crm_products.product_id_by_code(conn, "SDSL10") is not None
    duplicate = web.post("/products/new", [("csrf_token", web.csrf), ("code", "SDSL10"), *_product_form()])
    assert duplicate.status_code == 422
    assert re.search(r'data-field="code">.*?field-error[^>]*>[^<]*already exists', duplicate.text, re.S)
    unknown_kind = web.post("/products/new", [("csrf_token", web.csrf), ("code", "X1"), *_product_form(kind="x")])
    assert unknown_kind.status_code == 422 and 'id="kind-error"' in unknown_kind.text


def test_clerk_may_not_edit_products(web: Browser) -> None:
    for path in (f"/products/{web.shop.router}/edit", "/products/new"):
        page = web.client.get(path)
        assert page.status_code == 403 and "Keine Berechtigung" in page.text
    refused = web.post(f"/products/{web.shop.router}/edit", [("csrf_token", web.csrf), *_product_form()])
    assert refused.status_code == 403
    with web.engine.db.read() as conn:
        assert conn.execute(sa.select(product.c.name).where(product.c.id == web.shop.router)).scalar_one() == \
            "Business-Router"


def test_update_product_validates_like_create(web: Browser) -> None:
    with web.engine.db.transaction() as conn:
        for changes, field in (({"name": " "}, "name"), ({"list_price": Decimal("1.001")}, "list_price"),
                               ({"vat_rate": Decimal("101")}, "vat_rate"), ({"category": "food"}, "category"),
                               ({"active": "yes"}, "active"), ({"provisioning_steps": ["modem"]}, "provisioning_steps"),
                               ({"code": "NEW"}, "code"), ({"list_price": 5.0}, "list_price")):
            with pytest.raises(DomainError) as caught:
                crm_products.update_product(conn, web.shop.domain, **changes)
            assert caught.value.field == field
        with pytest.raises(DomainError, match="product_id"):
            crm_products.update_product(conn, 999999, name="x")
        crm_products.update_product(conn, web.shop.domain, vat_rate=Decimal("19"), provisioning_steps=["domain"])
        assert conn.execute(sa.select(product.c.vat_rate).where(product.c.id == web.shop.domain)).scalar_one() == 19
        assert crm_products.provisioning_steps(conn, [web.shop.domain]) == {web.shop.domain: ["domain"]}


def test_every_new_text_has_an_english_translation() -> None:
    english = translations("en")
    sources = [ROOT / "api" / "templates" / name for name in (
        "quote_builder.html", "quote.html", "_quote_totals.html", "_quote_positions.html", "_quote_catalogue.html",
        "product_form.html")]
    ids = {m for path in sources for m in re.findall(r'_\(\s*"([^"]+)"\s*\)|_\(\s*\'([^\']+)\'', path.read_text())}
    ids = {a or b for a, b in ids}
    module = (ROOT / "api" / "ui" / "quote_pages.py").read_text()
    ids |= set(re.findall(r'_gettext\(\s*request, "([^"]+)"', module))
    from api.ui import quote_pages

    ids |= set(quote_pages.FLASHES.values()) | set(quote_pages.STATUSES.values()) | \
        set(quote_pages.STEP_LABELS.values()) | {"Listenpreis", "Umsatzsteuersatz"}
    missing = sorted(i for i in ids if i not in english._catalog)  # type: ignore[attr-defined]
    assert missing == []


# -- in the browser ---------------------------------------------------------------------------------------
def test_clerk_clicks_a_quote_together_and_downloads_its_pdf(page: Any, app: Api, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path / "documents"))
    shop = _shop(app.engine)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"{message.text} {message.location.get('url')}")
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{app.base_url}/customers/{shop.account_id}/quotes/new")
    page.fill("input[name=username]", "clara")
    page.fill("input[name=password]", "clara-password")
    page.click("button[type=submit]")
    page.wait_for_selector("#catalogue")
    assert page.evaluate("htmx.config.allowEval") is False  # nothing on the page may ask htmx to evaluate text
    page.fill("#catalogue-filter", "router")
    # locator waits, not wait_for_function: a string predicate is compiled in the page, which the CSP forbids
    expect(page.locator("#catalogue [data-product]")).to_have_count(1)
    page.click("[data-product=RTR1]")
    page.wait_for_selector("#quantity-0")
    page.fill("#catalogue-filter", "")
    page.wait_for_selector("[data-product=DOM1]")
    page.click("[data-product=DOM1]")
    page.wait_for_selector("#quantity-1")
    page.click("[data-product=VDSL50]")
    page.wait_for_selector("#quantity-2")
    page.fill("#quantity-0", "2")
    page.fill("#discount-0", "10")
    page.fill("#quantity-1", "3")
    expect(page.locator("[data-total=gross]")).to_have_text(GROSS)
    assert page.locator("[data-total=net]").inner_text() == NET
    assert page.locator("#line-total-0").inner_text() == "180,00 €"
    page.click("#save-quote")
    page.wait_for_url(re.compile(r".*/quotes/\d+\?flash=created"))
    assert page.locator("[data-total=gross]").inner_text() == GROSS
    number = page.locator("h1").inner_text().split()[1]
    with page.expect_download() as download_info:
        page.click("#pdf")
    download = download_info.value
    assert download.suggested_filename == f"Angebot-{number}-v1.pdf"
    text = "".join(p.extract_text() for p in PdfReader(download.path()).pages)
    assert number in text and all(sum_ in text for sum_ in PDF_SUMS)
    assert problems == []


def test_a_discount_over_the_limit_waits_for_management_in_the_browser(browser: Any, sqlite_url: str,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Builder shows "Freigabe nötig", the quote page offers "Freigabe anfordern" instead of "Senden"; the manager
    approves in the inbox, the process records it on the quote, and then the clerk sends it."""
    from api.app import shipped_registry
    from tests.support.live_app import live_app
    from tests.support.sessions import wait_for

    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path / "documents"))
    with live_app(sqlite_url, shipped_registry) as app:
        app.engine.deploy([("quote-discount-approval.bpmn",
                            (ROOT / "processes" / "quote-discount-approval.bpmn").read_bytes())],
                          [("acquisition-discount-approval.json",
                            (ROOT / "forms" / "acquisition-discount-approval.json").read_bytes())])
        with app.engine.db.transaction() as conn:
            app.identity.add_user(conn, "maria", "maria-password", ["manager"], ["management"])
        shop = _shop(app.engine)
        clerk, manager = browser.new_context(locale="de-DE"), browser.new_context(locale="de-DE")
        try:
            page = clerk.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{app.base_url}/customers/{shop.account_id}/quotes/new")
            page.fill("input[name=username]", "clara")
            page.fill("input[name=password]", "clara-password")
            page.click("button[type=submit]")
            page.click("[data-product=VDSL50]")
            page.wait_for_selector("#discount-0")
            page.fill("#discount-0", "15")
            expect(page.locator("[data-total=net]")).to_have_text("42,42 €")
            assert page.locator("#approval-needed").count() == 0  # at the limit: no approval
            page.fill("#discount-0", "40")
            expect(page.locator("#approval-needed")).to_contain_text("Freigabe nötig")
            page.click("#save-quote")
            page.wait_for_url(re.compile(r".*/quotes/\d+\?flash=created"))
            quote_id = int(re.search(r"/quotes/(\d+)", page.url).group(1))  # type: ignore[union-attr]
            expect(page.locator("#approval-needed")).to_have_text("Freigabe nötig")
            assert page.locator("#send").count() == 0
            page.click("#request-approval")
            page.wait_for_url(re.compile(r".*flash=approval_requested"))
            expect(page.locator("#approval-requested")).to_be_visible()
            assert page.locator("#send").count() == 0 and page.locator("#request-approval").count() == 0

            boss = manager.new_page()
            boss.set_default_timeout(15_000)
            boss.goto(f"{app.base_url}/tasks")
            boss.fill("input[name=username]", "maria")
            boss.fill("input[name=password]", "maria-password")
            boss.click("button[type=submit]")
            wait_for(lambda: app.engine.list_tasks(), "the approval task")  # the worker loads the quote first
            boss.goto(f"{app.base_url}/tasks")
            boss.click("text=Übernehmen")
            boss.click("table.tasks a")
            boss.check("#discount_approved")
            boss.click("button[type=submit]")
            boss.wait_for_url("**/tasks?done=*")

            with app.engine.db.read() as conn:
                wait_for(lambda: conn.execute(sa.select(quote.c.discount_approved_by)
                                              .where(quote.c.id == quote_id)).scalar_one() is not None,
                         "the approval on the quote", timeout=20)
            page.goto(f"{app.base_url}/quotes/{quote_id}")
            assert "maria" in page.locator("#approved-by").inner_text()
            page.click("#send")
            page.wait_for_url(re.compile(r".*flash=sent"))
            assert page.locator("[data-status=sent]").count() == 1
        finally:
            clerk.close()
            manager.close()
