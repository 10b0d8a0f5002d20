"""Need-to-know access to process instances, decided in this one place for every route and page.

An instance's variables, history, diagram view and the data of its tasks are visible to:

- its initiator (the principal that started it: a login name, or ``key:<name>`` for an API key);
- the people who hold or held one of its user tasks (assignee or completer) and the members of the candidate
  groups of its user tasks, open or completed;
- managers of those people: a principal with the role ``manager`` sees what concerns members of its groups;
- admins (the role ``admin``, for a login or an API key).

Confidential processes (the definition flag from a start event's ``confidential`` property: sick notes,
vacation requests, time sheets, travel expenses) are visible only to the initiator (the employee), the people
who hold or held one of its tasks (the approver) and the group ``hr`` — not to candidate groups, managers in
general or admins, unless they are one of these.

Integration API keys are principals like any other: a key sees what it started and what is offered to its
groups; a key with the role ``admin`` sees every ordinary instance. Designers see definitions, not instances.

An instance the caller may not see answers **404**, exactly as an unknown id (its existence is not confirmed);
an action on a visible instance that needs a role the caller lacks answers 403 as before. Task endpoints keep
answering 403 for a task that is not the caller's to work on.
"""

from __future__ import annotations

from fastapi import Request

from engine.errors import NotFound
from engine.participants import Audience, Participants, participants
from engine.queries import TaskView
from engine.runtime import Engine

from .identity import Identity, Principal
from .security import can_work_on

HR_GROUP = "hr"


def _is_admin(principal: Principal) -> bool:
    return "admin" in principal.roles


def _managed_people(identity: Identity, engine: Engine, principal: Principal) -> frozenset[str]:
    """The caller and, for a manager, every member of the manager's groups."""
    if "manager" not in principal.roles or not principal.groups:
        return frozenset({principal.name})
    with engine.db.read() as conn:
        return identity.members_of(conn, principal.groups) | {principal.name}


def _holds(principal: Principal, facts: Participants) -> bool:
    """Started it or holds/held one of its tasks in person."""
    return principal.name == facts.initiator or principal.name in facts.users


def may_see(principal: Principal, facts: Participants, people: frozenset[str]) -> bool:
    """The rule (see the module docstring); ``people``: the caller plus, for a manager, their groups' members."""
    if facts.confidential:
        return HR_GROUP in principal.groups or _holds(principal, facts)
    if _is_admin(principal):
        return True
    return (facts.initiator in people or bool(facts.users & people) or bool(facts.groups & principal.groups))


def visible_instance(request: Request, principal: Principal, instance_id: str) -> Participants:
    """The instance's participants if the caller may see it; NotFound (404) otherwise, as for an unknown id."""
    engine: Engine = request.app.state.engine
    with engine.db.read() as conn:
        facts = participants(conn, instance_id)
    if facts.confidential or _is_admin(principal) or _holds(principal, facts) \
            or facts.groups & principal.groups:
        people = frozenset({principal.name})  # no need to look up the manager's people
    else:
        people = _managed_people(request.app.state.identity, engine, principal)
    if not may_see(principal, facts, people):
        raise NotFound(f"process instance '{instance_id}' does not exist")
    return facts


def audience(request: Request, principal: Principal) -> Audience:
    """The caller's reach for instance lists, filtered in SQL by the engine."""
    engine: Engine = request.app.state.engine
    people = _managed_people(request.app.state.identity, engine, principal)
    return Audience(users=sorted(people), groups=sorted(principal.groups), confidential_users=[principal.name],
                    all_ordinary=_is_admin(principal), all_confidential=HR_GROUP in principal.groups)


def may_read_task(request: Request, principal: Principal, task: TaskView) -> bool:
    """A task's data is the instance's data. An open task: the caller must be able to work on it, and on a
    confidential instance a manager's or integration's reach over all tasks does not count — only being its
    assignee, in its candidate groups, or someone who may see the instance. A closed task is no one's to work on:
    only those who may see the instance read it."""
    if task.state == "open":
        if not can_work_on(principal, task.candidate_groups, task.assignee):
            return False
        if task.assignee == principal.name or principal.groups & set(task.candidate_groups):
            return True
        engine: Engine = request.app.state.engine
        with engine.db.read() as conn:
            facts = participants(conn, task.instance_id)
        return not facts.confidential or may_see(principal, facts, frozenset({principal.name}))
    try:
        visible_instance(request, principal, task.instance_id)
    except NotFound:
        return False
    return True


# -- calendars ------------------------------------------------------------------------------------------
#: What a person who is neither a participant nor a manager sees of an appointment: that the time is taken.
BUSY_TOPIC = "Belegt"
_PRIVATE_APPOINTMENT_FIELDS = ("place", "account_id", "contact_id")


def may_see_appointment(principal: Principal, participants: list[str] | tuple[str, ...]) -> bool:
    """An appointment's topic, place and customer are for its participants, managers and admins; a colleague
    booking a technician sees when they are busy, not with whom or why."""
    return principal.name in participants or principal.has("manager")


def appointment_for(principal: Principal, row: dict[str, object]) -> dict[str, object]:
    participants = row.get("participants") or []
    if may_see_appointment(principal, list(participants)):  # type: ignore[call-overload]
        return row
    return {**row, "topic": BUSY_TOPIC, **dict.fromkeys(_PRIVATE_APPOINTMENT_FIELDS)}


def collision_topic(principal: Principal, participants: list[str], topic: str) -> str:
    """The topic of the appointment in the way (with its ``participants``), as far as the booker may know it."""
    return topic if may_see_appointment(principal, participants) else BUSY_TOPIC
