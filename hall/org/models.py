"""The college's organisation: a tree of units and who holds which role in which unit."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hall.extensions import db

UNIT_KINDS = ("college", "department", "office", "class")


class OrgUnit(db.Model):
    """A unit of the college; `path` holds the ids from the root ("/1/4/9/") so ancestors need no query."""

    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    path: Mapped[str] = mapped_column(sa.String(500), default="/", index=True)

    parent = relationship("OrgUnit", remote_side=[id])

    def ancestor_ids(self) -> list[int]:
        """This unit and its ancestors, nearest first."""
        return [int(p) for p in reversed(self.path.strip("/").split("/")) if p]


class Membership(db.Model):
    """A user holds a role, in a unit (e.g. head of a department) or college-wide (org_unit_id NULL)."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "role_code", "org_unit_id", name="uq_memberships_user_role_unit"),
        sa.Index("ix_memberships_role_unit", "role_code", "org_unit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_code: Mapped[str] = mapped_column(sa.ForeignKey("roles.code"))
    org_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org_units.id", ondelete="CASCADE"))

    user = relationship("User", back_populates="memberships")
    org_unit = relationship("OrgUnit")
