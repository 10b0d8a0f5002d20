"""``mail.send`` and ``mail.serial``: business mails from Jinja2 template sets, sent over SMTP.

A template set is three files in ``mail_templates/``: ``<name>.subject.txt``, ``<name>.txt`` and (optional)
``<name>.html``. Values missing from a template are an error (``StrictUndefined``), never an empty gap in a
customer's mail. A recipient is an address (``to``) or a CRM contact (``contact_id``), whose name and letter
salutation ("Sehr geehrte Frau Dr. Schmidt") become template values. Each sent mail carries a Message-ID
derived from the job's idempotency key and is logged in ``mail_log``: a retried job finds its mail there and
sends nothing a second time; should a crash fall between sending and logging, the re-sent copy has the same
Message-ID, so mail clients show it once. Sent mails about a contact or an account are recorded as
``email_out`` activities in the CRM (the customer's communication history).

Recipients, templates and attachments a process names wrongly are business errors (``NoRecipient``,
``UnknownTemplate``, …); an unreachable SMTP server or a refused delivery is technical (the engine retries).
The local default is the SMTP sink of ``connectors.smtp_sink`` on 127.0.0.1:8025.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import smtplib
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, UndefinedError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.engine import Connection, Engine

from crm import validation
from crm.activities import ActivityInput, log_activity
from crm.campaigns import Mail, members, record_sent
from crm.errors import DomainError
from crm.salutation import letter_salutation
from crm.schema import account, campaign, contact

from .registry import BusinessError, ConnectorContext, Registry

TEMPLATES_DIR = Path(__file__).resolve().parent / "mail_templates"
DEFAULT_SENDER = "Silverflow ISP <service@silverflow.example>"
NEUTRAL_SALUTATION = "Sehr geehrte Damen und Herren"
AUTHOR = "silverflow"
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")

metadata = sa.MetaData()
mail_log = sa.Table(
    "mail_log", metadata,
    sa.Column("idempotency_key", sa.String(250), primary_key=True),
    sa.Column("message_id", sa.String(300), nullable=False),
    sa.Column("template", sa.String(100), nullable=False),
    sa.Column("recipients", sa.Text, nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("attachments", sa.Text, nullable=True),
    sa.Column("activity_id", sa.Integer, nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)


class MailDeliveryError(RuntimeError):
    """The SMTP server is unreachable or refused the mail: technical, so the engine retries."""


class MailSetupError(RuntimeError):
    """The connector lacks what an operation needs (e.g. the database for a contact): technical."""


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def _number(name: str, default: str, kind: type[int] | type[float]) -> Any:
    raw = os.environ.get(name, default)
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class MailConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    starttls: bool = False
    ssl: bool = False  # implicit TLS (SMTPS, usually port 465)
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = DEFAULT_SENDER
    timeout: float = 10.0
    documents_dir: Path = Path("var/documents")
    database_url: str | None = None

    def __post_init__(self) -> None:
        if self.starttls and self.ssl:
            raise ValueError("SILVERFLOW_SMTP_STARTTLS and SILVERFLOW_SMTP_SSL exclude each other: choose one")
        if "@" not in parseaddr(self.sender)[1]:
            raise ValueError(f"SILVERFLOW_MAIL_FROM {self.sender!r} has no e-mail address")

    @staticmethod
    def from_env() -> MailConfig:
        """The SMTP server from ``SILVERFLOW_SMTP_*``; the default is the local sink (``make run``)."""
        return MailConfig(
            host=os.environ.get("SILVERFLOW_SMTP_HOST", "127.0.0.1"),
            port=_number("SILVERFLOW_SMTP_PORT", "8025", int),
            starttls=_flag("SILVERFLOW_SMTP_STARTTLS", False),
            ssl=_flag("SILVERFLOW_SMTP_SSL", False),
            user=os.environ.get("SILVERFLOW_SMTP_USER", ""),
            password=os.environ.get("SILVERFLOW_SMTP_PASSWORD", ""),
            sender=os.environ.get("SILVERFLOW_MAIL_FROM", DEFAULT_SENDER),
            timeout=_number("SILVERFLOW_SMTP_TIMEOUT", "10", float),
            documents_dir=Path(os.environ.get("SILVERFLOW_DOCUMENTS_DIR", "var/documents")),
            database_url=os.environ.get("SILVERFLOW_DATABASE_URL"))

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @property
    def sender_name(self) -> str:
        return parseaddr(self.sender)[0] or "Silverflow"


# -- templates --------------------------------------------------------------------------------------------
def _money(value: Any) -> str:
    """German amount: 1.234,50 €, from a decimal string (amounts never pass through floats)."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    return f"{amount:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".") + " €"


