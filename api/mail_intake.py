"""What a mail to the service desk becomes: a new incident process, or a log entry on the incident it answers.

The SMTP listener (``connectors.mail_intake``) hands every accepted mail to :class:`ServiceDeskMail`:

- A mail that continues an incident — its number in the subject (``[I-2026-00021]``, ``Re: Störung I-2026-00021
  behoben``) from a person of the incident's account or its reporter, or any answer to one of our own mails
  about it (In-Reply-To/References found in ``mail_log``) — becomes a public log entry by the customer, its
  attachments documents of the account, and the message ``incident_reply`` (correlation key ``incident_id``)
  to the running incident process, which takes it where it waits for the customer (pending, or asked to
  confirm the solution). Nothing waits: the log entry is all.
- Any other mail starts the ``incident`` process (origin ``mail``) for the contact and account found by the
  sender's address; an unknown sender's incident has no account and is routed to triage by the process.

The mail is kept as an ``email_in`` activity in the customer's history with its attachments as documents.
Defects (broken MIME, a From differing from the envelope sender, cut text) are noted in the incident, never
fatal. A technical failure (database away) raises, so the listener answers 451 and the sender retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from connectors.mail_intake import IncomingMail, IntakeRefused, answered_subjects
from crm import service_desk
from crm.activities import ActivityInput, log_activity
from crm.documents import DocumentLinks, DocumentStore, accepted_type
from crm.errors import DomainError
from engine.errors import NotFound
from engine.runtime import Engine

log = logging.getLogger(__name__)

PROCESS_KEY = "incident"
REPLY_MESSAGE = "incident_reply"


@dataclass
class Outcome:
    """What became of one mail (for logs and tests)."""

    incident_id: int | None = None
    instance_id: str | None = None
    reply: bool = False
    reached_process: bool = False
    document_ids: list[int] = field(default_factory=list)


class ServiceDeskMail:
    def __init__(self, engine: Engine, documents: DocumentStore | None = None,
                 process_key: str = PROCESS_KEY) -> None:
        self.engine = engine
        self.documents = documents or DocumentStore()
        self.process_key = process_key

    def __call__(self, mail: IncomingMail) -> Outcome:
        if "@" not in mail.sender:
            raise IntakeRefused("a mail to the service desk needs a sender address")
        now = datetime.now(UTC)
        outcome = Outcome()
        with self.engine.db.transaction() as conn:
            target = self._continues(conn, mail)
            account_id, contact_id = service_desk.sender_of(conn, mail.sender)
            if target is not None:
                account_id = None if target.account_id is None else int(str(target.account_id))
                contact_id = contact_id if account_id is not None and contact_id is not None else None
            activity_id = self._history(conn, mail, account_id, contact_id, now)
            outcome.document_ids = self._keep_attachments(conn, mail, account_id, activity_id, now)
            if target is not None:
                outcome.incident_id, outcome.reply = int(str(target.id)), True
                service_desk.add_log_entry(conn, outcome.incident_id, f"{mail.sender_name or 'Kunde'} <{mail.sender}>"
                                           [:200], self._log_text(mail, outcome.document_ids), "public", now,
                                           by_agent=False)
        if target is not None:
            outcome.reached_process = self._tell_process(outcome.incident_id, mail)
            log.info("mail from %s added to incident %s (process reached: %s)", mail.sender, target.number,
                     outcome.reached_process)
            return outcome
        started = self.engine.start(self.process_key, self._variables(mail, account_id, contact_id,
                                                                        outcome.document_ids))
        outcome.instance_id = started.id
        incident = started.variables.get("incident")
        if isinstance(incident, dict) and isinstance(incident.get("incident_id"), int):
            outcome.incident_id = incident["incident_id"]
        log.info("mail from %s started incident process %s", mail.sender, started.id)
        return outcome

    # -- steps ----------------------------------------------------------------------------------------------
    @staticmethod
    def _continues(conn: Connection, mail: IncomingMail) -> Any:
        ours = [n for subject in answered_subjects(conn, mail.refers_to)
                for n in service_desk.incident_numbers_in(subject)]
        target = service_desk.reply_target(conn, ours, mail.sender, answers_our_mail=True) if ours else None
        if target is None:
            target = service_desk.reply_target(conn, service_desk.incident_numbers_in(mail.subject), mail.sender)
        if target is not None and target.status == "closed":
            return None  # a closed incident stays closed: the mail is a new request
        return target

    @staticmethod
    def _history(conn: Connection, mail: IncomingMail, account_id: int | None, contact_id: int | None,
                 now: datetime) -> int | None:
        if account_id is None and contact_id is None:
            return None
        return log_activity(conn, ActivityInput(kind="email_in", subject=mail.subject or "(ohne Betreff)",
                                                author=mail.sender[:200], body=mail.text or None,
                                                account_id=account_id, contact_id=contact_id), now=now)

    def _keep_attachments(self, conn: Connection, mail: IncomingMail, account_id: int | None,
                          activity_id: int | None, now: datetime) -> list[int]:
        ids = []
        for item in mail.attachments:
            try:
                mime = accepted_type(item.data, item.mime_type, item.file_name)
            except DomainError:
                mime = "application/octet-stream"  # kept, served as a download like any document
            try:
                ids.append(self.documents.store(conn, item.data, item.file_name, mime,
                                                DocumentLinks(account_id=account_id, activity_id=activity_id),
                                                uploaded_by=mail.sender[:200], now=now))
            except DomainError as exc:
                mail.defects.append(f"attachment {item.file_name!r} not kept: {exc}")
        return ids

    @staticmethod
    def _log_text(mail: IncomingMail, document_ids: list[int]) -> str:
        parts = [f"E-Mail: {mail.subject or '(ohne Betreff)'}", mail.text or "(kein Text)"]
        if document_ids:
            parts.append(f"Anhänge: Dokumente {', '.join(map(str, document_ids))}")
        if mail.defects:
            parts.append("Hinweis: " + "; ".join(mail.defects[:10]))
        return "\n\n".join(parts)[:20000]

    def _tell_process(self, incident_id: int | None, mail: IncomingMail) -> bool:
        """Deliver ``incident_reply`` to the incident's process if it waits for the customer."""
        try:
            reached = self.engine.correlate_message(
                REPLY_MESSAGE, {"reply_text": mail.text[:10000], "reply_from": mail.sender,
                                "reply_subject": mail.subject},
                correlation_keys={"incident_id": incident_id})
        except NotFound:
            return False
        return bool(reached)

    @staticmethod
    def _variables(mail: IncomingMail, account_id: int | None, contact_id: int | None,
                   document_ids: list[int]) -> dict[str, Any]:
        description = mail.text or "(kein Text)"
        if document_ids:
            description += f"\n\nAnhänge: Dokumente {', '.join(map(str, document_ids))}"
        if mail.defects:
            description += "\n\nHinweis: " + "; ".join(mail.defects[:10])
        return {"account_id": account_id, "contact_id": contact_id,
                "summary": mail.subject or "(ohne Betreff)", "description": description[:20000],
                "impact": "medium", "urgency": "medium", "origin": "mail", "category": None,
                "reporter_email": mail.sender, "document_ids": document_ids}
