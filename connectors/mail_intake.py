"""Mail coming in: an SMTP listener (aiosmtpd) for the service desk's address, and the MIME reading behind it.

The listener accepts mail for the configured addresses only (``SILVERFLOW_INTAKE_ADDRESSES``, default the
address of ``SILVERFLOW_MAIL_FROM``), refuses mail over ``SILVERFLOW_INTAKE_MAX_BYTES`` (10 MiB) at the SMTP
level (``552``, the sender's server bounces it), and hands every accepted mail, parsed into an
:class:`IncomingMail`, to a ``deliver`` callback in a worker thread — never on the listener's event loop. Only
when ``deliver`` returns is the mail answered with ``250``; a technical failure answers ``451`` so the sending
server tries again later, and a mail that cannot be read at all is still delivered (as text, flagged).

:func:`parse_mail` reads real-world MIME: multipart/alternative and mixed, quoted-printable and base64, RFC 2047
headers in UTF-8 or ISO-8859-1, HTML-only bodies (turned into text, scripts and styles dropped), attachments
(kept as bytes with a clean file name), and broken structure (read as far as possible, ``defects`` noted).
:func:`answered_subjects` finds our own sent mails a reply refers to (In-Reply-To / References against
``mail_log``), which is how a reply to a confirmation mail finds its incident even with a changed subject.

``python -m connectors.mail_intake`` is not offered: the app runs the listener (``silverflow serve
--local-systems`` or ``silverflow mail-intake``), since what a mail becomes is the service desk's business.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Connection

from crm.documents import clean_file_name

from .mail import DEFAULT_SENDER, mail_log

log = logging.getLogger(__name__)

DEFAULT_PORT = 8026
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_TEXT = 20000
MAX_SUBJECT = 300
MAX_ATTACHMENTS = 20
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,300}>")


class IntakeRefused(Exception):
    """A mail the service desk will not take (e.g. no usable sender); answered with a permanent 550."""


@dataclass(frozen=True)
class Attachment:
    file_name: str
    mime_type: str
    data: bytes


@dataclass
class IncomingMail:
    sender: str  # the From address (lower case), or the envelope sender when From has none
    sender_name: str
    subject: str  # one line, control characters removed, at most 300 characters
    text: str  # the plain text (or the HTML part as text), at most 20 000 characters
    message_id: str | None
    refers_to: list[str]  # In-Reply-To and References message ids
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)  # what was wrong with the mail (kept, flagged)
    envelope_sender: str = ""
    size: int = 0


# -- MIME ---------------------------------------------------------------------------------------------------
class _TextOfHtml(HTMLParser):
    """HTML to readable text: block elements become line breaks, scripts and styles vanish."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table",
                        "pre", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # HTMLParser on hopeless markup
        return re.sub(r"<[^>]*>", " ", html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _one_line(value: str, limit: int) -> str:
    text = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(text.split())[:limit]


def _header(message: Message, name: str, defects: list[str]) -> str:
    try:
        value = message.get(name)
        return "" if value is None else str(value)
    except Exception as exc:  # noqa: BLE001 - a header the policy cannot parse must not lose the mail
        defects.append(f"header {name}: {type(exc).__name__}")
        for key, raw in message.raw_items():  # the unparsed value (the policy's parser gave up on it)
            if key.lower() == name.lower():
                return str(raw)
        return ""


def _decoded_text(part: Message, defects: list[str]) -> str:
    try:
        if isinstance(part, EmailMessage):
            return str(part.get_content())
    except (LookupError, ValueError, UnicodeError, AssertionError, KeyError) as exc:
        defects.append(f"body {part.get_content_type()}: {type(exc).__name__}")
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("latin-1")
    return str(part.get_payload())


def parse_mail(data: bytes, envelope_sender: str = "") -> IncomingMail:
    """Read a mail as sent (bytes); never raises for bad content: what cannot be read is in ``defects``."""
    defects: list[str] = []
    try:
        message: Message = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:  # noqa: BLE001 - the parser itself failing is a defect of the mail
        defects.append(f"unreadable mail: {type(exc).__name__}")
        message = EmailMessage()
        message.set_content(data.decode("utf-8", errors="replace"))
    defects.extend(type(d).__name__ for d in getattr(message, "defects", [])[:20])
    from_header = _header(message, "From", defects)
    addresses = [a for _n, a in getaddresses([from_header]) if "@" in a]
    name, _ = parseaddr(from_header)
    sender = (addresses[0] if addresses else envelope_sender).strip().lower()
    if len(addresses) > 1:
        defects.append("several From addresses")
    if envelope_sender and sender and envelope_sender.strip().lower() != sender:
        defects.append(f"From {sender} differs from the envelope sender {envelope_sender.strip().lower()}")
    refers = _MESSAGE_ID.findall(_header(message, "In-Reply-To", defects) + " "
                                 + _header(message, "References", defects))
    message_ids = _MESSAGE_ID.findall(_header(message, "Message-ID", defects))
    text, html = "", ""
    attachments: list[Attachment] = []
    try:
        parts = list(message.walk())
    except Exception as exc:  # noqa: BLE001
        defects.append(f"structure: {type(exc).__name__}")
        parts = [message]
    for part in parts[:200]:
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        kind = part.get_content_type()
        file_name = part.get_filename() if disposition in ("attachment", "inline") or kind not in (
            "text/plain", "text/html") else None
        if disposition == "attachment" or file_name:
            if len(attachments) >= MAX_ATTACHMENTS:
                defects.append("too many attachments")
                continue
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                clean = clean_file_name(str(file_name or "anhang")).replace("/", "_").replace("\\", "_")[:200]
                attachments.append(Attachment(clean or "anhang", kind, payload))
            continue
        if kind == "text/plain" and not text:
            text = _decoded_text(part, defects)
        elif kind == "text/html" and not html:
            html = _decoded_text(part, defects)
    if not text.strip() and html:
        text = html_to_text(html)
    body = text.replace("\r\n", "\n").strip()
    if len(body) > MAX_TEXT:
        body = body[:MAX_TEXT] + "\n[…gekürzt]"
        defects.append("text cut")
    return IncomingMail(sender=sender, sender_name=_one_line(name, 200),
                        subject=_one_line(_header(message, "Subject", defects), MAX_SUBJECT),
                        text=body, message_id=message_ids[0] if message_ids else None, refers_to=refers[:50],
                        attachments=attachments, defects=defects, envelope_sender=envelope_sender,
                        size=len(data))


def answered_subjects(conn: Connection, message_ids: list[str]) -> list[str]:
    """The subjects of our own sent mails among ``message_ids`` (a reply's In-Reply-To and References)."""
    if not message_ids:
        return []
    return [str(s) for s in conn.execute(sa.select(mail_log.c.subject)
                                         .where(mail_log.c.message_id.in_(message_ids[:50]))).scalars()]


# -- the listener -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntakeConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    addresses: tuple[str, ...] = ("service@silverflow.example",)
    max_bytes: int = DEFAULT_MAX_BYTES

    @staticmethod
    def from_env() -> IntakeConfig:
        """``SILVERFLOW_INTAKE_HOST`` / ``_PORT`` / ``_ADDRESSES`` (comma-separated) / ``_MAX_BYTES``."""
        default_address = parseaddr(os.environ.get("SILVERFLOW_MAIL_FROM", DEFAULT_SENDER))[1]
        raw = os.environ.get("SILVERFLOW_INTAKE_ADDRESSES", default_address)
        try:
            port = int(os.environ.get("SILVERFLOW_INTAKE_PORT", str(DEFAULT_PORT)))
            max_bytes = int(os.environ.get("SILVERFLOW_INTAKE_MAX_BYTES", str(DEFAULT_MAX_BYTES)))
        except ValueError as exc:
            raise ValueError(f"SILVERFLOW_INTAKE_PORT and _MAX_BYTES must be numbers: {exc}") from None
        return IntakeConfig(os.environ.get("SILVERFLOW_INTAKE_HOST", "127.0.0.1"), port,
                            tuple(a.strip().lower() for a in raw.split(",") if a.strip()), max_bytes)


Deliver = Callable[[IncomingMail], object]


class IntakeHandler:
    """aiosmtpd handler: only our addresses, then parse and deliver in a thread."""

    def __init__(self, deliver: Deliver, addresses: tuple[str, ...]) -> None:
        self.deliver = deliver
        self.addresses = {a.lower() for a in addresses}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if self.addresses and address.strip().lower() not in self.addresses:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else str(content).encode("utf-8", errors="replace")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._take, data, str(envelope.mail_from or ""))
        except IntakeRefused as exc:
            return f"550 5.7.1 {_one_line(str(exc), 200)}"
        except Exception:  # noqa: BLE001 - the sender's server keeps the mail and tries again
            log.exception("mail intake failed; answered 451 so the sender retries")
            return "451 4.3.0 temporary failure, please try again later"
        return "250 Message accepted for delivery"

    def _take(self, data: bytes, envelope_sender: str) -> None:
        self.deliver(parse_mail(data, envelope_sender))


def start_intake(deliver: Deliver, config: IntakeConfig | None = None) -> Controller:
    """A running listener (a thread with its own event loop); call ``stop()`` on the result."""
    cfg = config or IntakeConfig.from_env()
    controller = Controller(IntakeHandler(deliver, cfg.addresses), hostname=cfg.host, port=cfg.port,
                            data_size_limit=cfg.max_bytes, server_hostname="silverflow-intake")
    controller.start()
    return controller


__all__ = ["Attachment", "IncomingMail", "IntakeConfig", "IntakeRefused", "answered_subjects",
           "html_to_text", "parse_mail", "start_intake"]
