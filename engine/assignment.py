"""Who may work on a user task, decided by the model at run time (Camunda's ``assignee="${initiator}"``).

A user task's ``spiffworkflow:property`` entries:

- ``assignee``: a user name, or ``${expression}`` over the task's data, e.g. ``${employee}`` — the variable a
  start event's ``initiator`` property filled with the person who started the instance. The task is that
  person's alone (a *personal* task): its lane does not offer it to a group, nobody else claims it, is assigned
  it or completes it, and it is not given back (unclaim). An expression that yields nothing leaves the task to
  its lane as usual.
- ``candidateGroups``: group names (comma-separated) or ``${expression}`` yielding a name or a list; offered in
  addition to the lane.
- ``excludedUsers``: user names (comma-separated) or ``${expression}`` yielding a name or a list: people who may
  not claim, be assigned or complete the task, nor assign it, and who do not see it in their inbox — the
  four-eyes rule ("nobody approves their own request": ``${employee}`` on an approval).
- ``completedBy``: the name of a variable that receives the login of the person who completes the task; the
  engine sets it after the submitted data, so a form cannot choose who decided.

Refusals raise ``NotPermitted`` (HTTP 403), whichever path asked: REST, a page, the engine API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidState, ProcessError

ASSIGNEE, CANDIDATE_GROUPS, EXCLUDED_USERS, COMPLETED_BY = "assignee", "candidateGroups", "excludedUsers", "completedBy"


class NotPermitted(InvalidState):
    """The caller may not do this with the task (it is someone else's, or theirs to stay away from)."""


@dataclass(frozen=True)
class Routing:
    """Where a new user task goes, evaluated once when it becomes ready."""

    assignee: str | None
    extra_groups: list[str]
    excluded: list[str]

    @property
    def personal(self) -> bool:
        return self.assignee is not None


def _properties(task: Any) -> dict[str, str]:
    extensions = getattr(task.task_spec, "extensions", None) or {}
    return dict(extensions.get("properties") or {})


def expression_of(value: str) -> str | None:
    """The expression inside ``${…}``, or None for a literal."""
    text = value.strip()
    return text[2:-1].strip() if text.startswith("${") and text.endswith("}") else None


def _names(value: Any, element: str, name: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        if not all(isinstance(v, str) for v in value):
            raise ProcessError(f"user task property '{name}' must give names (strings), got {value!r}", element)
        return [v.strip() for v in value if v.strip()]
    raise ProcessError(f"user task property '{name}' must give a name or a list of names, got {value!r}", element)


def _value(task: Any, script_engine: Any, name: str) -> list[str]:
    raw = _properties(task).get(name)
    if not raw:
        return []
    expression = expression_of(raw)
    if expression is None:
        return _names(raw, task.task_spec.bpmn_id, name)
    try:
        result = script_engine.evaluate(task, expression)
    except Exception as exc:  # a missing variable or a script error: the step fails, pointing at the task
        raise ProcessError(f"user task property '{name}' ({raw}): {exc}", task.task_spec.bpmn_id) from exc
    return _names(result, task.task_spec.bpmn_id, name)


def routing_of(task: Any, script_engine: Any) -> Routing:
    """The assignee, the groups beyond the lane and the excluded people of a ready user task."""
    assignees = _value(task, script_engine, ASSIGNEE)
    if len(assignees) > 1:
        raise ProcessError(f"user task property 'assignee' names {len(assignees)} people; one at most",
                           task.task_spec.bpmn_id)
    return Routing(assignees[0] if assignees else None, _value(task, script_engine, CANDIDATE_GROUPS),
                   _value(task, script_engine, EXCLUDED_USERS))


def is_personal_spec(task: Any) -> bool:
    """Whether the model gives the task a person (then its lane is not a candidate group)."""
    return bool(_properties(task).get(ASSIGNEE))


def stamp_completer(task: Any, user: str | None) -> None:
    """Set the ``completedBy`` variable of a task to the completing user (after the form data)."""
    variable = _properties(task).get(COMPLETED_BY)
    if variable and user is not None:
        task.set_data(**{variable: user})


# -- the excluded-user column: ",alice,bob," so one LIKE finds a name -------------------------------------
def encode_excluded(names: Iterable[str]) -> str | None:
    unique = list(dict.fromkeys(n for n in names if n))
    return ("," + ",".join(unique) + ",") if unique else None


def decode_excluded(value: str | None) -> frozenset[str]:
    return frozenset(v for v in (value or "").split(",") if v)


# -- the rules, checked by the engine on every path ---------------------------------------------------------
def _excluded(row: Any, user: str | None) -> bool:
    return user is not None and user in decode_excluded(row.excluded_users)


def check_claim(row: Any, user: str) -> None:
    if _excluded(row, user):
        raise NotPermitted(f"task '{row.id}' concerns your own request: someone else decides it")
    if row.personal and row.assignee != user:
        raise NotPermitted(f"task '{row.id}' is {row.assignee}'s own task")


def check_unclaim(row: Any) -> None:
    if row.personal:
        raise NotPermitted(f"task '{row.id}' is {row.assignee}'s own task and stays with them")


def check_assign(row: Any, assignee: str | None, user: str | None) -> None:
    if row.personal:
        raise NotPermitted(f"task '{row.id}' is {row.assignee}'s own task and stays with them")
    if _excluded(row, assignee):
        raise NotPermitted(f"task '{row.id}' concerns {assignee}'s own request: someone else decides it")
    if _excluded(row, user):
        raise NotPermitted(f"task '{row.id}' concerns your own request: someone else decides it")


def check_complete(row: Any, user: str | None) -> None:
    if _excluded(row, user):
        raise NotPermitted(f"task '{row.id}' concerns your own request: someone else decides it")
    if row.personal and user is not None and row.assignee != user:
        raise NotPermitted(f"task '{row.id}' is {row.assignee}'s own task")
