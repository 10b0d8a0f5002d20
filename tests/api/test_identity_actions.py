"""``identity.user``: a user account's display name and address; an API key or an unknown name has no address."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.identity import Identity
from api.identity_actions import OPERATOR, register
from connectors.registry import ConnectorContext, InvalidParameters, Registry
from engine.database import Database

CONTEXT = ConnectorContext(idempotency_key="job-1", instance_id="i-1", element_id="employee_lookup")


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    database = Database(db_url)
    identity = Identity()
    with database.transaction() as conn:
        identity.add_user(conn, "kim", "kim-password", ["clerk"], ["staff"], display_name="Kim Becker",
                          email="kim.becker@silverflow.example")
        identity.add_user(conn, "ole", "ole-password", ["clerk"], ["staff"])  # no address on file
    registry = Registry()
    register(registry, database.engine, identity)
    yield registry
    database.dispose()


def test_a_user_gets_their_display_name_and_address(registry: Registry) -> None:
    assert registry.run(OPERATOR, {"username": "kim"}, CONTEXT) == {
        "username": "kim", "display_name": "Kim Becker", "email": "kim.becker@silverflow.example"}


def test_a_user_without_an_address_has_none(registry: Registry) -> None:
    assert registry.run(OPERATOR, {"username": "ole"}, CONTEXT) == {
        "username": "ole", "display_name": "ole", "email": None}


@pytest.mark.parametrize("name", ["key:test-staff", "nobody"])
def test_an_api_key_or_unknown_name_is_shown_as_itself_without_address(registry: Registry, name: str) -> None:
    assert registry.run(OPERATOR, {"username": name}, CONTEXT) == {
        "username": name, "display_name": name, "email": None}


def test_a_missing_username_is_a_parameter_error_naming_it(registry: Registry) -> None:
    with pytest.raises(InvalidParameters, match="username"):
        registry.run(OPERATOR, {"username": None}, CONTEXT)
    assert registry.check(OPERATOR, set()) == f"operator '{OPERATOR}': missing parameter(s) username"
