"""Warnings (预警), the small loop 监测 → 预警 → 改进: evaluation in set-based SQL, and their handling.

evaluate_warnings() raises, escalates and closes warnings with a few statements over all measurements in
scope, whatever their number: one INSERT … SELECT … ON CONFLICT computes each subject's effective lines
(its override, else the point's default) against the latest measurement per subject, point and period,
and one UPDATE closes handled warnings whose point is back on the right side of the standard line.
Only then, per warning that is new, one warning-handling process is started for the responsible person.

States: open (raised) → handling (its process runs) → handled (the process completed) → closed (handled
and a later measurement meets the standard again).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hall.accounts.models import User
from hall.db_types import UTCDateTime, utcnow
from hall.engine.services import operator
from hall.errors import NotFound
from hall.extensions import db
from hall.processes.models import ProcessDefinition
from hall.quality.models import (
    DIRECTIONS,
    LEVELS,
    WARNING_LEVELS,
    Measurement,
    MonitoringPoint,
    PointOverride,
    QualityWarning,
    Subject,
)

log = logging.getLogger(__name__)

HANDLING_PROCESS = "warning_handling"
ACTIVE_STATES = ("open", "handling")

_m = Measurement.__table__
_p = MonitoringPoint.__table__
_o = PointOverride.__table__
_s = Subject.__table__
_w = QualityWarning.__table__


def _latest_measurements(point_ids=None, period=None, periods_from_scope=False):
    """The latest measurement per (subject, point, period) — several sources may report the same key."""
    rank = sa.func.row_number().over(
        partition_by=(_m.c.subject_id, _m.c.point_id, _m.c.period),
        order_by=(_m.c.measured_at.desc(), _m.c.id.desc()),
    )
    query = sa.select(_m.c.subject_id, _m.c.point_id, _m.c.period, _m.c.value, _m.c.measured_at,
                      rank.label("rank"))
    if point_ids is not None:
        query = query.where(_m.c.point_id.in_(point_ids))
    if period is not None and not periods_from_scope:
        query = query.where(_m.c.period == period)
    return query.subquery("latest")


def _lines(latest):
    """Effective standard and warning lines (override first) and the breach conditions, as SQL expressions."""
    standard = sa.func.coalesce(_o.c.standard_value, _p.c.standard_value)
    warning = sa.func.coalesce(_o.c.warning_value, _p.c.warning_value)
    lower_is_better = _p.c.direction == "lower"
    # bool points behave as "higher": 0 against a standard of 1 misses it.
    misses_standard = sa.and_(standard.is_not(None), sa.case(
        (lower_is_better, latest.c.value > standard), else_=latest.c.value < standard))
    passes_warning = sa.and_(warning.is_not(None), sa.case(
        (lower_is_better, latest.c.value > warning), else_=latest.c.value < warning))
    return standard, warning, misses_standard, passes_warning


def _insert(dialect: str):
    return postgresql.insert(_w) if dialect == "postgresql" else sqlite.insert(_w)


def evaluate_warnings(point_ids=None, period: str | None = None, actor: User | None = None,
                      commit: bool = True, start_processes: bool = True) -> dict:
    """Raise, escalate and close warnings for the points (all when None) and period (all when None).

    Returns counts: raised (new warnings), escalated (yellow → red), closed, started (handling processes).
    """
    now = utcnow()
    point_ids = list(point_ids) if point_ids is not None else None
    dialect = db.session.get_bind().dialect.name
    latest = _latest_measurements(point_ids, period)
    standard, warning, misses_standard, passes_warning = _lines(latest)
    level = sa.case((passes_warning, sa.literal("red")), else_=sa.literal("yellow"))
    source = (
        sa.select(
            latest.c.point_id, latest.c.subject_id, latest.c.period, level, latest.c.value, standard, warning,
            sa.literal("open"), _s.c.responsible_user_id, sa.literal(now, UTCDateTime),
        )
        .select_from(latest)
        .join(_p, _p.c.id == latest.c.point_id)
        .join(_s, _s.c.id == latest.c.subject_id)
        .outerjoin(_o, sa.and_(_o.c.point_id == latest.c.point_id, _o.c.subject_id == latest.c.subject_id))
        # SQLite needs a WHERE in an INSERT … SELECT with an upsert clause; we always have one.
        .where(latest.c.rank == 1, sa.or_(misses_standard, passes_warning))
    )
    insert = _insert(dialect).from_select(
        ["point_id", "subject_id", "period", "level", "value", "standard_value", "warning_value", "state",
         "assignee_id", "raised_at"], source)
    # An open (or in-hand) yellow warning whose point now passes the warning line turns red; nothing else
    # changes an existing warning, so re-evaluating is idempotent and never duplicates.
    upsert = insert.on_conflict_do_update(
        index_elements=["point_id", "subject_id", "period"],
        set_={"level": insert.excluded.level, "value": insert.excluded.value,
              "standard_value": insert.excluded.standard_value, "warning_value": insert.excluded.warning_value},
        where=sa.and_(_w.c.level == "yellow", insert.excluded.level == "red", _w.c.state.in_(ACTIVE_STATES)),
    )
    changed = db.session.execute(upsert).rowcount or 0
    scope = [_w.c.raised_at == sa.literal(now, UTCDateTime)]
    if point_ids is not None:
        scope.append(_w.c.point_id.in_(point_ids))
    raised = db.session.scalar(sa.select(sa.func.count()).select_from(_w).where(*scope)) or 0
    closed = close_recovered(point_ids=point_ids, now=now)
    started = start_handling(point_ids, period, actor) if start_processes else 0
    if commit:
        db.session.commit()
    return {"raised": raised, "escalated": max(changed - raised, 0), "closed": closed, "started": started}


def close_recovered(point_ids=None, warning_ids=None, now=None) -> int:
    """Close handled warnings whose subject and point meet the standard again in a later measurement.

    "Later": a later period, or the same period measured after the warning was raised (a correction).
    """
    now = now or utcnow()
    latest = _latest_measurements(point_ids)
    standard, _warning, misses_standard, passes_warning = _lines(latest)
    recovered = (
        sa.select(sa.literal(1))
        .select_from(latest)
        .join(_p, _p.c.id == latest.c.point_id)
        .outerjoin(_o, sa.and_(_o.c.point_id == latest.c.point_id, _o.c.subject_id == latest.c.subject_id))
        .where(
            latest.c.rank == 1,
            latest.c.subject_id == _w.c.subject_id,
            latest.c.point_id == _w.c.point_id,
            sa.or_(latest.c.period > _w.c.period,
                   sa.and_(latest.c.period == _w.c.period, latest.c.measured_at > _w.c.raised_at)),
            standard.is_not(None),
            sa.not_(misses_standard),
        )
    )
    update = sa.update(_w).where(_w.c.state == "handled", sa.exists(recovered.correlate(_w)))
    if point_ids is not None:
        update = update.where(_w.c.point_id.in_(point_ids))
    if warning_ids is not None:
        update = update.where(_w.c.id.in_(warning_ids))
    update = update.values(state="closed", closed_at=sa.literal(now, UTCDateTime))
    return db.session.execute(update, execution_options={"synchronize_session": False}).rowcount or 0


def start_handling(point_ids=None, period: str | None = None, actor: User | None = None) -> int:
    """Start one handling process per warning that has none yet; the starter is the responsible person."""
    from hall.processes import services as processes

    if db.session.scalar(sa.select(ProcessDefinition.id).where(
            ProcessDefinition.key == HANDLING_PROCESS, ProcessDefinition.latest_version_id.is_not(None))) is None:
        log.warning("warning-handling process %s is not deployed; warnings stay open", HANDLING_PROCESS)
        return 0
    query = (sa.select(QualityWarning, Subject, MonitoringPoint)
             .join(Subject, Subject.id == QualityWarning.subject_id)
             .join(MonitoringPoint, MonitoringPoint.id == QualityWarning.point_id)
             .where(QualityWarning.state == "open", QualityWarning.instance_id.is_(None))
             .order_by(QualityWarning.id))
    if point_ids is not None:
        query = query.where(QualityWarning.point_id.in_(point_ids))
    if period is not None:
        query = query.where(QualityWarning.period == period)
    rows = db.session.execute(query).all()
    owners = {u.id: u for u in db.session.scalars(sa.select(User).where(
        User.id.in_({s.responsible_user_id for _, s, _ in rows if s.responsible_user_id})))} if rows else {}
    handled, items = [], []
    for warning, subject, point in rows:
        starter = owners.get(subject.responsible_user_id) or actor
        if starter is None:
            continue  # nobody to hand it to yet; it is picked up once the subject has a responsible person
        handled.append(warning)
        items.append(dict(
            starter=starter, data=handling_data(warning, subject, point), org_unit_id=subject.org_unit_id,
            subject_id=subject.id, title=f"{LEVELS_SHORT[warning.level]}预警处置 · {subject.name} · {point.name}",
        ))
    # One batch start per 200 warnings: the instances, tasks and events of a batch go in one insert per table.
    for start in range(0, len(items), 200):
        with db.session.no_autoflush:
            ids = processes.start_instances(HANDLING_PROCESS, actor or items[start]["starter"],
                                            items[start:start + 200])
        for warning, instance_id in zip(handled[start:start + 200], ids, strict=True):
            warning.instance_id = instance_id
            warning.state = "handling"
    db.session.flush()
    return len(handled)


LEVELS_SHORT = {"yellow": "黄色", "red": "红色"}


def handling_data(warning: QualityWarning, subject: Subject, point: MonitoringPoint) -> dict:
    """What the handling process shows its people: the warning, the point and its lines."""
    override = db.session.scalar(sa.select(PointOverride).where(
        PointOverride.point_id == point.id, PointOverride.subject_id == subject.id))
    target = override.target_value if override and override.target_value is not None else point.target_value
    return {
        "warning_id": warning.id, "level": warning.level, "level_name": WARNING_LEVELS[warning.level],
        "subject_id": subject.id, "subject_name": subject.name, "subject_level": LEVELS.get(subject.level_code),
        "point_code": point.code, "point_name": point.name, "unit": point.unit,
        "direction": DIRECTIONS.get(point.direction), "period": warning.period, "value": warning.value,
        "target_value": target, "standard_value": warning.standard_value, "warning_value": warning.warning_value,
    }


@operator("quality.warning_handled")
def warning_handled(params: dict, data: dict) -> dict:
    """End of the handling process: the warning is handled (and closed at once if data already recovered)."""
    warning_id = int(params.get("warning_id") or data.get("warning_id"))
    now = utcnow()
    db.session.execute(
        sa.update(_w).where(_w.c.id == warning_id, _w.c.state.in_(ACTIVE_STATES))
        .values(state="handled", handled_at=sa.literal(now, UTCDateTime)),
        execution_options={"synchronize_session": False},
    )
    close_recovered(warning_ids=[warning_id], now=now)
    state = db.session.scalar(sa.select(_w.c.state).where(_w.c.id == warning_id))
    return {"warning_id": warning_id, "state": state}


# -- reading -----------------------------------------------------------------------------------------

def list_warnings(user: User, state: str | None = None, level: str | None = None, subject: int | None = None,
                  point: int | None = None, period: str | None = None, org_unit: int | None = None,
                  page: int = 1, page_size: int = 20) -> tuple[list[QualityWarning], int]:
    from hall.quality import services

    query = sa.select(QualityWarning).join(Subject, Subject.id == QualityWarning.subject_id)
    condition = services.visible_subject_filter(user)
    if condition is not None:
        query = query.where(sa.or_(condition, QualityWarning.assignee_id == user.id))
    if state:
        query = query.where(QualityWarning.state == state)
    if level:
        query = query.where(QualityWarning.level == level)
    if subject:
        query = query.where(QualityWarning.subject_id == subject)
    if point:
        query = query.where(QualityWarning.point_id == point)
    if period:
        query = query.where(QualityWarning.period == period)
    if org_unit:
        query = query.where(Subject.org_unit_id.in_(services._unit_subtree(org_unit)))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(QualityWarning.raised_at.desc(), QualityWarning.id.desc())
                               .limit(page_size).offset((page - 1) * page_size)).all()
    return list(items), total


def get_warning(warning_id: int, user: User) -> QualityWarning:
    from hall.quality import services

    warning = db.session.get(QualityWarning, warning_id)
    if warning is None:
        raise NotFound(f"预警 {warning_id} 不存在")
    if warning.assignee_id != user.id:
        services.get_subject(warning.subject_id, user)
    return warning
