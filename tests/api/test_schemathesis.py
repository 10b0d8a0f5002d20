"""Property-based run of the OpenAPI document (schemathesis): no 5xx, no response contradicting the schema.

The app runs in process on a migrated SQLite file with a deployed process and an integration key that
holds every role, so generated requests reach the handlers instead of stopping at authentication.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.identity import Identity
from api.services import ConnectorGateway
from api.settings import Settings
from connectors import default_registry
from engine.database import Database
from engine.runtime import Engine
from tests.support import sample_process
from tests.support.databases import migrate

ROOT = Path(__file__).parents[2]
_tmp = tempfile.mkdtemp(prefix="silverflow-schemathesis-")
_url = f"sqlite:///{_tmp}/api.db"
migrate(_url)
_engine = Engine(Database(_url), ConnectorGateway(default_registry()))
_engine.deploy([("vacation-request.bpmn", sample_process.BPMN)])
_identity = Identity()
with _engine.db.transaction() as _conn:
    KEY = _identity.create_key(_conn, "fuzzer", ["admin", "integration", "designer", "manager"], [], "tests").secret
app = create_app(Settings(database_url=_url), _engine, run_worker=False, identity=_identity)

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


# What the issue asks: no server error, and every response (status, content type, body) as documented.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS)