def _as_datetime(value: Any) -> date | datetime | None:
    if isinstance(value, date | datetime):
        return value
    try:
        text = str(value)
        return datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
    except ValueError:
        return None


def _date(value: Any) -> str:
    parsed = _as_datetime(value)
    return parsed.strftime("%d.%m.%Y") if parsed is not None else str(value)


def _datetime(value: Any) -> str:
    parsed = _as_datetime(value)
    if isinstance(parsed, datetime):
        return parsed.strftime("%d.%m.%Y um %H:%M Uhr")
    return parsed.strftime("%d.%m.%Y") if parsed is not None else str(value)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class MailTemplates:
    """The template sets of one directory: a plain-text and an autoescaping HTML environment."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.directory = directory
        loader = FileSystemLoader(str(directory))
        filters = {"money": _money, "date": _date, "datetime": _datetime}
        self._text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined,
                                 keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
        self._html = Environment(loader=loader, autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                                 lstrip_blocks=True)
        for env in (self._text, self._html):
            env.filters.update(filters)

    def names(self) -> list[str]:
        return sorted(p.name[:-len(".subject.txt")] for p in self.directory.glob("*.subject.txt")
                      if self.exists(p.name[:-len(".subject.txt")]))

    def exists(self, name: str) -> bool:
        return bool(_TEMPLATE_NAME.match(name)) and (self.directory / f"{name}.subject.txt").is_file() \
            and (self.directory / f"{name}.txt").is_file()

    def require(self, name: str) -> None:
        if not self.exists(name):
            raise BusinessError("UnknownTemplate", f"no mail template '{name}' (known: {', '.join(self.names())})",
                                {"template": name})

    def render(self, name: str, values: Mapping[str, Any]) -> Rendered:
        """Subject (one line), text and HTML body; a missing value names the value and the template."""
        self.require(name)
        try:
            subject = " ".join(self._text.get_template(f"{name}.subject.txt").render(values).split())
            text = self._text.get_template(f"{name}.txt").render(values)
            html = self._html.get_template(f"{name}.html").render(values) \
                if (self.directory / f"{name}.html").is_file() else None
        except UndefinedError as exc:
            raise BusinessError("MissingTemplateValue", f"mail template '{name}': {exc.message}",
                                {"template": name}) from None
        except (TemplateError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            raise BusinessError("TemplateError", f"mail template '{name}': {exc}", {"template": name}) from None
        if not subject:
            raise BusinessError("TemplateError", f"mail template '{name}' renders an empty subject",
                                {"template": name})
        return Rendered(subject, text, html)


# -- parameters and results -------------------------------------------------------------------------------
class Attachment(BaseModel):
    """A file under the documents directory; ``document.render``'s result (with more fields) fits as it is."""

    model_config = ConfigDict(extra="ignore")
    path: str = Field(min_length=1)
    file_name: str | None = None


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return value if isinstance(value, list | tuple) else [value]


class _MailParams(BaseModel):
    template: str = Field(min_length=1, description="name of a template set in mail_templates/")
    values: dict[str, Any] = Field(default_factory=dict)
    attachments: list[str | Attachment] = Field(default_factory=list)

    @field_validator("attachments", mode="before")
    @classmethod
    def _attachment_list(cls, value: Any) -> Any:
        return _as_list(value)


