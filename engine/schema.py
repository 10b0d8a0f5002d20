"""Table definitions of the engine (SQLAlchemy Core).

Alembic (``migrations/``) is the only source of the database schema; these definitions mirror it so the
engine can build statements, and ``tests/engine/test_schema.py`` checks that both agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

UTCDateTime = sa.DateTime(timezone=True)

deployment = sa.Table(
    "deployment",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("deployed_at", UTCDateTime, nullable=False),
    sa.Column("deployed_by", sa.String(200), nullable=True),
    sa.Column("source", sa.String(200), nullable=True),
)

process_definition = sa.Table(
    "process_definition",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("deployment_id", sa.String(36), sa.ForeignKey("deployment.id"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("name", sa.String(500), nullable=True),
    sa.Column("file_name", sa.String(500), nullable=True),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("bpmn_xml", sa.Text, nullable=False),
    sa.Column("deployed_at", UTCDateTime, nullable=False),
    sa.Column("deployed_by", sa.String(200), nullable=True),
    # Set at deploy from a start event's ``confidential`` property: its instances are need-to-know (HR data).
    sa.Column("confidential", sa.Boolean, nullable=False, server_default=sa.false()),
    # The decision versions (JSON {key: version}) its business rule tasks were parsed with: engine/decisions.py
    sa.Column("decision_versions", sa.Text, nullable=True),
    sa.UniqueConstraint("key", "version", name="uq_process_definition_key_version"),
)

decision_definition = sa.Table(
    "decision_definition",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("deployment_id", sa.String(36), sa.ForeignKey("deployment.id"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("name", sa.String(500), nullable=True),
    sa.Column("file_name", sa.String(500), nullable=True),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("dmn_xml", sa.Text, nullable=False),
    sa.Column("deployed_at", UTCDateTime, nullable=False),
    sa.Column("deployed_by", sa.String(200), nullable=True),
    sa.UniqueConstraint("key", "version", name="uq_decision_definition_key_version"),
)

form_definition = sa.Table(
    "form_definition",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("schema_json", sa.Text, nullable=False),
    sa.Column("deployed_at", UTCDateTime, nullable=False),
    sa.Column("deployed_by", sa.String(200), nullable=True),
    sa.UniqueConstraint("key", "version", name="uq_form_definition_key_version"),
)

process_instance = sa.Table(
    "process_instance",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("definition_id", sa.String(36), sa.ForeignKey("process_definition.id"), nullable=False),
    sa.Column("process_key", sa.String(200), nullable=False),
    sa.Column("process_version", sa.Integer, nullable=False),
    sa.Column("business_key", sa.String(200), nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("lock_version", sa.Integer, nullable=False),
    sa.Column("called_versions", sa.Text, nullable=False),
    sa.Column("workflow_state", sa.Text, nullable=False),
    sa.Column("variables", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("started_by", sa.String(200), nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_process_instance_key_state", "process_key", "state"),
    sa.Index("ix_process_instance_business_key", "business_key"),
    sa.Index("ix_process_instance_started_at", "started_at"),
    sa.Index("ix_process_instance_started_by", "started_by"),
)

user_task = sa.Table(
    "user_task",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("instance_id", sa.String(36), sa.ForeignKey("process_instance.id"), nullable=False),
    sa.Column("element_id", sa.String(200), nullable=False),
    sa.Column("name", sa.String(500), nullable=True),
    sa.Column("lane", sa.String(200), nullable=True),
    sa.Column("candidate_groups", sa.String(1000), nullable=True),
    sa.Column("assignee", sa.String(200), nullable=True),
    sa.Column("form_key", sa.String(200), nullable=True),
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("process_key", sa.String(200), nullable=False),
    sa.Column("business_key", sa.String(200), nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("completed_by", sa.String(200), nullable=True),
    # The model gave the task to its assignee alone; people who may not work on it (",a,b,"): engine/assignment.py
    sa.Column("personal", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("excluded_users", sa.String(1000), nullable=True),
    # Holds the candidate groups too, so a clerk's counts of the unassigned and of the tasks assigned to them
    # outside their groups are index-only.
    sa.Index("ix_user_task_state_assignee", "state", "assignee", "candidate_groups"),
    sa.Index("ix_user_task_state_groups", "state", "candidate_groups"),
    sa.Index("ix_user_task_state_due", "state", "due_at", "id"),
    sa.Index("ix_user_task_instance", "instance_id"),
    sa.Index("ix_user_task_process_key", "process_key"),
    sa.Index("ix_user_task_business_key", "business_key"),
    sa.Index("ix_user_task_form_key", "form_key"),
    sa.Index("ix_user_task_created_at", "created_at"),
    sa.Index("ix_user_task_state_created", "state", "created_at", "id"),
    # Who an instance concerns (engine/participants.py): the people who hold or held one of its tasks.
    sa.Index("ix_user_task_assignee_instance", "assignee", "instance_id"),
    sa.Index("ix_user_task_completed_by_instance", "completed_by", "instance_id"),
)

user_task_group = sa.Table(
    "user_task_group",
    metadata,
    sa.Column("task_id", sa.String(36), sa.ForeignKey("user_task.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_name", sa.String(200), primary_key=True),
    # The task's state, copied here so an inbox count is an index-only scan of this table.
    sa.Column("state", sa.String(20), nullable=False, server_default="open"),
    # The task is offered to more than one group: only such rows can appear twice in an inbox over several
    # groups, so the rest is counted with a plain index-only count(*) instead of a count(DISTINCT task_id).
    sa.Column("shared", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_user_task_group_inbox", "group_name", "state", "shared", "task_id"),
)

job = sa.Table(
    "job",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("instance_id", sa.String(36), sa.ForeignKey("process_instance.id"), nullable=True),
    sa.Column("task_id", sa.String(36), nullable=True),
    sa.Column("process_key", sa.String(200), nullable=True),
    sa.Column("element_id", sa.String(200), nullable=True),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("lock_owner", sa.String(200), nullable=True),
    sa.Column("lock_expires_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_traceback", sa.Text, nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Index("ix_job_state_due", "state", "due_at"),
    sa.Index("ix_job_instance", "instance_id"),
)

worker_heartbeat = sa.Table(
    "worker_heartbeat",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
)

message_subscription = sa.Table(
    "message_subscription",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("instance_id", sa.String(36), sa.ForeignKey("process_instance.id"), nullable=False),
    sa.Column("task_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("message_name", sa.String(200), nullable=False),
    sa.Column("element_id", sa.String(200), nullable=False),
    sa.Column("business_key", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_message_subscription_name", "message_name"),
    sa.Index("ix_message_subscription_instance", "instance_id"),
)

message_buffer = sa.Table(
    "message_buffer",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("message_name", sa.String(200), nullable=False),
    sa.Column("business_key", sa.String(200), nullable=True),
    sa.Column("correlation_keys", sa.Text, nullable=False),
    sa.Column("variables", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_message_buffer_name", "message_name", "expires_at"),
)

webhook_subscription = sa.Table(
    "webhook_subscription",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", sa.String(500), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

history_event = sa.Table(
    "history_event",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_id", sa.String(36), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("element_id", sa.String(200), nullable=True),
    sa.Column("element_name", sa.String(500), nullable=True),
    sa.Column("element_type", sa.String(100), nullable=True),
    sa.Column("task_id", sa.String(36), nullable=True),
    sa.Column("user_id", sa.String(200), nullable=True),
    sa.Column("data", sa.Text, nullable=True),
    sa.Index("ix_history_event_instance", "instance_id", "id"),
    # The diagram's completed elements without reading every history row of a long-running instance.
    sa.Index("ix_history_event_instance_type", "instance_id", "type", "element_id"),
)
