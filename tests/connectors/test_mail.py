"""Mail connector against a real aiosmtpd server on loopback, on SQLite and PostgreSQL; the SMTP sink and its page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from connectors import mail
from connectors.documents import DocumentParams, DocumentRenderer, Position
from connectors.registry import BusinessError, ConnectorContext, InvalidParameters, Registry
from connectors.smtp_sink import read_mail, read_outbox, start_sink
from crm.accounts import ContactInput, create_account, create_contact
from crm.activities import timeline
from crm.campaigns import add_members, create_campaign
from engine.database import create_db_engine
from tests.support.live_app import free_port
from tests.support.smtp import Collector


@dataclass
class Smtp:
    port: int
    handler: Collector


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"silverflow" and auth_data.password == b"geheim"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=False)
    controller.start()
    yield Smtp(port, handler)
    controller.stop()


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    folder = tmp_path / "documents"
    folder.mkdir()
    return folder


@pytest.fixture
def config(smtp: Smtp, documents: Path) -> mail.MailConfig:
    return mail.MailConfig(port=smtp.port, documents_dir=documents, timeout=5)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def registry(config: mail.MailConfig, engine: Engine) -> Registry:
    reg = Registry()
    mail.register(reg, config, engine=engine)
    return reg


def ctx(key: str = "inst-1:send_mail") -> ConnectorContext:
    return ConnectorContext(key, "inst-1", "send_mail", "K-10001")


def _quote_pdf(documents: Path) -> dict[str, Any]:
    params = DocumentParams(kind="quote", number="A-2026-0001-1", date=date(2026, 3, 2),
                            recipient={"name": "Muster GmbH", "street": "Hauptstraße 5",  # type: ignore[arg-type]
                                       "city": "10115 Berlin"},
                            positions=[Position(description="ADSL 50", quantity=Decimal("1"),
                                                unit_price=Decimal("39.90"))])
    return DocumentRenderer(documents).render(params, ctx("render")).model_dump(mode="json")


def _people(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        account_id = create_account(conn, "Muster GmbH")
        ids = {
            "account": account_id,
            "schmidt": create_contact(conn, ContactInput("Schmidt", "Frau", "Erika", "Dr.",
                                                         email="erika@muster.example"), account_id),
            "mueller": create_contact(conn, ContactInput("Müller", "Herr", "Max", "Prof. Dr.",
                                                         email="max@mueller.example")),
            "weber": create_contact(conn, ContactInput("Weber", "Frau", "Anna", email="anna@weber.example",
                                                       marketing_opt_out=True), account_id),
            "nomail": create_contact(conn, ContactInput("Ohnemail", "Herr", "Otto"), account_id),
        }
    return ids


def _body(message: EmailMessage, kind: str = "plain") -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None, f"no text/{kind} part"
    return str(part.get_content()).replace("\r\n", "\n")


def _logged(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(mail.mail_log)).scalar_one())


# -- configuration ------------------------------------------------------------------------------------------
def test_config_from_env_defaults_flags_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SILVERFLOW_SMTP_HOST", "SILVERFLOW_SMTP_PORT", "SILVERFLOW_SMTP_STARTTLS", "SILVERFLOW_SMTP_SSL",
                 "SILVERFLOW_SMTP_USER", "SILVERFLOW_MAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SILVERFLOW_SMTP_PASSWORD", "very-secret")
    defaults = mail.MailConfig.from_env()
    assert (defaults.host, defaults.port, defaults.starttls, defaults.ssl) == ("127.0.0.1", 8025, False, False)
    assert defaults.sender == "Silverflow ISP <service@silverflow.example>"
    assert "very-secret" not in repr(defaults)
    monkeypatch.setenv("SILVERFLOW_SMTP_STARTTLS", "yes")
    monkeypatch.setenv("SILVERFLOW_SMTP_PORT", "587")
    assert mail.MailConfig.from_env().starttls is True and mail.MailConfig.from_env().port == 587
    monkeypatch.setenv("SILVERFLOW_SMTP_SSL", "true")
    with pytest.raises(ValueError, match="exclude each other"):
        mail.MailConfig.from_env()
    monkeypatch.setenv("SILVERFLOW_SMTP_SSL", "vielleicht")
    with pytest.raises(ValueError, match="SILVERFLOW_SMTP_SSL must be true or false"):
        mail.MailConfig.from_env()


# -- mail.send ----------------------------------------------------------------------------------------------
def test_send_to_an_address_renders_text_and_html_with_the_pdf_attached(
        registry: Registry, smtp: Smtp, documents: Path, engine: Engine) -> None:
    document = _quote_pdf(documents)
    result = registry.run("mail.send", {"to": "einkauf@muster.example", "template": "quote",
                                        "values": {"quote_number": "A-2026-0001-1", "gross": "1234.5"},
                                        "attachments": [document], "cc": "vertrieb@silverflow.example"}, ctx())
    assert result["subject"] == "Ihr Angebot A-2026-0001-1"
    assert result["recipients"] == ["einkauf@muster.example", "vertrieb@silverflow.example"]
    assert result["attachments"] == ["quote-A-2026-0001-1.pdf"] and result["activity_id"] is None
    [(sender, recipients, message)] = smtp.handler.received
    assert sender == "service@silverflow.example"
    assert recipients == ["einkauf@muster.example", "vertrieb@silverflow.example"]
    assert message["Subject"] == "Ihr Angebot A-2026-0001-1"
    assert message["Message-ID"] == result["message_id"] == mail.message_id_for("inst-1:send_mail",
                                                                                "service@silverflow.example")
    assert message.get_content_type() == "multipart/mixed"
    alternative = next(p for p in message.iter_parts() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    text = _body(message, "plain")
    html = _body(message, "html")
    assert text.startswith("Sehr geehrte Damen und Herren,\n") and "über 1.234,50 € (brutto)" in text
    assert "<strong>A-2026-0001-1</strong>" in html
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "quote-A-2026-0001-1.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    assert _logged(engine) == 1


def test_html_is_autoescaped_and_text_is_not(registry: Registry, smtp: Smtp) -> None:
    registry.run("mail.send", {"to": "kunde@example.org", "template": "incident_update",
                               "values": {"incident_number": "S-7", "status": "in_progress",
                                          "note": "Router <Fritz!Box> & Leitung geprüft"}}, ctx())
    [(_from, _to, message)] = smtp.handler.received
    assert message["Subject"] == "Ihre Störungsmeldung S-7: in Bearbeitung"
    text = _body(message, "plain")
    html = _body(message, "html")
    assert "Router <Fritz!Box> & Leitung geprüft" in text
    assert "Router &lt;Fritz!Box&gt; &amp; Leitung geprüft" in html and "<Fritz!Box>" not in html


def test_send_to_a_contact_uses_the_letter_salutation_and_records_an_activity(
        registry: Registry, smtp: Smtp, engine: Engine) -> None:
    people = _people(engine)
    result = registry.run("mail.send", {"contact_id": people["schmidt"], "template": "order_confirmation",
                                        "values": {"order_number": "AB-2026-0007", "gross": "47.48"}}, ctx())
    [(_from, recipients, message)] = smtp.handler.received
    assert recipients == ["erika@muster.example"]
    assert message["To"] == "\"Dr. Erika Schmidt\" <erika@muster.example>" or \
        message["To"] == "Dr. Erika Schmidt <erika@muster.example>"
    text = _body(message, "plain")
    assert text.startswith("Sehr geehrte Frau Dr. Schmidt,\n")
    assert "Bestellung AB-2026-0007 über 47,48 € (brutto)" in text
    with engine.connect() as conn:
        [on_contact] = timeline(conn, contact_id=people["schmidt"])
        [on_account] = timeline(conn, account_id=people["account"])
    assert on_contact.id == on_account.id == result["activity_id"]
    assert (on_contact.kind, on_contact.author, on_contact.subject) == \
        ("email_out", "silverflow", "Auftragsbestätigung AB-2026-0007")
    assert on_contact.body.startswith("Sehr geehrte Frau Dr. Schmidt,")


def test_an_address_with_an_account_is_recorded_on_the_account(
        registry: Registry, smtp: Smtp, engine: Engine) -> None:
    people = _people(engine)
    result = registry.run("mail.send", {"to": "buchhaltung@muster.example", "account_id": people["account"],
                                        "template": "invoice",
                                        "values": {"invoice_number": "R-2026-0001", "gross": "47.48",
                                                   "due_date": "2026-03-16"}}, ctx())
    assert len(smtp.handler.received) == 1
    with engine.connect() as conn:
        [entry] = timeline(conn, account_id=people["account"])
    assert entry.id == result["activity_id"] and entry.contact_id is None
    assert "bis zum 16.03.2026" in entry.body


def test_a_retried_job_sends_no_second_mail(registry: Registry, smtp: Smtp, engine: Engine) -> None:
    people = _people(engine)
    params = {"contact_id": people["schmidt"], "template": "appointment",
              "values": {"topic": "Beratung Standortvernetzung", "starts_at": "2026-03-05T10:00:00"}}
    first = registry.run("mail.send", params, ctx("inst-9:appointment_mail"))
    again = registry.run("mail.send", params, ctx("inst-9:appointment_mail"))
    assert len(smtp.handler.received) == 1
    assert again["already_sent"] is True and first["already_sent"] is False
    assert {k: v for k, v in again.items() if k != "already_sent"} == \
        {k: v for k, v in first.items() if k != "already_sent"}
    registry.run("mail.send", params, ctx("inst-10:appointment_mail"))  # another job: another mail
    assert len(smtp.handler.received) == 2
    assert smtp.handler.received[0][2]["Message-ID"] != smtp.handler.received[1][2]["Message-ID"]
    with engine.connect() as conn:
        assert len(timeline(conn, contact_id=people["schmidt"])) == 2


def test_wrong_recipients_templates_values_and_attachments_are_business_errors(
        registry: Registry, smtp: Smtp, engine: Engine, documents: Path, tmp_path: Path) -> None:
    people = _people(engine)
    with engine.begin() as conn:
        other_account = create_account(conn, "Andere AG")
    (tmp_path / "secret.txt").write_text("nicht für Kunden")
    cases = [
        ({"to": "a@example.org", "template": "gibt_es_nicht"}, "UnknownTemplate"),
        ({"to": "a@example.org", "template": "../../etc/passwd"}, "UnknownTemplate"),
        ({"contact_id": people["nomail"], "template": "quote", "values": {"quote_number": "A-1"}}, "NoRecipient"),
        ({"contact_id": 999999, "template": "quote", "values": {"quote_number": "A-1"}}, "NoRecipient"),
        ({"template": "quote", "values": {"quote_number": "A-1"}}, "NoRecipient"),
        ({"to": "kein-mail-format", "template": "quote", "values": {"quote_number": "A-1"}}, "InvalidAddress"),
        ({"to": "a@example.org", "template": "quote"}, "MissingTemplateValue"),
        ({"to": "a@example.org", "template": "quote", "values": {"quote_number": "A-1"},
          "attachments": [str(tmp_path / "secret.txt")]}, "InvalidAttachment"),
        ({"to": "a@example.org", "template": "quote", "values": {"quote_number": "A-1"},
          "attachments": ["../secret.txt"]}, "InvalidAttachment"),
        ({"to": "a@example.org", "template": "quote", "values": {"quote_number": "A-1"},
          "attachments": ["fehlt.pdf"]}, "AttachmentNotFound"),
        ({"contact_id": people["schmidt"], "account_id": other_account, "template": "quote",
          "values": {"quote_number": "A-1"}}, "ContactNotOfAccount"),
        ({"to": "a@example.org", "account_id": 999999, "template": "quote", "values": {"quote_number": "A-1"}},
         "UnknownAccount"),
    ]
    for params, code in cases:
        with pytest.raises(BusinessError) as raised:
            registry.run("mail.send", params, ctx())
        assert raised.value.code == code, params
    with pytest.raises(BusinessError, match="'quote_number' is undefined"):
        registry.run("mail.send", {"to": "a@example.org", "template": "quote"}, ctx())
    with pytest.raises(InvalidParameters, match="template"):
        registry.run("mail.send", {"to": "a@example.org"}, ctx())
    assert smtp.handler.received == [] and _logged(engine) == 0


def test_an_unreachable_or_refusing_smtp_server_is_a_technical_error(
        smtp: Smtp, documents: Path, engine: Engine) -> None:
    params = {"to": "kunde@example.org", "template": "domain_unavailable", "values": {"domain": "muster.de"}}
    down = Registry()
    mail.register(down, mail.MailConfig(port=free_port(), documents_dir=documents, timeout=2), engine=engine)
    with pytest.raises(mail.MailDeliveryError, match="cannot connect to SMTP server 127.0.0.1") as raised:
        down.run("mail.send", params, ctx())
    assert not isinstance(raised.value, BusinessError)
    assert _logged(engine) == 0  # nothing recorded: the engine's retry sends it
    up = Registry()
    mail.register(up, mail.MailConfig(port=smtp.port, documents_dir=documents), engine=engine)
    smtp.handler.refuse = True
    with pytest.raises(mail.MailDeliveryError, match="550"):
        up.run("mail.send", params, ctx())
    smtp.handler.refuse = False
    assert up.run("mail.send", params, ctx())["already_sent"] is False  # the retry goes out once the server takes it
    assert len(smtp.handler.received) == 1


def test_login_with_user_and_password(smtp: Smtp, documents: Path) -> None:
    params = {"to": "kunde@example.org", "template": "newsletter",
              "values": {"headline": "Neu: Glasfaser", "message": "Ab sofort verfügbar."}}
    good = Registry()
    mail.register(good, mail.MailConfig(port=smtp.port, documents_dir=documents, user="silverflow",
                                        password="geheim"))  # no database: sent, nothing recorded
    good.run("mail.send", params, ctx())
    assert len(smtp.handler.received) == 1
    bad = Registry()
    mail.register(bad, mail.MailConfig(port=smtp.port, documents_dir=documents, user="silverflow",
                                       password="falsch", timeout=5))
    with pytest.raises(mail.MailDeliveryError, match="refused the login") as raised:
        bad.run("mail.send", params, ctx())
    assert "falsch" not in str(raised.value)
    assert "mail.serial" not in good.operators()  # serial mail needs the CRM's database


# -- mail.serial --------------------------------------------------------------------------------------------
def test_serial_mail_to_a_campaign_skips_opted_out_and_personalises_the_rest(
        registry: Registry, smtp: Smtp, engine: Engine) -> None:
    people = _people(engine)
    with engine.begin() as conn:
        campaign_id = create_campaign(conn, "CeBIT 2026", "trade_fair", date(2026, 3, 1), date(2026, 3, 5))
        add_members(conn, campaign_id, [people["schmidt"], people["mueller"], people["weber"], people["nomail"]])
    params = {"campaign_id": campaign_id, "template": "newsletter",
              "values": {"headline": "Danke für Ihren Besuch auf der CeBIT",
                         "message": "es hat uns gefreut, Sie an unserem Stand zu begrüßen."}}
    result = registry.run("mail.serial", params, ctx("inst-3:thank_you"))
    assert (result["sent"], result["skipped"], result["already_sent"]) == (2, 2, 0)
    assert sorted((s["contact_id"], s["reason"]) for s in result["skipped_contacts"]) == \
        sorted([(people["weber"], "opted_out"), (people["nomail"], "no_email")])
    got = {recipients[0]: message for _from, recipients, message in smtp.handler.received}
    assert set(got) == {"erika@muster.example", "max@mueller.example"}
    assert _body(got["max@mueller.example"]).startswith("Sehr geehrter Herr Prof. Dr. Müller,\n")
    erika = _body(got["erika@muster.example"], "plain")
    assert erika.startswith("Sehr geehrte Frau Dr. Schmidt,\n") and "als Kontakt der Muster GmbH" in erika
    assert got["erika@muster.example"]["Subject"] == "Danke für Ihren Besuch auf der CeBIT"
    with engine.connect() as conn:
        [entry] = timeline(conn, contact_id=people["mueller"])
        assert timeline(conn, contact_id=people["weber"]) == []
    assert (entry.kind, entry.campaign_id, entry.author) == ("email_out", campaign_id, "silverflow")
    again = registry.run("mail.serial", params, ctx("inst-3:thank_you"))
    assert (again["sent"], again["already_sent"]) == (2, 2) and len(smtp.handler.received) == 2


def test_serial_mail_to_listed_contacts_and_its_errors(registry: Registry, smtp: Smtp, engine: Engine) -> None:
    people = _people(engine)
    values = {"headline": "Wartungsfenster", "message": "am Samstag von 2 bis 4 Uhr."}
    result = registry.run("mail.serial", {"contact_ids": [people["mueller"], people["schmidt"], people["weber"]],
                                          "template": "newsletter", "values": values}, ctx("inst-4:notice"))
    assert (result["sent"], result["skipped"]) == (2, 1)
    salutations = sorted(_body(m).splitlines()[0] for _f, _r, m in smtp.handler.received)
    assert salutations == ["Sehr geehrte Frau Dr. Schmidt,", "Sehr geehrter Herr Prof. Dr. Müller,"]
    for params, code in [({"contact_ids": [999999], "template": "newsletter", "values": values}, "NoRecipient"),
                         ({"campaign_id": 999999, "template": "newsletter", "values": values}, "UnknownCampaign"),
                         ({"contact_ids": [people["mueller"]], "template": "nope", "values": values},
                          "UnknownTemplate"),
                         ({"contact_ids": [people["mueller"]], "template": "newsletter"}, "MissingTemplateValue")]:
        with pytest.raises(BusinessError) as raised:
            registry.run("mail.serial", params, ctx("inst-5:notice"))
        assert raised.value.code == code
    with pytest.raises(InvalidParameters, match="either campaign_id or contact_ids"):
        registry.run("mail.serial", {"template": "newsletter"}, ctx())
    assert len(smtp.handler.received) == 2


# -- the local sink and its page ------------------------------------------------------------------------------
def test_the_sink_writes_eml_files_that_read_outbox_parses(tmp_path: Path, documents: Path) -> None:
    outbox = tmp_path / "outbox"
    port = free_port()
    sink = start_sink(outbox, "127.0.0.1", port)
    try:
        registry = Registry()
        mail.register(registry, mail.MailConfig(port=port, documents_dir=documents))
        document = _quote_pdf(documents)
        registry.run("mail.send", {"to": "einkauf@muster.example", "template": "quote",
                                   "values": {"quote_number": "A-2026-0001-1"}, "attachments": [document]},
                     ctx("a"))
        registry.run("mail.send", {"to": "technik@muster.example", "template": "access_data",
                                   "values": {"domain": "muster.de", "ip_address": "192.0.2.10",
                                              "modem_serial": "SN-4711"}}, ctx("b"))
    finally:
        sink.stop()
    files = sorted(p.name for p in outbox.iterdir())
    assert len(files) == 2 and all(re.fullmatch(r"\d{20}-[0-9a-f]{8}\.eml", f) for f in files)
    newest, oldest = read_outbox(outbox, 10)
    assert newest["name"] == files[1] and oldest["name"] == files[0]
    assert newest["subject"] == "Ihre Zugangsdaten" and newest["to"] == "technik@muster.example"
    assert "IP-Adresse:     192.0.2.10" in newest["text"] and "SN-4711" in newest["text"]
    assert newest["attachments"] == [] and newest["has_html"] is True
    assert oldest["attachments"] == ["quote-A-2026-0001-1.pdf"]
    assert oldest["from"] == "Silverflow ISP <service@silverflow.example>"
    assert oldest["date"] is not None and oldest["date"] <= newest["date"]
    assert [m["name"] for m in read_outbox(outbox, 1)] == [files[1]]
    assert read_outbox(tmp_path / "nirgends", 10) == []
    assert read_mail(outbox, "../" + files[0]) is None and read_mail(outbox, files[0])["subject"] == oldest["subject"]


def test_outbox_page_lists_and_shows_mails_for_managers(sqlite_url: str, tmp_path: Path) -> None:
    from api.app import create_app
    from api.identity import Identity
    from api.services import ConnectorGateway
    from api.settings import Settings
    from api.ui import outbox_pages
    from connectors import default_registry
    from engine.database import Database
    from engine.runtime import Engine as BpmEngine

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    raw = (b"From: Silverflow ISP <service@silverflow.example>\r\nTo: kunde@example.org\r\n"
           b"Subject: =?utf-8?q?Ihre_Rechnung_R-2026-0001?=\r\nDate: Mon, 02 Mar 2026 09:00:00 +0100\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nSehr geehrte Damen und Herren, <anbei>\r\n--XX\r\n"
           b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=invoice-R-2026-0001.pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n")
    name = "01772438400000000000-0a1b2c3d.eml"
    (outbox / name).write_bytes(raw)
    engine = BpmEngine(Database(sqlite_url), ConnectorGateway(default_registry()))
    identity = Identity()
    app = create_app(Settings(database_url=sqlite_url), engine, run_worker=False, identity=identity)
    if not any(getattr(r, "path", None) == "/outbox" for r in app.routes):
        app.include_router(outbox_pages.router)
    app.state.outbox_dir = str(outbox)
    with engine.db.transaction() as conn:
        identity.add_user(conn, "chefin", "chefin-password", ["manager"], ["management"])
        identity.add_user(conn, "clara", "clara-password", ["clerk"], ["sales"])
    try:
        with TestClient(app) as client:
            assert client.get("/outbox", follow_redirects=False).status_code == 303  # login first
            client.post("/login", data={"username": "clara", "password": "clara-password", "next": "/"})
            assert client.get("/outbox").status_code == 403
        with TestClient(app) as client:
            client.post("/login", data={"username": "chefin", "password": "chefin-password", "next": "/"})
            listing = client.get("/outbox")
            assert listing.status_code == 200
            assert "Ihre Rechnung R-2026-0001" in listing.text and f'href="/outbox/{name}"' in listing.text
            assert "invoice-R-2026-0001.pdf" in listing.text
            detail = client.get(f"/outbox/{name}")
            assert detail.status_code == 200
            assert "Sehr geehrte Damen und Herren, &lt;anbei&gt;" in detail.text
            assert "invoice-R-2026-0001.pdf" in detail.text and "kunde@example.org" in detail.text
            assert client.get("/outbox/01772438400000000000-ffffffff.eml").status_code == 404
            assert client.get("/outbox/..%2Fsecret.eml").status_code == 404
    finally:
        engine.db.dispose()
