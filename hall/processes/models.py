"""Process definitions, their immutable versions, running instances, their history and timers."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hall.db_types import JSONDoc, UTCDateTime, utcnow
from hall.extensions import db

INSTANCE_STATES = ("running", "suspended", "completed", "terminated", "error")


class ProcessDefinition(db.Model):
    """A process the hall knows, by key (the BPMN process id); its versions hold the content."""

    __tablename__ = "process_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    category: Mapped[str] = mapped_column(sa.String(100), default="其他")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    expected_days: Mapped[int | None] = mapped_column()
    # Role codes that may start it from the catalogue; empty: everybody signed in.
    startable_by: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Role codes that read every instance of it, in every unit (process property `visibleTo`, e.g. the quality
    # office on diagnosis cycles); empty: only the people involved, their department heads and administrators.
    visible_to: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Hidden definitions (e.g. diagnosis cycles, started by the hall itself) stay out of the catalogue.
    in_catalogue: Mapped[bool] = mapped_column(default=True)
    # An administrator's 停用: out of the catalogue and no new starts; running instances go on. Kept across
    # deploys (unlike in_catalogue, which the diagram's property sets).
    enabled: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    latest_version_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("process_versions.id", use_alter=True, name="fk_process_definitions_latest")
    )

    latest_version = relationship("ProcessVersion", foreign_keys=[latest_version_id], post_update=True)


class ProcessVersion(db.Model):
    """One deployed, immutable version: the BPMN XML and the forms it references."""

    __tablename__ = "process_versions"
    __table_args__ = (sa.UniqueConstraint("definition_id", "number", name="uq_process_versions_def_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("process_definitions.id"), index=True)
    number: Mapped[int] = mapped_column()
    content_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    bpmn_filename: Mapped[str] = mapped_column(sa.String(200))
    bpmn_xml: Mapped[str] = mapped_column(sa.Text)
    forms: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # filename -> JSON document
    # Other BPMN files the main one calls (call activities): filename -> XML.
    dependencies: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    deployed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    definition = relationship("ProcessDefinition", foreign_keys=[definition_id])


class ProcessInstance(db.Model):
    """A running case; `workflow` is the engine's state without its spec, `version` guards concurrent writes."""

    __tablename__ = "process_instances"
    __table_args__ = (
        sa.Index("ix_process_instances_def_state", "definition_id", "state"),
        sa.Index("ix_process_instances_starter", "starter_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("process_definitions.id"))
    process_version_id: Mapped[int] = mapped_column(sa.ForeignKey("process_versions.id"))
    state: Mapped[str] = mapped_column(sa.String(20), default="running")
    title: Mapped[str] = mapped_column(sa.String(300), default="")
    workflow: Mapped[dict] = mapped_column(JSONDoc)
    version: Mapped[int] = mapped_column(default=1)
    starter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    org_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id"), index=True)
    subject_id: Mapped[int | None] = mapped_column(index=True)
    # Element ids where the instance stands now, for highlighting the diagram without the engine.
    current_elements: Mapped[list] = mapped_column(sa.JSON, default=list)
    completed_elements: Mapped[list] = mapped_column(sa.JSON, default=list)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    error_element: Mapped[str | None] = mapped_column(sa.String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    definition = relationship("ProcessDefinition")
    process_version = relationship("ProcessVersion")
    starter = relationship("User", foreign_keys=[starter_id])
    org_unit = relationship("OrgUnit")


class InstanceEvent(db.Model):
    """Append-only history of an instance: who did what, when, with which data."""

    __tablename__ = "instance_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey("process_instances.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int | None] = mapped_column()
    element_id: Mapped[str | None] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(40))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict | None] = mapped_column(sa.JSON)

    actor = relationship("User")


class Timer(db.Model):
    """A due time the engine is waiting for; the periodic job fires the due ones."""

    __tablename__ = "timers"
    __table_args__ = (sa.Index("ix_timers_due", "fired_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey("process_instances.id", ondelete="CASCADE"), index=True)
    element_id: Mapped[str] = mapped_column(sa.String(200))
    engine_task_id: Mapped[str] = mapped_column(sa.String(36))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StartRequest(db.Model):
    """A start form's one-time token (the catalogue's 发起): the first POST of the form starts an instance and
    records it here; a second POST of the same form (a double tap, a resend) finds that instance instead."""

    __tablename__ = "start_requests"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey("process_instances.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
