"""The external systems of a one-machine installation (``make run``): an SMTP sink writing ``var/outbox``, the
domain registrar and the hardware supplier simulators, each on loopback at the port the connectors default to,
and the service desk's incoming mail (an SMTP listener on 127.0.0.1:8026 for service@silverflow.example, see
``connectors.mail_intake``) when a ``mail_intake`` is given.

The simulators' loopback ports are allowed for outbound calls (``http.request``) while they run, so a designer
can try a process against them; the outbound policy denies loopback otherwise (``connectors.outbound``).

A real installation points ``SILVERFLOW_SMTP_*``, ``SILVERFLOW_REGISTRAR_*`` and ``SILVERFLOW_SUPPLIER_*`` at its
systems and serves without ``--local-systems``.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

from connectors import outbound
from connectors.mail_intake import Deliver, IntakeConfig, start_intake
from connectors.simulators import registrar, supplier
from connectors.smtp_sink import outbox_dir, start_sink

from .servers import serve_app

REGISTRAR_PORT = 8101
SUPPLIER_PORT = 8102
SMTP_PORT = 8025


@dataclass
class LocalSystems:
    running: ExitStack = field(default_factory=ExitStack)

    def stop(self) -> None:
        self.running.close()


def start_local_systems(callback_url: str, callback_token: str, mail_intake: Deliver | None = None) -> LocalSystems:
    """Start the sink and the simulators in this process; the supplier reports shipments to ``callback_url``.

    Raises ``OSError`` when one of the ports is taken (another installation runs them), with nothing left running.
    """
    systems = LocalSystems()
    with ExitStack() as starting:
        sink = start_sink(outbox_dir(), port=SMTP_PORT)
        starting.callback(sink.stop)
        if mail_intake is not None:
            intake = start_intake(mail_intake, IntakeConfig.from_env())
            starting.callback(intake.stop)
        starting.enter_context(serve_app(registrar.create_app("demo-registrar-key", activation_seconds=2.0),
                                         REGISTRAR_PORT))
        starting.enter_context(serve_app(supplier.create_app(
            "demo-supplier-key", callback_url=callback_url, callback_token=callback_token, ship_after_seconds=30.0),
            SUPPLIER_PORT))
        local = [f"127.0.0.1:{REGISTRAR_PORT}", f"127.0.0.1:{SUPPLIER_PORT}"]
        outbound.allow(*local)
        starting.callback(outbound.disallow, *local)
        systems.running = starting.pop_all()
    return systems
