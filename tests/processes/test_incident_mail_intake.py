"""Mail comes in (issue 14): customers write to the service desk's address over real SMTP on loopback; the mail
becomes an incident process (receipt mail with the number in the subject, read back from the SMTP server the
app sends through), a reply lands in the incident's log and — where the process waits for the customer —
continues it; an unknown sender's incident is routed to triage; hostile mail is refused or kept, never fatal.

The journey starts where a customer starts: an e-mail client (smtplib) sending to the listener."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.mail_intake import Outcome, ServiceDeskMail
from connectors.mail_intake import IncomingMail, IntakeConfig, parse_mail, start_intake
from crm.accounts import ContactInput, create_account, create_contact
from crm.documents import DocumentStore, documents_of
from crm.schema import incident, incident_log
from tests.support.live_app import free_port

from .conftest import World

DESK = "service@silverflow.example"
CUSTOMER = "m.schmidt@baeckerei.example"


@dataclass
class Desk:
    world: World
    port: int
    outcomes: list[Outcome]
    account_id: int
    contact_id: int

    def send(self, message: EmailMessage | MIMEMultipart | bytes, sender: str = CUSTOMER) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            if isinstance(message, bytes):
                client.sendmail(sender, [DESK], message)
            else:
                client.send_message(message, from_addr=sender, to_addrs=[DESK])

    def incident(self, incident_id: int) -> Any:
        with self.world.api.engine.db.read() as conn:
            return conn.execute(sa.select(incident).where(incident.c.id == incident_id)).one()

    def log(self, incident_id: int) -> list[Any]:
        with self.world.api.engine.db.read() as conn:
            return list(conn.execute(sa.select(incident_log).where(incident_log.c.incident_id == incident_id)
                                     .order_by(incident_log.c.id)))

    def started(self, count: int) -> Outcome:
        """The ``count``-th mail's outcome once its incident is recorded by the process's first step."""
        self.world.wait_for(lambda: len(self.outcomes) >= count, f"mail {count} taken")
        outcome = self.outcomes[count - 1]
        if outcome.incident_id is None and outcome.instance_id is not None:
            outcome.incident_id = self.world.wait_for(
                lambda: self.world.instance(str(outcome.instance_id))["variables"].get("incident_id"),
                "incident recorded")
        return outcome

    def mail_to(self, address: str, containing: str) -> EmailMessage:
        def find() -> EmailMessage | None:
            return next((m for m in reversed(self.world.inbox.messages)
                         if address in str(m["To"]) and containing in str(m["Subject"])), None)
        try:
            return self.world.wait_for(find, f"mail to {address} about {containing}")  # type: ignore[no-any-return]
        except AssertionError as exc:
            sent = [(str(m["To"]), str(m["Subject"])) for m in self.world.inbox.messages]
            raise AssertionError(f"{exc}; mails sent: {sent}") from None


@pytest.fixture
def desk(world: World, tmp_path: Path) -> Iterator[Desk]:
    with world.api.engine.db.transaction() as conn:
        account_id = create_account(conn, "Bäckerei Schmidt", sla_class="silver")
        contact_id = create_contact(conn, ContactInput(last_name="Schmidt", first_name="Maria", salutation="Frau",
                                                       email=CUSTOMER), account_id)
    outcomes: list[Outcome] = []
    service_desk = ServiceDeskMail(world.api.engine, DocumentStore(tmp_path / "documents"))

    def deliver(mail: IncomingMail) -> Outcome:
        outcome = service_desk(mail)
        outcomes.append(outcome)
        return outcome

    port = free_port()
    listener = start_intake(deliver, IntakeConfig("127.0.0.1", port, (DESK,), max_bytes=2 * 1024 * 1024))
    try:
        yield Desk(world, port, outcomes, account_id, contact_id)
    finally:
        listener.stop()


def _customer_mail(subject: str, text: str, html: str | None = None, **headers: str) -> MIMEMultipart:
    """Like a desk client writes: ISO-8859-1, quoted-printable, text and HTML, a PDF attached."""
    message = MIMEMultipart("mixed")
    message["From"] = f"{Header('Maria Schmidt', 'iso-8859-1').encode()} <{CUSTOMER}>"
    message["To"] = DESK
    try:
        message["Subject"] = Header(subject, "iso-8859-1").encode()
    except UnicodeEncodeError:  # our subjects carry a dash Latin-1 lacks: the client falls back to UTF-8
        message["Subject"] = Header(subject, "utf-8").encode()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(text, "plain", "iso-8859-1"))
    if html is not None:
        body.attach(MIMEText(html, "html", "utf-8"))
    message.attach(body)
    pdf = MIMEApplication(b"%PDF-1.4\n% Fehlerprotokoll\n", "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename="protokoll.pdf")
    message.attach(pdf)
    return message


def test_a_customers_mail_becomes_an_incident_and_her_replies_reach_it(desk: Desk) -> None:
    world = desk.world
    desk.send(_customer_mail("Störung: Internet fällt ständig aus", "Seit heute früh bricht die Verbindung "
                             "alle 10 Minuten ab. Grüße, M. Schmidt", "<p>Seit heute <b>früh</b></p>"))
    first = desk.started(1)
    instance = str(first.instance_id)
    row = desk.incident(int(str(first.incident_id)))
    assert (row.account_id, row.contact_id, row.origin) == (desk.account_id, desk.contact_id, "mail")
    assert row.summary == "Störung: Internet fällt ständig aus" and "alle 10 Minuten" in row.description
    assert row.responded_at is None  # the automatic routing is no response
    with world.api.engine.db.read() as conn:
        kept = documents_of(conn, desk.account_id)
    assert [d.file_name for d in kept] == ["protokoll.pdf"] and kept[0].mime_type == "application/pdf"
    world.task(instance, "work_1st", "servicedesk")
    receipt = desk.mail_to(CUSTOMER, f"[{row.number}]")
    assert "Ihre Meldung ist eingegangen" in str(receipt["Subject"])

    # a reply to the receipt (In-Reply-To, subject changed by the customer) is logged; nothing waits for it yet
    desk.send(_customer_mail("noch was", "Der Router blinkt rot.", In_Reply_To=str(receipt["Message-ID"])))
    assert desk.started(2).reply and not desk.outcomes[1].reached_process
    assert desk.outcomes[1].incident_id == row.id
    entry = desk.log(row.id)[-1]
    assert entry.visibility == "public" and "Der Router blinkt rot." in entry.text and CUSTOMER in entry.author
    assert desk.incident(row.id).responded_at is None  # the customer's words are no response either

    # the agent asks back: the clock stops, the customer is asked, her mail continues the process
    world.complete(instance, "work_1st", "servicedesk", {"question": "Welche Lampen leuchten am Router?"})
    world.wait_for(lambda: "await_reply" in world.instance(instance)["activeElements"], "waiting for the customer")
    waiting = desk.incident(row.id)
    assert waiting.status == "pending" and waiting.pending_since is not None and waiting.responded_at is not None
    question = desk.mail_to(CUSTOMER, "wartet auf Ihre Rückmeldung")
    assert "Welche Lampen leuchten am Router?" in question.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    desk.send(_customer_mail(f"AW: {question['Subject']}", "Nur Power leuchtet."))
    assert desk.started(3).reached_process
    task = world.task(instance, "work_1st", "servicedesk")
    resumed = desk.incident(row.id)
    assert resumed.status == "assigned" and resumed.pending_since is None
    assert resumed.resolution_due >= waiting.resolution_due
    assert world.form_data(instance, "work_1st", "servicedesk")["reply_text"] == "Nur Power leuchtet."
    assert task["elementId"] == "work_1st"

    # resolved; her answer to the confirmation request is read by a person, who records it
    world.complete(instance, "work_1st", "servicedesk", {"resolution": "Leitung neu synchronisiert"})
    confirm = desk.mail_to(CUSTOMER, "bitte bestätigen")
    desk.send(_customer_mail(f"Re: {confirm['Subject']}", "Läuft wieder, danke!",
                             In_Reply_To=str(confirm["Message-ID"])))
    assert desk.started(4).reached_process
    world.complete(instance, "review_reply", "servicedesk", {"confirmed": True})
    world.wait_state(instance, "completed")
    assert desk.incident(row.id).status == "closed"
    assert "Läuft wieder, danke!" in [e.text for e in desk.log(row.id) if CUSTOMER in e.author][-1]


def test_an_unknown_sender_gets_an_incident_without_account_routed_to_triage(desk: Desk) -> None:
    world = desk.world
    message = EmailMessage()
    message["From"] = "Neukunde <info@neu.example>"
    message["To"] = DESK
    message["Subject"] = "<script>alert(1)</script> Kein Telefon"
    message.set_content("<html><body><style>p{}</style><p>Unser <b>Telefon</b> ist tot.</p>"
                        "<script>x()</script></body></html>", subtype="html")
    desk.send(message, sender="info@neu.example")
    outcome = desk.started(1)
    row = desk.incident(int(str(outcome.incident_id)))
    assert row.account_id is None and row.reporter_email == "info@neu.example"
    assert row.summary == "<script>alert(1)</script> Kein Telefon"  # kept as text; pages escape it
    assert "Unser Telefon ist tot." in row.description and "x()" not in row.description
    instance = str(outcome.instance_id)
    triage = world.form_data(instance, "triage", "servicedesk")
    assert triage["reporter_email"] == "info@neu.example"
    assert "[" + str(row.number) + "]" in str(desk.mail_to("info@neu.example", str(row.number))["Subject"])
    world.complete(instance, "triage", "servicedesk", {"account_id": desk.account_id})
    world.task(instance, "work_1st", "servicedesk")
    assert desk.incident(row.id).account_id == desk.account_id


def test_hostile_mail_is_refused_or_kept_never_fatal(desk: Desk) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send_to(desk, "root@silverflow.example")
    huge = b"From: " + CUSTOMER.encode() + b"\r\nSubject: gross\r\n\r\n" + b"A" * (3 * 1024 * 1024) + b"\r\n"
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPServerDisconnected)):
        desk.send(huge)
    broken = (b"From: =?unknown-8bit?B?////?= <" + CUSTOMER.encode() + b">\r\n"
              b"Subject: =?iso-8859-1?Q?Kaputt=FC?= \x01\x02\r\nMessage-ID: <<<>>>\r\n"
              b"Content-Type: multipart/mixed; boundary=\"nie-geschlossen\"\r\n\r\n"
              b"--nie-geschlossen\r\nContent-Type: text/plain; charset=klingonisch\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n!!!kein base64!!!\r\n")
    desk.send(broken)
    outcome = desk.started(1)
    row = desk.incident(int(str(outcome.incident_id)))
    assert row.account_id == desk.account_id and row.summary.startswith("Kaputtü")
    # a stranger naming the customer's incident number in the subject does not write into it
    spoof = EmailMessage()
    spoof["From"] = "angreifer@evil.example"
    spoof["To"] = DESK
    spoof["Subject"] = f"Re: [{row.number}] bitte Passwort zurücksetzen"
    spoof.set_content("Hallo")
    desk.send(spoof, sender="angreifer@evil.example")
    second = desk.started(2)
    assert not second.reply and second.incident_id != row.id
    assert all("angreifer" not in e.author for e in desk.log(row.id))
    assert len(desk.outcomes) == 2  # the oversize mail never reached the service desk


def _send_to(desk: Desk, recipient: str) -> None:
    with smtplib.SMTP("127.0.0.1", desk.port, timeout=30) as client:
        client.sendmail(CUSTOMER, [recipient], b"Subject: x\r\n\r\nx\r\n")


def test_parse_mail_reads_encodings_and_keeps_going_on_garbage() -> None:
    mail = parse_mail(b"From: =?utf-8?Q?J=C3=BCrgen?= <J@Example.org>\r\nSubject: =?iso-8859-1?Q?Gr=FC=DFe?=\r\n"
                      b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable"
                      b"\r\n\r\nSch=F6ne Gr=FC=DFe\r\n", "j@example.org")
    assert (mail.sender, mail.sender_name, mail.subject, mail.text) == ("j@example.org", "Jürgen", "Grüße",
                                                                         "Schöne Grüße")
    assert parse_mail(b"\xff\xfe\x00garbage", "x@example.org").sender == "x@example.org"
    spoofed = parse_mail(b"From: chef@silverflow.example\r\nSubject: a\r\n\r\nb", "x@evil.example")
    assert any("envelope" in d for d in spoofed.defects)
