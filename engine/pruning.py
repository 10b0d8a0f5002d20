"""Keeps Spiff's task tree bounded for long-lived and looping instances.

Spiff never forgets a task: every loop pass adds tasks, steps get slower and saves bigger, and past depth
1000 its task iterator stops, so a looping instance silently looks finished. Between steps we cut away the
finished part of the tree that no live task can reach any more: the new root is the lowest common ancestor
of all unfinished tasks. Everything above it has already been recorded in our history table. Sub-process
workflows are compacted the same way, and those whose calling task was cut away are dropped.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState

# Below this many tasks a tree is left alone: compaction would cost more than it saves.
MIN_TASKS_TO_COMPACT = 40


def _lowest_common_ancestor(workflow: Any) -> Any | None:
    """The deepest task above every unfinished one. Only the topmost unfinished tasks (whose parent finished)
    are walked up: the others lie below them, and walking every predicted task of a long chain to the root
    made each step quadratic in the chain's length."""
    unfinished = [t for t in workflow.tasks.values() if not t.has_state(TaskState.FINISHED_MASK)
                  and (t.parent is None or t.parent.has_state(TaskState.FINISHED_MASK))]
    if not unfinished:
        return None
    path: list[Any] = []
    node = unfinished[0]
    while node is not None:
        path.append(node)
        node = node.parent
    path.reverse()  # root first
    depth = len(path)
    for task in unfinished[1:]:
        chain = []
        node = task
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()
        common = 0
        while common < min(depth, len(chain)) and chain[common] is path[common]:
            common += 1
        depth = common
    return path[depth - 1] if depth else None


def _subtree_ids(root: Any) -> set[UUID]:
    keep: set[UUID] = set()
    stack = [root]
    while stack:
        task = stack.pop()
        keep.add(task.id)
        stack.extend(task.children)
    return keep


def compact_workflow(workflow: Any) -> int:
    """Re-root one (sub)workflow at the lowest common ancestor of its live tasks; return tasks removed."""
    if len(workflow.tasks) < MIN_TASKS_TO_COMPACT or workflow.is_completed():
        return 0
    new_root = _lowest_common_ancestor(workflow)
    if new_root is None or new_root is workflow.task_tree:
        return 0
    # Keep one finished ancestor as the root so that the live tasks still have a parent to inherit from.
    if new_root.parent is not None and new_root.parent.has_state(TaskState.FINISHED_MASK):
        new_root = new_root.parent
    if new_root is workflow.task_tree:
        return 0
    keep = _subtree_ids(new_root)
    removed = [task_id for task_id in workflow.tasks if task_id not in keep]
    # The root keeps its data as a whole (the serializer stores deltas against the parent otherwise).
    new_root.data = dict(new_root.data)
    new_root._parent = None
    for task_id in removed:
        del workflow.tasks[task_id]
    workflow.task_tree = new_root
    if workflow.last_task is not None and workflow.last_task.id not in keep:
        workflow.last_task = new_root
    return len(removed)


def compact(workflow: Any) -> int:
    """Compact the top workflow and its sub-processes; drop sub-processes whose calling task is gone."""
    removed = compact_workflow(workflow)
    for subprocess in list(workflow.subprocesses.values()):
        removed += compact_workflow(subprocess)
    changed = True
    while changed:
        changed = False
        alive = set(workflow.tasks)
        for subprocess in workflow.subprocesses.values():
            alive.update(subprocess.tasks)
        for task_id, subprocess in list(workflow.subprocesses.items()):
            if task_id not in alive:
                del workflow.subprocesses[task_id]
                removed += len(subprocess.tasks)
                changed = True
    return removed
