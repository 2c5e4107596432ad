"""Human tasks: the hall's projection of the engine's ready user tasks, their candidates, comments, files."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hall.db_types import UTCDateTime, utcnow
from hall.extensions import db

TASK_STATES = ("ready", "blocked", "completed", "cancelled")


class HumanTask(db.Model):
    """A step a person handles. `kind` is "user" for a BPMN user task, "sign" for an added signer."""

    __tablename__ = "human_tasks"
    __table_args__ = (
        sa.Index("ix_human_tasks_assignee_state", "assignee_id", "state"),
        sa.Index("ix_human_tasks_instance_state", "instance_id", "state"),
        sa.Index("ix_human_tasks_completed_by", "completed_by_id", "completed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey("process_instances.id", ondelete="CASCADE"))
    engine_task_id: Mapped[str | None] = mapped_column(sa.String(36))
    element_id: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(300))
    kind: Mapped[str] = mapped_column(sa.String(10), default="user")
    lane: Mapped[str | None] = mapped_column(sa.String(100))
    state: Mapped[str] = mapped_column(sa.String(12), default="ready")
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    form_key: Mapped[str | None] = mapped_column(sa.String(200))
    ui_form_key: Mapped[str | None] = mapped_column(sa.String(200))
    # For a "sign" task: the task that waits for this signer.
    parent_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("human_tasks.id"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    draft: Mapped[dict | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted: Mapped[dict | None] = mapped_column(sa.JSON)

    instance = relationship("ProcessInstance")
    assignee = relationship("User", foreign_keys=[assignee_id])
    completed_by = relationship("User", foreign_keys=[completed_by_id])
    candidates = relationship("TaskCandidate", lazy="selectin", cascade="all, delete-orphan")


class TaskCandidate(db.Model):
    """Who may claim a task: a user, or holders of a role (in a unit, or anywhere when org_unit_id is NULL).

    `claimable` says whether the task can be claimed now (ready, nobody assigned). Whoever inserts rows sets
    it (a new task's rows: whether the task has no assignee); after that a trigger on human_tasks keeps it
    (migration 3f8a2c6d1e47), whatever changes the task. The inbox's claimable views read only these rows,
    through partial indexes, and never visit the tasks they count (docs/performance.md, "The inbox")."""

    __tablename__ = "task_candidates"
    __table_args__ = (
        sa.Index("ix_task_candidates_user", "user_id"),
        sa.Index("ix_task_candidates_role_unit", "role_code", "org_unit_id", "task_id",
                 postgresql_where=sa.text("role_code IS NOT NULL"), sqlite_where=sa.text("role_code IS NOT NULL")),
        sa.Index("ix_task_candidates_claimable_role", "role_code", "org_unit_id", "task_id",
                 postgresql_where=sa.text("claimable"), sqlite_where=sa.text("claimable = 1")),
        sa.Index("ix_task_candidates_claimable_user", "user_id", "task_id",
                 postgresql_where=sa.text("claimable"), sqlite_where=sa.text("claimable = 1")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("human_tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    role_code: Mapped[str | None] = mapped_column(sa.String(64))
    org_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id"))
    claimable: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Comment(db.Model):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("human_tasks.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author = relationship("User")


class Attachment(db.Model):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("human_tasks.id", ondelete="CASCADE"), index=True)
    uploader_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column()
    storage_key: Mapped[str] = mapped_column(sa.String(100), unique=True)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploader = relationship("User")
