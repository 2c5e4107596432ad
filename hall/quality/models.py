"""The quality domain's tables.

Levels (五横): institution 学院, program 专业, course 课程, teacher 教师, student 学生.
A Subject is one unit at a level (a program, a course, a teacher…); monitoring points (质控点) are defined
per level with default lines, overridable per subject; measurements are values of a point for a subject
and period; warnings are raised when a measurement misses the standard (yellow) or passes the warning
line (red); a Cycle is one round of the 8-shaped spiral for a level and period, one diagnosis process
per subject (CycleUnit).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hall.db_types import UTCDateTime, utcnow
from hall.extensions import db

LEVELS = {
    "institution": "学院",
    "program": "专业",
    "course": "课程",
    "teacher": "教师",
    "student": "学生",
}
# The five systems (五纵) that classify standards, processes and departments.
SYSTEMS = {
    "decision": "决策指挥",
    "generation": "质量生成",
    "resource": "资源建设",
    "support": "支持服务",
    "supervision": "监督控制",
}
STANDARD_KINDS = {"operation": "运行标准", "development": "发展标准"}
DIRECTIONS = {"higher": "越高越好", "lower": "越低越好", "bool": "是/否"}
WARNING_LEVELS = {"yellow": "黄色预警（未达标准值）", "red": "红色预警（超过预警线）"}
WARNING_STATES = ("open", "handling", "handled", "closed")
# The ten steps of the big loop, in order, as element ids of the diagnosis process.
CYCLE_STEPS = [
    ("target", "目标"), ("standard", "标准"), ("design", "设计"), ("organise", "组织"), ("implement", "实施"),
    ("diagnose", "诊断"), ("incentive", "激励"), ("learn", "学习"), ("innovate", "创新"), ("improve", "改进"),
]


class Level(db.Model):
    __tablename__ = "levels"

    code: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    sort: Mapped[int] = mapped_column(default=0)
    # How long one round lasts at this level: academic_year, semester, teaching_cycle.
    round_unit: Mapped[str] = mapped_column(sa.String(20), default="academic_year")


class Subject(db.Model):
    """A quality subject (质量主体): the college, a program, a course, a teacher or a student."""

    __tablename__ = "subjects"
    __table_args__ = (
        sa.UniqueConstraint("level_code", "code", name="uq_subjects_level_code"),
        sa.Index("ix_subjects_level_unit", "level_code", "org_unit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    level_code: Mapped[str] = mapped_column(sa.ForeignKey("levels.code"))
    code: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    org_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id"))
    # The person answerable for it (专业负责人, 课程负责人, the teacher, the student, the president).
    responsible_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    # The subject above it: a course's program, a program's … (departments are org units).
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subjects.id"), index=True)
    attributes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)

    responsible = relationship("User")
    org_unit = relationship("OrgUnit")
    parent = relationship("Subject", remote_side=[id])


class Standard(db.Model):
    """A standard of the 标准链: 运行标准 or 发展标准 of a level, classified by one of the five systems."""

    __tablename__ = "standards"

    id: Mapped[int] = mapped_column(primary_key=True)
    level_code: Mapped[str] = mapped_column(sa.ForeignKey("levels.code"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # operation | development
    system: Mapped[str] = mapped_column(sa.String(20))  # one of SYSTEMS
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(300))
    items: Mapped[list] = mapped_column(sa.JSON, default=list)  # [{"code","text"}]


class MonitoringPoint(db.Model):
    """A 质控点 of a level and diagnosis element, with its default lines."""

    __tablename__ = "monitoring_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    level_code: Mapped[str] = mapped_column(sa.ForeignKey("levels.code"), index=True)
    element: Mapped[str] = mapped_column(sa.String(100))  # 诊断要素
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    unit: Mapped[str] = mapped_column(sa.String(40), default="")
    direction: Mapped[str] = mapped_column(sa.String(10))  # higher | lower | bool
    target_value: Mapped[float | None] = mapped_column(sa.Float)
    standard_value: Mapped[float | None] = mapped_column(sa.Float)
    warning_value: Mapped[float | None] = mapped_column(sa.Float)
    source: Mapped[str] = mapped_column(sa.String(100), default="")  # 数据来源: 教务, 人事, 学工…
    frequency: Mapped[str] = mapped_column(sa.String(40), default="学年")
    standard_id: Mapped[int | None] = mapped_column(sa.ForeignKey("standards.id"))
    # Values invented for the demo rather than taken from a national rule.
    is_example: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(sa.Text, default="")


class PointOverride(db.Model):
    """A subject's own lines for a point (a flagship program aims higher)."""

    __tablename__ = "point_overrides"
    __table_args__ = (sa.UniqueConstraint("point_id", "subject_id", name="uq_point_overrides_point_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    point_id: Mapped[int] = mapped_column(sa.ForeignKey("monitoring_points.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    target_value: Mapped[float | None] = mapped_column(sa.Float)
    standard_value: Mapped[float | None] = mapped_column(sa.Float)
    warning_value: Mapped[float | None] = mapped_column(sa.Float)


class Target(db.Model):
    """A target of the 目标链 for a subject and period, broken down from a parent target."""

    __tablename__ = "targets"
    __table_args__ = (sa.Index("ix_targets_subject_period", "subject_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(sa.String(20))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("targets.id"))
    text: Mapped[str] = mapped_column(sa.Text)
    point_id: Mapped[int | None] = mapped_column(sa.ForeignKey("monitoring_points.id"))
    target_value: Mapped[float | None] = mapped_column(sa.Float)
    cycle_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cycles.id"))
    # draft (e.g. seeded from last cycle's improvements) | approved
    state: Mapped[str] = mapped_column(sa.String(20), default="approved")
    origin: Mapped[str] = mapped_column(sa.String(20), default="plan")  # plan | improvement | import

    point = relationship("MonitoringPoint")


class Measurement(db.Model):
    """The value of a point for a subject and period, from one source. Changes are kept as revisions."""

    __tablename__ = "measurements"
    __table_args__ = (
        sa.UniqueConstraint("subject_id", "point_id", "period", "source", name="uq_measurements_key"),
        sa.Index("ix_measurements_point_period", "point_id", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"))
    point_id: Mapped[int] = mapped_column(sa.ForeignKey("monitoring_points.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[float] = mapped_column(sa.Float)
    source: Mapped[str] = mapped_column(sa.String(100), default="manual")
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class MeasurementRevision(db.Model):
    """An earlier value of a measurement (history kept when a source corrects a value)."""

    __tablename__ = "measurement_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    measurement_id: Mapped[int] = mapped_column(sa.ForeignKey("measurements.id", ondelete="CASCADE"), index=True)
    value: Mapped[float] = mapped_column(sa.Float)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QualityWarning(db.Model):
    """A 预警 for a point, subject and period; at most one (the unique key), escalated yellow → red."""

    __tablename__ = "quality_warnings"
    __table_args__ = (
        sa.UniqueConstraint("point_id", "subject_id", "period", name="uq_quality_warnings_key"),
        sa.Index("ix_quality_warnings_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    point_id: Mapped[int] = mapped_column(sa.ForeignKey("monitoring_points.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(sa.String(20))
    level: Mapped[str] = mapped_column(sa.String(10))  # yellow | red
    value: Mapped[float] = mapped_column(sa.Float)
    standard_value: Mapped[float | None] = mapped_column(sa.Float)
    warning_value: Mapped[float | None] = mapped_column(sa.Float)
    state: Mapped[str] = mapped_column(sa.String(12), default="open")
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey("process_instances.id"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    point = relationship("MonitoringPoint")
    subject = relationship("Subject")


class Cycle(db.Model):
    """One round of the big loop for a level and period (e.g. 专业层面 2026-2027 学年)."""

    __tablename__ = "cycles"
    __table_args__ = (sa.UniqueConstraint("level_code", "period", name="uq_cycles_level_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    level_code: Mapped[str] = mapped_column(sa.ForeignKey("levels.code"))
    period: Mapped[str] = mapped_column(sa.String(20))
    title: Mapped[str] = mapped_column(sa.String(200))
    definition_key: Mapped[str] = mapped_column(sa.String(200), default="diagnosis_cycle")
    state: Mapped[str] = mapped_column(sa.String(12), default="opening")  # opening | open | closed | failed
    scope: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # e.g. {"org_unit": 3} or {"subjects": [..]}
    deadlines: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # step -> ISO date
    period_end: Mapped[date | None] = mapped_column(sa.Date)
    total: Mapped[int] = mapped_column(default=0)
    opened: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CycleUnit(db.Model):
    """One subject's diagnosis process within a cycle."""

    __tablename__ = "cycle_units"
    __table_args__ = (
        sa.UniqueConstraint("cycle_id", "subject_id", name="uq_cycle_units_cycle_subject"),
        sa.Index("ix_cycle_units_cycle_step", "cycle_id", "step"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(sa.ForeignKey("cycles.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subjects.id", ondelete="CASCADE"))
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey("process_instances.id"), index=True)
    # Written when the unit starts (target), ends (done) or is terminated; a running unit's current step is
    # derived from its instance (cycles.current_steps), which is what pages and reports show.
    step: Mapped[str] = mapped_column(sa.String(20), default="target")
    step_due: Mapped[date | None] = mapped_column(sa.Date)
    grade: Mapped[str | None] = mapped_column(sa.String(10))  # 优秀 / 良好 / 合格 / 不合格
    report: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # texts written in its tasks, by step
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subject = relationship("Subject")
    cycle = relationship("Cycle")