class SendParams(_MailParams):
    to: str | None = Field(default=None, description="address; with contact_id it replaces the contact's")
    contact_id: int | None = None
    account_id: int | None = None
    campaign_id: int | None = Field(default=None, description="links the contact's history entry to the campaign")
    cc: list[str] = Field(default_factory=list)

    @field_validator("cc", mode="before")
    @classmethod
    def _cc_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return _as_list(value)


class SendResult(BaseModel):
    message_id: str
    recipients: list[str]
    subject: str
    attachments: list[str]
    activity_id: int | None
    already_sent: bool = False


class SerialParams(_MailParams):
    campaign_id: int | None = None
    contact_ids: list[int] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SerialParams:
        if (self.campaign_id is None) == (self.contact_ids is None):
            raise ValueError("give either campaign_id or contact_ids")
        return self


class Skipped(BaseModel):
    contact_id: int
    reason: str  # opted_out | no_email


class SerialResult(BaseModel):
    sent: int  # recipients who have the mail, in this attempt or an earlier one of the same job
    skipped: int
    already_sent: int
    skipped_contacts: list[Skipped]


# -- recipients -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipient:
    address: str
    display_name: str
    values: dict[str, Any]
    contact_id: int | None = None
    account_id: int | None = None


def contact_values(person: Any) -> dict[str, Any]:
    """What a template can say about a contact row (with ``account_name``): ``salutation`` is the letter's."""
    letter = letter_salutation(str(person.salutation), person.last_name, person.first_name, person.academic_title,
                               str(person.preferred_language))
    return {
        "salutation": letter,
        "letter_salutation": letter,
        "courtesy": person.salutation if person.salutation in ("Herr", "Frau") else "",
        "title": person.academic_title or "",
        "academic_title": person.academic_title or "",
        "first_name": person.first_name or "",
        "last_name": str(person.last_name),
        "account": person.account_name or "",
        "email": person.email or "",
    }


def _display_name(person: Any) -> str:
    return " ".join(str(p) for p in (person.academic_title, person.first_name, person.last_name) if p)


def _contact_query() -> sa.Select[Any]:
    return sa.select(contact, account.c.name.label("account_name")) \
        .outerjoin(account, account.c.id == contact.c.account_id)


def _address(value: str, field_name: str) -> str:
    try:
        checked = validation.email(value)
    except DomainError:
        checked = None
    if checked is None:
        raise BusinessError("InvalidAddress", f"{field_name}: {value!r} is not a valid e-mail address",
                            {"field": field_name})
    return checked


