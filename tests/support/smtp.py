"""A real SMTP server's handler for tests (aiosmtpd on loopback): keeps every mail it receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any


@dataclass
class Collector:
    """aiosmtpd handler keeping every received mail; ``refuse`` answers RCPT TO with a 5xx reply."""

    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    refuse: bool = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        assert isinstance(message, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        return [message for _sender, _recipients, message in self.received]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]
