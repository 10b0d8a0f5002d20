"""``silverflow mail-intake``: the listener as its own process (what a real installation's MX forwards to). A mail
sent to it with smtplib becomes an incident process instance; a worker run records the incident; SIGTERM ends it."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from api.cli import main
from crm.accounts import ContactInput, create_account, create_contact
from crm.schema import incident
from tests.support.live_app import free_port
from tests.support.sessions import wait_for

ROOT = Path(__file__).parents[2]


def test_mail_intake_command_turns_a_mail_into_an_incident(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    assert main(["--database-url", url, "migrate"]) == 0
    files = [str(ROOT / "processes" / "incident.bpmn"), *(str(p) for p in (ROOT / "forms").glob("incident-*.json"))]
    assert main(["--database-url", url, "deploy", *files]) == 0
    database = sa.create_engine(url)
    with database.begin() as conn:
        account_id = create_account(conn, "Kanzlei Berg", sla_class="bronze")
        create_contact(conn, ContactInput(last_name="Berg", email="berg@kanzlei.example"), account_id)
    port = free_port()
    env = {**os.environ, "SILVERFLOW_INTAKE_ADDRESSES": "stoerung@silverflow.example",
           "SILVERFLOW_DOCUMENTS_DIR": str(tmp_path / "documents")}
    listener = subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "mail-intake", "--port",
                                 str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert "E-Mail-Annahme auf 127.0.0.1" in listener.stdout.readline()
        message = EmailMessage()
        message["From"] = "berg@kanzlei.example"
        message["To"] = "stoerung@silverflow.example"
        message["Subject"] = "Drucker im Netz nicht erreichbar"
        message.set_content("Seit dem Update erreichen wir den Drucker nicht mehr.")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.send_message(message)
        assert main(["--database-url", url, "worker", "--once"]) == 0

        def recorded() -> sa.Row[tuple[object, ...]] | None:
            with database.connect() as conn:
                return conn.execute(sa.select(incident)).first()
        row = wait_for(recorded, "the incident recorded by the process's first step", 20)
        assert (row.account_id, row.origin, row.summary) == (account_id, "mail", "Drucker im Netz nicht erreichbar")
        listener.send_signal(signal.SIGTERM)
        assert listener.wait(timeout=20) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
        database.dispose()
