"""A clerk's inbox (their groups' tasks plus those assigned to them) pages and counts exactly.

The inbox query filters on the task's candidate-group list and counts from the group index with tasks
offered to several groups flagged; these tests hold both against the plain visibility rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from api.cli import PROJECT_ROOT
from engine.queries import TaskFilter, TaskView
from engine.runtime import Engine
from engine.schema import user_task, user_task_group
from tests.support.bpmn_builder import Bpmn, properties

# One task per kind of group list: single, shared by two groups, names with LIKE wildcards, none at all.
OFFERS = {"t_sales": "sales", "t_shared": "sales,staff", "t_billing": "billing", "t_wild": "a_b",
          "t_percent": "x%", "t_triple": "billing,staff,management"}


def _inbox_model() -> Bpmn:
    model = Bpmn("inbox")
    model.node("start", "startEvent").node("fork", "parallelGateway").node("join", "parallelGateway") \
        .node("end", "endEvent").flow("start", "fork").flow("join", "end")
    for element_id, groups in {**OFFERS, "t_nobody": ""}.items():
        body = properties(candidateGroups=groups) if groups else ""
        model.node(element_id, "userTask", f"Aufgabe {element_id}", body).flow("fork", element_id) \
            .flow(element_id, "join")
    return model


def _visible(task: TaskView, user: str, groups: list[str]) -> bool:
    return bool(set(task.candidate_groups) & set(groups)) or task.assignee == user


@pytest.fixture
def inbox(engine: Engine) -> Engine:
    engine.deploy([("inbox.bpmn", _inbox_model().xml())])
    for n in range(3):
        engine.start("inbox", business_key=f"IN-{n}")
    tasks = engine.list_tasks()
    by_element = {(t.business_key, t.element_id): t for t in tasks}
    engine.assign(by_element[("IN-0", "t_billing")].id, "anna")  # assigned to her outside her groups
    engine.assign(by_element[("IN-1", "t_nobody")].id, "anna")
    engine.assign(by_element[("IN-2", "t_sales")].id, "bert")  # still in the sales inbox
    engine.complete_task(by_element[("IN-0", "t_sales")].id, {}, user="anna")  # closed: in no open inbox
    return engine


GROUP_SETS = [["sales"], ["sales", "staff"], ["staff", "billing", "management"], ["a_b"], ["aXb", "x"], ["x%"], []]


def test_clerk_inbox_matches_the_visibility_rule(inbox: Engine) -> None:
    for sort in ("created", "due", "-priority", "name"):
        everything, _ = inbox.query_tasks(TaskFilter(sort=sort, limit=1000))
        for groups in GROUP_SETS:
            expected = [t.id for t in everything if _visible(t, "anna", groups)]
            assert expected or groups in ([], ["aXb", "x"]), "the model offers a task to every other case"

            items, total = inbox.query_tasks(TaskFilter(visible_to_user="anna", visible_to_groups=groups, sort=sort,
                                                        limit=1000))
            assert ([t.id for t in items], total) == (expected, len(expected)), (sort, groups)

            pages = [inbox.query_tasks(TaskFilter(visible_to_user="anna", visible_to_groups=groups, sort=sort,
                                                  limit=4, offset=start))
                     for start in range(0, len(expected) + 1, 4)]
            assert [t.id for page, _ in pages for t in page] == expected, (sort, groups)
            assert {page_total for _, page_total in pages} == {len(expected)}, (sort, groups)


def test_clerk_inbox_with_filters_counts_the_same_rows(inbox: Engine) -> None:
    groups = ["sales", "staff", "billing"]
    cases: list[tuple[dict[str, Any], Callable[[TaskView], bool]]] = [
        ({"unassigned": True, "business_key": "IN-1"}, lambda t: t.assignee is None and t.business_key == "IN-1"),
        ({"assignee": "anna"}, lambda t: t.assignee == "anna"),  # the inbox page's "mine"
        ({"process_key": "inbox", "sort": "due"}, lambda t: True),
    ]
    for extra, keep in cases:
        in_order, _ = inbox.query_tasks(TaskFilter(sort=extra.get("sort", "created"), limit=1000))
        expected = [t.id for t in in_order if _visible(t, "anna", groups) and keep(t)]
        assert expected, extra
        items, total = inbox.query_tasks(TaskFilter(visible_to_user="anna", visible_to_groups=groups, limit=1000,
                                                    **extra))
        assert ([t.id for t in items], total) == (expected, len(expected)), extra


def test_completed_tasks_leave_the_shared_count(inbox: Engine) -> None:
    shared = TaskFilter(visible_to_user="nobody", visible_to_groups=["sales", "staff"], limit=1)
    _, before = inbox.query_tasks(shared)
    task = next(t for t in inbox.list_tasks() if t.element_id == "t_shared")
    inbox.complete_task(task.id, {}, user="anna")
    _, after = inbox.query_tasks(shared)
    assert after == before - 1
    _, closed = inbox.query_tasks(TaskFilter(visible_to_user="nobody", visible_to_groups=["sales", "staff"],
                                             state="completed", limit=1))
    assert closed == 2  # IN-0's sales task and this shared one, each counted once


def test_the_migration_flags_tasks_already_offered_to_several_groups(engine: Engine) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes.update(url=engine.db.url, configure_logging=False)
    engine.deploy([("inbox.bpmn", _inbox_model().xml())])
    instance = engine.start("inbox")
    engine.db.dispose()
    command.downgrade(config, "0008")
    command.upgrade(config, "0009")
    with engine.db.read() as conn:
        rows = conn.execute(sa.select(user_task_group.c.group_name, user_task_group.c.shared)
                            .join(user_task, user_task.c.id == user_task_group.c.task_id)
                            .where(user_task.c.instance_id == instance.id)).all()
    assert sorted(rows) == sorted((group, "," in groups) for groups in OFFERS.values() for group in groups.split(","))
