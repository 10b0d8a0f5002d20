"""Task specs where Silverflow departs from Spiff's defaults."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.spiff.specs.defaults import ServiceTask as SpiffServiceTask


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