def message_id_for(idempotency_key: str, sender_address: str) -> str:
    """The same job (same idempotency key) always gets the same Message-ID: a re-sent retry is recognisable."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}.silverflow@{sender_address.rsplit('@', 1)[1]}>"


@contextmanager
def smtp_session(config: MailConfig) -> Iterator[smtplib.SMTP]:
    """A connected, authenticated SMTP client; every SMTP or network failure becomes a MailDeliveryError."""
    where = f"{config.host}:{config.port}"
    try:
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                  context=ssl.create_default_context()) if config.ssl \
            else smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailDeliveryError(f"cannot connect to SMTP server {where}: {exc}") from None
    try:
        if config.starttls:
            client.starttls(context=ssl.create_default_context())
        if config.user:
            client.login(config.user, config.password)
        yield client
    except smtplib.SMTPAuthenticationError as exc:
        raise MailDeliveryError(f"SMTP server {where} refused the login of {config.user!r}: "
                                f"{exc.smtp_code} {exc.smtp_error!r}") from None
    except smtplib.SMTPResponseException as exc:
        raise MailDeliveryError(f"SMTP server {where} replied {exc.smtp_code} {exc.smtp_error!r}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailDeliveryError(f"sending through SMTP server {where} failed: {exc}") from None
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


# -- the connector ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Outgoing:
    key: str
    template: str
    recipient: Recipient
    cc: list[str]
    rendered: Rendered
    files: list[tuple[str, bytes]]
    campaign_id: int | None = None


class Mailer:
    def __init__(self, config: MailConfig, templates: MailTemplates, engine: Engine | None = None) -> None:
        self.config = config
        self.templates = templates
        self.engine = engine

    # mail.send
    def send(self, params: SendParams, context: ConnectorContext) -> SendResult:
        """Render a template set for one recipient (address or CRM contact) and send it, once per job."""
        previous = self._logged(context.idempotency_key)
        if previous is not None:
            return previous
        self.templates.require(params.template)
        recipient = self._recipient(params)
        if params.campaign_id is not None:
            with self._engine("mail.send for a campaign").connect() as conn:
                self._require_campaign(conn, params.campaign_id)
        cc = [_address(address, "cc") for address in params.cc]
        rendered = self.templates.render(params.template, {**self._defaults(), **recipient.values, **params.values})
        outgoing = _Outgoing(context.idempotency_key, params.template, recipient, cc, rendered,
                             self._attachments(params.attachments), params.campaign_id)
        with smtp_session(self.config) as client:
            result = self._deliver(client, outgoing, context)
        context.logger.info("mail %s (%s) sent to %s", result.message_id, params.template,
                            ", ".join(result.recipients))
        return result

    # mail.serial
    def serial(self, params: SerialParams, context: ConnectorContext) -> SerialResult:
        """One personalised mail per campaign member (or listed contact); opted-out contacts get none."""
        self.templates.require(params.template)
        engine = self._engine("mail.serial")
        with engine.connect() as conn:
            people = self._serial_recipients(conn, params)
        skipped: list[Skipped] = []
        outgoing: list[_Outgoing] = []
        files = self._attachments(params.attachments)
        for person in people:
            if person.marketing_opt_out or not person.email:
                skipped.append(Skipped(contact_id=int(person.id),
                                       reason="opted_out" if person.marketing_opt_out else "no_email"))
                continue
            values = contact_values(person)
            recipient = Recipient(str(person.email), _display_name(person), values, int(person.id),
                                  None if person.account_id is None else int(person.account_id))
            # every mail is rendered before the first is sent: a missing value stops the run before it starts
            rendered = self.templates.render(params.template, {**self._defaults(), **params.values, **values})
            outgoing.append(_Outgoing(f"{context.idempotency_key}#contact-{person.id}", params.template, recipient,
                                      [], rendered, files, params.campaign_id))
        already = self._logged_keys([item.key for item in outgoing])
        pending = [item for item in outgoing if item.key not in already]
        if pending:
            with smtp_session(self.config) as client:
                for item in pending:
                    self._deliver(client, item, context)
        context.logger.info("serial mail %s: %d sent, %d skipped", params.template, len(outgoing), len(skipped))
        return SerialResult(sent=len(outgoing), skipped=len(skipped), already_sent=len(already),
                            skipped_contacts=skipped)

    # -- steps ------------------------------------------------------------------------------------------
    def _engine(self, why: str) -> Engine:
        if self.engine is None:
            raise MailSetupError(f"{why} needs the database (SILVERFLOW_DATABASE_URL or register(engine=…))")
        return self.engine

    def _defaults(self) -> dict[str, Any]:
        return {"sender_name": self.config.sender_name, "sender_email": self.config.sender_address}

    def _logged(self, key: str) -> SendResult | None:
        if self.engine is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(mail_log).where(mail_log.c.idempotency_key == key)).first()
        if row is None:
            return None
        return SendResult(message_id=row.message_id, recipients=row.recipients.split(", "), subject=row.subject,
                          attachments=row.attachments.split("\n") if row.attachments else [],
                          activity_id=row.activity_id, already_sent=True)

    def _logged_keys(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        if self.engine is None:
            return found
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                found.update(conn.execute(sa.select(mail_log.c.idempotency_key)
                                          .where(mail_log.c.idempotency_key.in_(keys[start:start + 500]))).scalars())
        return found

    def _recipient(self, params: SendParams) -> Recipient:
        """The address and template values of ``to`` or of the CRM contact, checked before anything is sent."""
        if params.contact_id is None and params.to is None:
            raise BusinessError("NoRecipient", "mail.send needs 'to' or 'contact_id'")
        person, account_name = None, None
        if params.contact_id is not None or params.account_id is not None:
            with self._engine("mail.send to a contact or an account").connect() as conn:
                if params.account_id is not None:
                    account_name = conn.execute(sa.select(account.c.name)
                                                .where(account.c.id == params.account_id)).scalar()
                    if account_name is None:
                        raise BusinessError("UnknownAccount", f"account {params.account_id} does not exist",
                                            {"account_id": params.account_id})
                if params.contact_id is not None:
                    person = conn.execute(_contact_query().where(contact.c.id == params.contact_id)).first()
        if params.contact_id is None:
            values = {"salutation": NEUTRAL_SALUTATION, **({"account": str(account_name)} if account_name else {})}
            return Recipient(_address(str(params.to), "to"), "", values, None, params.account_id)
        if person is None:
            raise BusinessError("NoRecipient", f"contact {params.contact_id} does not exist",
                                {"contact_id": params.contact_id})
        if params.account_id is not None and person.account_id not in (None, params.account_id):
            raise BusinessError("ContactNotOfAccount", f"contact {params.contact_id} belongs to another account",
                                {"contact_id": params.contact_id, "account_id": params.account_id})
        address = params.to or person.email
        if not address:
            raise BusinessError("NoRecipient", f"contact {params.contact_id} has no e-mail address",
                                {"contact_id": params.contact_id})
        account_id = params.account_id if params.account_id is not None else person.account_id
        return Recipient(_address(str(address), "to" if params.to else "email"), _display_name(person),
                         contact_values(person), int(person.id), None if account_id is None else int(account_id))

    def _serial_recipients(self, conn: Connection, params: SerialParams) -> list[Any]:
        if params.campaign_id is not None:
            self._require_campaign(conn, params.campaign_id)
            return list(members(conn, params.campaign_id))
        ids = sorted(set(params.contact_ids or []))
        if not ids:
            return []
        rows = list(conn.execute(_contact_query().where(contact.c.id.in_(ids))
                                 .order_by(contact.c.last_name, contact.c.id)))
        missing = sorted(set(ids) - {int(r.id) for r in rows})
        if missing:
            raise BusinessError("NoRecipient", f"contacts {missing} do not exist", {"contact_ids": missing})
        return rows

    @staticmethod
    def _require_campaign(conn: Connection, campaign_id: int) -> None:
        if conn.execute(sa.select(campaign.c.id).where(campaign.c.id == campaign_id)).first() is None:
            raise BusinessError("UnknownCampaign", f"campaign {campaign_id} does not exist",
                                {"campaign_id": campaign_id})

    def _attachments(self, items: Sequence[str | Attachment]) -> list[tuple[str, bytes]]:
        """Files under the documents directory only: a process cannot mail arbitrary files of the server."""
        base = self.config.documents_dir.resolve()
        files: list[tuple[str, bytes]] = []
        total = 0
        for item in items:
            raw, name = (item, None) if isinstance(item, str) else (item.path, item.file_name)
            candidate = Path(raw)
            if not candidate.is_absolute():  # "var/documents/x.pdf" (relative to here) or "x.pdf" (to the base)
                candidate = candidate if candidate.resolve().is_relative_to(base) else base / candidate
            resolved = candidate.resolve()
            if not resolved.is_relative_to(base):
                raise BusinessError("InvalidAttachment", f"attachment {raw!r} is not in the documents directory",
                                    {"attachment": raw})
            if not resolved.is_file():
                raise BusinessError("AttachmentNotFound", f"attachment {raw!r} does not exist", {"attachment": raw})
            data = resolved.read_bytes()
            total += len(data)
            if total > MAX_ATTACHMENT_BYTES:
                raise BusinessError("AttachmentTooLarge", f"attachments exceed {MAX_ATTACHMENT_BYTES // 2**20} MB")
            files.append((Path(name).name if name else resolved.name, data))
        return files

    def _message(self, item: _Outgoing, message_id: str, context: ConnectorContext) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.sender
        user, domain = item.recipient.address.rsplit("@", 1)
        try:
            message["To"] = Address(" ".join(item.recipient.display_name.split()), user, domain)
        except ValueError as exc:
            raise BusinessError("InvalidAddress", f"cannot address {item.recipient.address!r}: {exc}") from None
        if item.cc:
            message["Cc"] = ", ".join(item.cc)
        message["Subject"] = item.rendered.subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = message_id
        message["X-Silverflow-Template"] = item.template
        if context.business_key:
            message["X-Silverflow-Reference"] = " ".join(context.business_key.split())
        message.set_content(item.rendered.text)
        if item.rendered.html is not None:
            message.add_alternative(item.rendered.html, subtype="html")
        for file_name, data in item.files:
            mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
            maintype, subtype = mime.split("/", 1)
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=file_name)
        return message

    def _deliver(self, client: smtplib.SMTP, item: _Outgoing, context: ConnectorContext) -> SendResult:
        """Send one mail, then log it and record the activity in one transaction."""
        message_id = message_id_for(item.key, self.config.sender_address)
        recipients = [item.recipient.address, *item.cc]
        client.send_message(self._message(item, message_id, context), from_addr=self.config.sender_address,
                            to_addrs=recipients)
        names = [name for name, _data in item.files]
        subject = item.rendered.subject[:300]
        activity_id = None
        if self.engine is not None:
            try:
                with self.engine.begin() as conn:
                    activity_id = self._record(conn, item, subject, names)
                    conn.execute(mail_log.insert().values(
                        idempotency_key=item.key, message_id=message_id, template=item.template,
                        recipients=", ".join(recipients), subject=subject, attachments="\n".join(names) or None,
                        activity_id=activity_id, sent_at=datetime.now(UTC)))
            except sa.exc.IntegrityError:
                logged = self._logged(item.key)  # a concurrent attempt of the same job logged it first
                if logged is None:
                    raise
                return logged
        return SendResult(message_id=message_id, recipients=recipients, subject=item.rendered.subject,
                          attachments=names, activity_id=activity_id)

    @staticmethod
    def _record(conn: Connection, item: _Outgoing, subject: str, names: list[str]) -> int | None:
        recipient = item.recipient
        if recipient.contact_id is None and recipient.account_id is None:
            return None
        body = item.rendered.text + (f"\n\nAnhänge: {', '.join(names)}" if names else "")
        if item.campaign_id is not None and recipient.contact_id is not None:
            return record_sent(conn, item.campaign_id, Mail(recipient.contact_id, recipient.address, subject, body),
                               author=AUTHOR)
        return log_activity(conn, ActivityInput(kind="email_out", subject=subject, body=body, author=AUTHOR,
                                                account_id=recipient.account_id, contact_id=recipient.contact_id))


def register(registry: Registry, config: MailConfig | None = None, engine: Engine | None = None,
             templates_dir: Path | None = None) -> None:
    """``mail.send`` always; ``mail.serial`` (which reads the CRM) when there is a database."""
    config = config or MailConfig.from_env()
    if engine is None and config.database_url:
        engine = sa.create_engine(config.database_url)
    mailer = Mailer(config, MailTemplates(templates_dir or TEMPLATES_DIR), engine)
    registry.register("mail.send", mailer.send, SendParams, SendResult)
    if engine is not None:
        registry.register("mail.serial", mailer.serial, SerialParams, SerialResult)
