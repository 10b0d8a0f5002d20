"""Scripts in a deployed process: class definitions are refused at deploy naming the element, and what a
script leaves behind is checked (plain data, size) inside the step, so nothing user-defined reaches the save
and an oversized state is refused with a clear error instead of growing the database (issue 21 item 2)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from engine import instances
from engine.errors import DeploymentError, ProcessError
from engine.runtime import Engine
from tests.engine.conftest import Calls, make_engine
from tests.support.bpmn_builder import Bpmn, script


def one_script(process_id: str, code: str) -> Bpmn:
    bpmn = Bpmn(process_id)
    bpmn.node("start", "startEvent").node("calc", "scriptTask", "Rechnen", body=script(code)) \
        .node("enter", "userTask", "Erfassen").node("end", "endEvent").chain("start", "calc", "enter", "end")
    return bpmn


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url, Calls())
    yield eng
    eng.db.dispose()


def test_a_class_in_a_script_is_refused_at_deploy_naming_the_element(engine: Engine) -> None:
    bpmn = one_script("classy", "class D(dict):\n    def items(self):\n        while True:\n            pass\nd = D()")
    with pytest.raises(DeploymentError) as info:
        engine.deploy([("classy.bpmn", bpmn.xml())])
    assert "calc" in str(info.value) and "class definitions are not allowed" in str(info.value)


def test_a_huge_value_fails_the_step_naming_the_variable_and_nothing_is_saved(engine: Engine) -> None:
    engine.deploy([("huge.bpmn", one_script("huge", "v = 'x' * 1_000_000 + 'y' * 100_000").xml())])
    began = time.monotonic()
    with pytest.raises(ProcessError) as info:
        engine.start("huge")
    assert time.monotonic() - began < 2
    assert "'v'" in str(info.value) and "1 MiB" in str(info.value)


def test_a_generator_hidden_in_a_list_fails_the_step_instead_of_running_at_save(engine: Engine) -> None:
    engine.deploy([("gen.bpmn", one_script("gen", "g = [(i for i in range(10))]").xml())])
    with pytest.raises(ProcessError) as info:
        engine.start("gen")
    assert "'g'" in str(info.value) and "generator" in str(info.value)


def test_an_instance_state_over_the_bound_is_refused_at_save(engine: Engine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instances, "MAX_DATA_BYTES", 200_000)
    engine.deploy([("fat.bpmn", one_script("fat", "a = 'x' * 900_000").xml())])
    with pytest.raises(ProcessError, match="instance state would be .* MiB, more than the limit"):
        engine.start("fat")
    engine.deploy([("thin.bpmn", one_script("thin", "a = 'x' * 1000").xml())])
    assert engine.start("thin").state == "running"
