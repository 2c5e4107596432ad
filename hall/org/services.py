"""Org units: create and read the tree."""

from __future__ import annotations

import sqlalchemy as sa

from hall.errors import HallError, NotFound
from hall.extensions import db
from hall.org.models import UNIT_KINDS, OrgUnit


def create_unit(code: str, name: str, kind: str, parent: OrgUnit | None = None) -> OrgUnit:
    if kind not in UNIT_KINDS:
        raise HallError(f"单位类型只能是 {', '.join(UNIT_KINDS)}", code=422)
    if db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == code)):
        raise HallError(f"单位编码 {code} 已存在", code=409)
    unit = OrgUnit(code=code, name=name, kind=kind, parent_id=parent.id if parent else None)
    db.session.add(unit)
    db.session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    db.session.flush()
    return unit


def get_unit(code: str) -> OrgUnit:
    unit = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise NotFound(f"单位 {code} 不存在")
    return unit


def list_units() -> list[OrgUnit]:
    return list(db.session.scalars(sa.select(OrgUnit).order_by(OrgUnit.path)))
