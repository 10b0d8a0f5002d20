"""The app served by a real Uvicorn on a loopback port, with API keys per role (API and browser tests)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from api.app import create_app
from api.identity import Identity
from api.services import ConnectorGateway
from api.settings import Settings
from connectors import default_registry
from connectors.registry import Registry
from engine.database import Database
from engine.runtime import Engine
from engine.stepper import StepLimits
from tests.support.servers import serve_app

# role → (roles, groups) of the API key each test client uses
PRINCIPALS = {
    "admin": (["admin"], ["hr"]),  # in hr too: the process tests observe confidential (HR) instances with it
    "designer": (["designer"], []),
    "manager": (["manager"], ["management"]),
    "sales": (["clerk"], ["sales"]),
    "backoffice": (["clerk"], ["backoffice"]),
    "provisioning": (["clerk"], ["provisioning"]),
    "servicedesk": (["clerk"], ["servicedesk"]),
    "support2": (["clerk"], ["support2"]),
    "billing": (["clerk"], ["billing"]),
    "hr": (["clerk"], ["hr"]),
    "staff": (["clerk"], ["staff"]),
    "integration": (["integration"], []),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Api:
    base_url: str
    engine: Engine
    identity: Identity
    keys: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        client = httpx.Client(base_url=self.base_url + "/api/v1", headers=headers, timeout=30)
        self.clients.append(client)
        return client


@contextmanager
def live_app(db_url: str, registry: Callable[[Database], Registry] | None = None,
             step_limits: StepLimits | None = None) -> Iterator[Api]:
    """``registry`` builds the connectors on the app's database (default: the basic ones only);
    ``step_limits`` bound each step as the server's own engine does (default: steps run to the wait state)."""
    database = Database(db_url)
    engine = Engine(database, ConnectorGateway(registry(database) if registry else default_registry()),
                    step_limits=step_limits)
    identity = Identity()
    app = create_app(Settings(database_url=db_url, worker_poll_seconds=0.02), engine, identity=identity)
    try:
        with serve_app(app, start_timeout=20) as base_url:
            result = Api(base_url, engine, identity)
            with engine.db.transaction() as conn:
                for who, (roles, groups) in PRINCIPALS.items():
                    result.keys[who] = identity.create_key(conn, f"test-{who}", roles, groups, "tests").secret
                identity.add_user(conn, "clara", "clara-password", ["clerk"], ["sales"])
            try:
                yield result
            finally:
                for client in result.clients:
                    client.close()
    finally:
        engine.db.dispose()
