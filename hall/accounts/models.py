"""People and roles."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from hall.db_types import UTCDateTime, utcnow
from hall.extensions import db

# The roles the hall knows out of the box; colleges may add more (groups).
BUILTIN_ROLES = {
    "admin": "系统管理员",
    "quality_office": "质量办",
    "dept_head": "部门负责人",
    "program_leader": "专业负责人",
    "course_leader": "课程负责人",
    "teacher": "教师",
    "student": "学生",
    "supervisor": "督导",
    "hr": "人事处",
    "office": "党政办",
    "legal": "法律顾问",
    "seal_keeper": "印章管理员",
    "counsellor": "辅导员",
}


class Role(db.Model):
    """A role or group; lanes in diagrams name roles by code."""

    __tablename__ = "roles"

    code: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))


class User(UserMixin, db.Model):
    """A person; `username` is the 工号 or 学号."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(200))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(256))
    # The unit the person belongs to (a teacher's teaching office, a student's class).
    org_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships = relationship("Membership", back_populates="user", lazy="selectin")
    org_unit = relationship("OrgUnit")

    @property
    def is_active(self) -> bool:  # flask-login
        return self.active

    def set_password(self, password: str) -> None:
        # pbkdf2 with fewer rounds than werkzeug's default keeps sign-in under ~50 ms on 2 cores.
        self.password_hash = generate_password_hash(password, method="pbkdf2:sha256:100000")

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def role_codes(self) -> set[str]:
        return {m.role_code for m in self.memberships}

    def has_role(self, *codes: str) -> bool:
        return bool(self.role_codes.intersection(codes))

    @property
    def is_admin(self) -> bool:
        return self.has_role("admin")
