"""The external systems of a one-machine installation (``make run``): an SMTP sink writing ``var/outbox``, the
domain registrar and the hardware supplier simulators, each on loopback at the port the connectors default to.

A real installation points ``SILVERFLOW_SMTP_*``, ``SILVERFLOW_REGISTRAR_*`` and ``SILVERFLOW_SUPPLIER_*`` at its
systems and serves without ``--local-systems``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from connectors.simulators import registrar, supplier
from connectors.smtp_sink import outbox_dir, start_sink

REGISTRAR_PORT = 8101
SUPPLIER_PORT = 8102
SMTP_PORT = 8025


@dataclass
class LocalSystems:
    servers: list[uvicorn.Server] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    smtp: Any = None

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        for thread in self.threads:
            thread.join(timeout=5)
        if self.smtp is not None:
            self.smtp.stop()


def start_local_systems(callback_url: str, callback_token: str) -> LocalSystems:
    """Start the sink and the simulators in this process; the supplier reports shipments to ``callback_url``."""
    systems = LocalSystems(smtp=start_sink(outbox_dir(), port=SMTP_PORT))
    apps = [(registrar.create_app("demo-registrar-key", activation_seconds=2.0), REGISTRAR_PORT),
            (supplier.create_app("demo-supplier-key", callback_url=callback_url, callback_token=callback_token,
                                 ship_after_seconds=30.0), SUPPLIER_PORT)]
    for app, port in apps:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True, name=f"local-system-{port}")
        thread.start()
        systems.servers.append(server)
        systems.threads.append(thread)
    return systems
