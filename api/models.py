"""Request and response bodies of the REST API: camelCase JSON, ISO 8601 timestamps with timezone."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")
MAX_INT = 2**31 - 1  # what every database column we filter on can hold


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Page(Camel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class DefinitionOut(Camel):
    id: str
    key: str
    version: int
    name: str | None
    checksum: str
    file_name: str | None
    deployed_at: datetime
    deployed_by: str | None


class DeployedDefinition(DefinitionOut):
    created: bool


class FormOut(Camel):
    key: str
    version: int
    checksum: str


class DeployedDecision(Camel):
    """A DMN decision of a deployment (key = the decision's id); ``created`` when it is a new version."""

    id: str
    key: str
    version: int
    name: str | None
    checksum: str
    file_name: str | None
    deployed_at: datetime
    deployed_by: str | None
    created: bool


class DeploymentWarning(Camel):
    """Deployed, but not run as drawn (a data store, a non-executable process): where and why."""

    message: str
    file: str | None
    element_id: str | None
    line: int | None


class DeploymentOut(Camel):
    deployment_id: str | None
    definitions: list[DeployedDefinition]
    forms: list[FormOut]
    decisions: list[DeployedDecision] = Field(default_factory=list)
    warnings: list[DeploymentWarning] = Field(default_factory=list)


class StartInstance(Camel):
    business_key: str | None = Field(default=None, max_length=200)
    variables: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, le=MAX_INT)


class InstanceOut(Camel):
    id: str
    process_key: str
    process_version: int
    business_key: str | None
    state: str
    variables: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    active_elements: list[str]


class InstanceSummaryOut(Camel):
    id: str
    process_key: str
    process_version: int
    business_key: str | None
    state: str
    started_at: datetime
    ended_at: datetime | None
    started_by: str | None


class VariablesPatch(Camel):
    variables: dict[str, Any] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class HistoryOut(Camel):
    id: int
    at: datetime
    type: str
    element_id: str | None
    element_name: str | None
    element_type: str | None
    task_id: str | None
    user_id: str | None
    data: dict[str, Any] | None


class TaskOut(Camel):
    id: str
    instance_id: str
    element_id: str
    name: str | None
    lane: str | None
    candidate_groups: list[str]
    assignee: str | None
    form_key: str | None
    due_at: datetime | None
    priority: int
    process_key: str
    business_key: str | None
    state: str
    created_at: datetime
    claimed_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None


class TaskDetailOut(TaskOut):
    form_schema: dict[str, Any] | None
    data: dict[str, Any]


class AssignTask(Camel):
    assignee: str | None = Field(default=None, max_length=100)


class CompleteTask(Camel):
    data: dict[str, Any] = Field(default_factory=dict)


class MessageIn(Camel):
    name: str = Field(min_length=1, max_length=200)
    business_key: str | None = Field(default=None, max_length=200)
    correlation_keys: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    buffer: bool = False
    ttl_seconds: float = Field(default=3600, gt=0, le=30 * 86400)


class MessageOut(Camel):
    delivered_to: list[str]
    started: list[str]
    buffered: bool


class SignalIn(Camel):
    name: str = Field(min_length=1, max_length=200)
    variables: dict[str, Any] = Field(default_factory=dict)


class SignalOut(Camel):
    delivered_to: list[str]


class JobOut(Camel):
    id: str
    kind: str
    state: str
    instance_id: str | None
    element_id: str | None
    process_key: str | None
    due_at: datetime
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class JobDetailOut(JobOut):
    last_traceback: str | None


class LoginIn(Camel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=500)


class MeOut(Camel):
    name: str
    kind: str
    roles: list[str]
    groups: list[str]
    csrf_token: str | None = None


class HealthOut(Camel):
    status: Literal["ok", "degraded"]
    database: str
    process_definitions: int
    worker_heartbeat_age_seconds: float | None
    problems: list[str] = Field(default_factory=list, description="what makes the service degraded (503)")


class WebhookIn(Camel):
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    events: list[str] = Field(min_length=1)
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class WebhookOut(Camel):
    id: str
    url: str
    events: list[str]
    created_by: str | None
    created_at: datetime
    secret: str | None = None
