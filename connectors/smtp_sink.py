"""A local SMTP server that delivers nothing: every mail lands as an ``.eml`` file in an outbox folder.

The default for ``make run``, so processes can "send" quotes and invoices on a laptop and the outbox page
shows what a customer would have received. ``python -m connectors.smtp_sink [--host] [--port] [--dir]``
runs it until interrupted (default 127.0.0.1:8025 into ``$SILVERFLOW_OUTBOX_DIR`` or ``var/outbox``).
File names start with the receive time in nanoseconds, so sorting by name is sorting by time; a file is
written under a temporary name and renamed, so a reader never sees half a mail.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
import uuid
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
MAIL_NAME = re.compile(r"^\d{20}-[0-9a-f]{8}\.eml$")


def outbox_dir() -> Path:
    return Path(os.environ.get("SILVERFLOW_OUTBOX_DIR", "var/outbox"))


class OutboxHandler:
    """aiosmtpd handler: accept every mail and write it, with its envelope, into ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode("utf-8")
        envelope_lines = (f"X-Envelope-From: <{envelope.mail_from}>\r\n"
                          f"X-Envelope-To: {', '.join(f'<{r}>' for r in envelope.rcpt_tos)}\r\n").encode()
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.directory / f".{name}.part"
        temporary.write_bytes(envelope_lines + data)
        os.replace(temporary, self.directory / name)
        return "250 Message accepted for delivery"


def start_sink(directory: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Controller:
    """A running sink (a thread with its own event loop); call ``stop()`` on the result."""
    controller = Controller(OutboxHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


# -- reading the outbox -------------------------------------------------------------------------------------
def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    assert isinstance(message, EmailMessage)  # policy.default always builds EmailMessage
    return message


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is not None and isinstance(part, EmailMessage):
        return str(part.get_content()).replace("\r\n", "\n")
    html = message.get_body(preferencelist=("html",))
    if html is not None and isinstance(html, EmailMessage):
        return re.sub(r"<[^>]+>", "", str(html.get_content())).replace("\r\n", "\n")
    return ""


def _date_of(message: EmailMessage, path: Path) -> datetime | None:
    header = message.get("Date")
    if header:
        try:
            return parsedate_to_datetime(str(header))
        except (TypeError, ValueError):
            pass
    stamp = path.name.split("-", 1)[0]
    return datetime.fromtimestamp(int(stamp) / 1e9).astimezone() if stamp.isdigit() else None


def summarise(path: Path) -> dict[str, Any]:
    """What the outbox page shows of one mail."""
    message = _parse(path)
    return {
        "name": path.name,
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "") or message.get("X-Envelope-To", "")),
        "cc": str(message.get("Cc", "")),
        "subject": str(message.get("Subject", "")),
        "date": _date_of(message, path),
        "message_id": str(message.get("Message-ID", "")),
        "text": _text_of(message),
        "has_html": message.get_body(preferencelist=("html",)) is not None,
        "attachments": [part.get_filename() or "unbenannt" for part in message.iter_attachments()],
        "size": path.stat().st_size,
    }


def read_outbox(directory: Path | str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` mails of the outbox, newest first (a missing folder is an empty outbox)."""
    folder = Path(directory) if directory is not None else outbox_dir()
    if not folder.is_dir() or limit <= 0:
        return []
    names = sorted((p.name for p in folder.iterdir() if MAIL_NAME.match(p.name)), reverse=True)[:limit]
    return [summarise(folder / name) for name in names]


def read_mail(directory: Path | str | None, name: str) -> dict[str, Any] | None:
    """One mail by file name, or None; names that are not outbox file names never touch the file system."""
    folder = Path(directory) if directory is not None else outbox_dir()
    if not MAIL_NAME.match(name) or not (folder / name).is_file():
        return None
    return summarise(folder / name)


# -- command line -------------------------------------------------------------------------------------------
def _interrupt(_signum: int, _frame: Any) -> None:
    """SIGTERM stops the sink like Ctrl+C does, so the listening socket is closed cleanly."""
    raise KeyboardInterrupt
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.smtp_sink",
                                     description="Local SMTP sink: writes every received mail as .eml into a folder.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--dir", type=Path, default=None, help="outbox folder (default $SILVERFLOW_OUTBOX_DIR "
                                                                "or var/outbox)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, not {args.port}")
    directory = args.dir or outbox_dir()
    try:
        controller = start_sink(directory, args.host, args.port)
    except (OSError, RuntimeError) as exc:
        print(f"smtp_sink: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"SMTP sink on {args.host}:{args.port}, writing mails to {directory.resolve()} (Ctrl+C stops)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
