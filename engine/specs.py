"""Task specs where Silverflow departs from Spiff's defaults."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.spiff.specs.defaults import ServiceTask as SpiffServiceTask
from SpiffWorkflow.util.task import TaskState


class ExternalServiceTask(SpiffServiceTask):
    """A service task that never calls anything inside the engine step.

    ``_execute`` returning ``None`` leaves the task STARTED: the engine then calls the connector (inline for
    now, through a job later) and completes the task with the result, outside Spiff's own loop.
    """

    def _execute(self, task: Any) -> None:
        return None

    def evaluated_parameters(self, task: Any) -> dict[str, Any]:
        """Parameter values are expressions over the instance data."""
        engine = task.workflow.script_engine
        return {name: engine.evaluate(task, param["value"]) for name, param in self.operation_params.items()}


def _predict_iteratively(self: TaskSpec, my_task: Any, seen: list[Any] | None = None, looked_ahead: int = 0,
                         mask: TaskState = TaskState.PREDICTED_MASK) -> None:
    """Spiff's ``TaskSpec._predict`` with an explicit stack instead of recursion, in the same order.

    Spiff predicts every future task when an instance starts, one recursive call per element: a sequential
    chain of ~500 elements exhausted Python's recursion limit, and 5 000 must run.
    """
    pending: list[tuple[Any, Any, list[Any], int]] = [(self, my_task, [] if seen is None else seen, looked_ahead)]
    while pending:
        spec, task, task_seen, ahead = pending.pop()
        if task.has_state(mask):
            spec._predict_hook(task)
        if task.has_state(TaskState.PREDICTED_MASK):
            task_seen.append(spec)
        look_ahead = task.has_state(TaskState.DEFINITE_MASK) or ahead + 1 < spec.lookahead
        if not look_ahead:
            continue
        for child in reversed(task.children):
            if child.has_state(mask) and child not in task_seen:
                pending.append((child.task_spec, child, task_seen[:], ahead + 1))


TaskSpec._predict = _predict_iteratively
