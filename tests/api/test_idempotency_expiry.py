"""Idempotency keys whose request died mid-way (issues 21/22): the reservation is released when its owner
process is gone, or after a bound when the owner cannot be checked, so a retry runs the start afresh (exactly one
instance) instead of answering 409 "still being processed" forever; a finished start is replayed with its id."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.idempotency import reserve
from api.identity import idempotency_record
from engine.schema import process_instance
from tests.api.conftest import Api
from tests.api.test_rest import _deploy

ROOT = Path(__file__).parents[2]
START = "/process-definitions/vacation-request/instances"

KILLED_OWNER = """
import os, signal, sys
sys.path.insert(0, {root!r})
from engine.database import Database
from api.idempotency import reserve
assert reserve(Database({url!r}), {key!r}, {principal!r}, "start:vacation-request") is None
os.kill(os.getpid(), signal.SIGKILL)
"""


def _principal(api: Api) -> str:
    """The name the integration key's requests are recorded under (learned from a finished idempotent start)."""
    answer = api.client("integration").post(START, headers={"Idempotency-Key": "probe"}, json={})
    assert answer.status_code == 201
    with api.engine.db.read() as conn:
        return str(conn.execute(sa.select(idempotency_record.c.principal)
                                .where(idempotency_record.c.key == "probe")).scalar_one())


def _instances(api: Api) -> int:
    with api.engine.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(process_instance)).scalar_one())


def test_a_reservation_of_a_killed_process_is_released_at_once(api: Api) -> None:
    _deploy(api)
    principal = _principal(api)
    before = _instances(api)
    owner = subprocess.run([sys.executable, "-c", KILLED_OWNER.format(
        root=str(ROOT), url=api.engine.db.url, key="died-mid-way", principal=principal)], cwd=ROOT, check=False)
    assert owner.returncode == -signal.SIGKILL  # a real process took the key and died holding it
    client = api.client("integration")
    first = client.post(START, headers={"Idempotency-Key": "died-mid-way"}, json={})
    assert first.status_code == 201, first.text
    again = client.post(START, headers={"Idempotency-Key": "died-mid-way"}, json={})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert _instances(api) == before + 1


def test_a_reservation_of_another_host_is_released_after_the_bound(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _deploy(api)
    principal = _principal(api)
    before = _instances(api)
    assert reserve(api.engine.db, "elsewhere", principal, "start:vacation-request") is None
    with api.engine.db.transaction() as conn:  # owned by a server on another machine, which then died
        conn.execute(idempotency_record.update().where(idempotency_record.c.key == "elsewhere")
                     .values(response='{"owner": ["other-host", 4242, "1"]}'))
    monkeypatch.setenv("SILVERFLOW_IDEMPOTENCY_PENDING_SECONDS", "1")
    client = api.client("integration")
    pending = client.post(START, headers={"Idempotency-Key": "elsewhere"}, json={})
    assert pending.status_code == 409 and pending.headers.get("Retry-After") == "1"
    assert "released after 1 s" in pending.json()["detail"]
    time.sleep(1.2)
    retried = client.post(START, headers={"Idempotency-Key": "elsewhere"}, json={})
    assert retried.status_code == 201, retried.text
    replay = client.post(START, headers={"Idempotency-Key": "elsewhere"}, json={})
    assert replay.json()["id"] == retried.json()["id"]
    assert _instances(api) == before + 1


def test_a_live_owner_keeps_its_reservation(api: Api) -> None:
    _deploy(api)
    principal = _principal(api)
    assert reserve(api.engine.db, "in-flight", principal, "start:vacation-request") is None  # this process: alive
    answer = api.client("integration").post(START, headers={"Idempotency-Key": "in-flight"}, json={})
    assert answer.status_code == 409
    assert reserve(api.engine.db, "in-flight", principal, "start:vacation-request") is not None
