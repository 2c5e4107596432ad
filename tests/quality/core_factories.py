"""Factories for quality tests: levels, subjects in the demo organisation, monitoring points, counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from hall.accounts.models import User
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.quality import services
from hall.quality.models import MonitoringPoint, Subject

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="org")
def org_fixture(app, ctx):
    """The demo organisation and the warning-handling flow only (other shipped flows may be mid-change)."""
    from hall.org.demo import load_demo_organisation
    from hall.processes import services as processes

    load_demo_organisation()
    forms = {name: json.loads((ROOT / "forms" / name).read_text(encoding="utf-8"))
             for name in ("warning_analyse.json", "warning_plan.json", "warning_review.json",
                          "warning_review.uischema.json")}
    processes.deploy({"warning_handling.bpmn": (ROOT / "workflows" / "warning_handling.bpmn").read_bytes()}, forms)


def unit_id(code: str) -> int:
    return db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == code))


def user_id(username: str) -> int:
    return db.session.scalar(sa.select(User.id).where(User.username == username))


def make_subject(code="510201", name="软件技术专业", level="program", unit="xxgc-rj", responsible="t1001",
                 parent_id=None) -> Subject:
    services.ensure_levels()
    subject = Subject(level_code=level, code=code, name=name, org_unit_id=unit_id(unit) if unit else None,
                      responsible_user_id=user_id(responsible) if responsible else None, parent_id=parent_id,
                      attributes={})
    db.session.add(subject)
    db.session.commit()
    return subject


def make_point(code="P-SSR", name="生师比", level="program", direction="lower", target=16.0, standard=18.0,
               warning=22.0, unit="") -> MonitoringPoint:
    """Default: 生师比, lower is better, national 合格 line 18."""
    services.ensure_levels()
    point = MonitoringPoint(level_code=level, element="师资队伍", code=code, name=name, unit=unit, direction=direction,
                            target_value=target, standard_value=standard, warning_value=warning)
    db.session.add(point)
    db.session.commit()
    return point


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))
