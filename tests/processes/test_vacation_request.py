"""The shipped vacation-request process, end to end through the engine on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import FormValidationError
from engine.runtime import Engine
from tests.engine.conftest import Calls, make_engine

ROOT = Path(__file__).parents[2]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, Calls())
    eng.deploy([("vacation-request.bpmn", (ROOT / "processes" / "vacation-request.bpmn").read_bytes())],
               [(p.name, p.read_bytes()) for p in sorted((ROOT / "forms").glob("vacation-*.json"))])
    yield eng
    eng.db.dispose()


REQUEST = {"first_day": "2026-12-21", "last_day": "2026-12-23", "days": 3, "deputy": "Frau Schmidt"}


def _submit(engine: Engine) -> tuple[str, str]:
    instance = engine.start("vacation-request", business_key="EMP-7", user="alex")
    [submit] = engine.list_tasks(instance_id=instance.id)
    assert (submit.element_id, submit.candidate_groups, submit.form_key) == \
        ("submit", ["staff"], "vacation-request")
    engine.complete_task(submit.id, REQUEST, user="alex")
    [approve] = engine.list_tasks(instance_id=instance.id)
    assert approve.candidate_groups == ["management"] and approve.due_at is not None
    assert engine.list_tasks(candidate_group="management")[0].id == approve.id
    return instance.id, approve.id


def test_approved(engine: Engine) -> None:
    instance_id, approve = _submit(engine)
    done = engine.complete_task(approve, {"approved": True}, user="chef")
    assert done.state == "completed" and done.variables["status"] == "genehmigt"
    elements = [h.element_id for h in engine.history(instance_id) if h.type == "element.completed"]
    assert elements[-2:] == ["record", "end_approved"]


def test_rejected(engine: Engine) -> None:
    instance_id, approve = _submit(engine)
    done = engine.complete_task(approve, {"approved": False, "reason": "Jahresabschluss"}, user="chef")
    assert done.state == "completed" and "status" not in done.variables
    assert [h.element_id for h in engine.history(instance_id) if h.type == "element.completed"][-1] == "end_rejected"


def test_form_rejects_unknown_and_missing_fields(engine: Engine) -> None:
    instance = engine.start("vacation-request")
    [submit] = engine.list_tasks(instance_id=instance.id)
    with pytest.raises(FormValidationError) as raised:
        engine.complete_task(submit.id, {"days": 0, "hacker": 1})
    fields = {e["field"] for e in raised.value.errors}
    assert {"days", "first_day", "last_day", "deputy"} <= fields
