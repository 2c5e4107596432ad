"""Portraits (画像): one subject's points over periods against its lines, and set-based aggregates over an
org unit or a subject's children for the drill-down college → department → program → course/teacher/student.

Who may look (object-level): quality_office, admin and supervisor see everything; a dept_head sees the
subjects in his department's org-unit subtree; the responsible person sees their own subjects (and, for the
drill-down, aggregates over their children); anybody else gets 404 as if the subject did not exist.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import g
from sqlalchemy.orm import aliased

from hall.errors import Forbidden, NotFound
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.quality.models import (
    LEVELS,
    Level,
    Measurement,
    MonitoringPoint,
    PointOverride,
    QualityWarning,
    Subject,
)

ALL_SEEING_ROLES = ("quality_office", "admin", "supervisor")
STATES = {"met": "达标", "yellow": "黄色预警", "red": "红色预警", "unmeasured": "未测"}
OPEN_WARNING_STATES = ("open", "handling")
# Anchors of the normalised score: where the warning, standard and target lines sit on 0–100.
SCORE_AT_WARNING, SCORE_AT_STANDARD, SCORE_AT_TARGET = 30.0, 60.0, 100.0


# --- access ---------------------------------------------------------------------------------------------------

def sees_all(user) -> bool:
    return user.has_role(*ALL_SEEING_ROLES)


def dept_head_paths(user) -> list[str]:
    """Materialized paths of the units *user* heads (his subtree is every path that starts with one)."""
    unit_ids = [m.org_unit_id for m in user.memberships if m.role_code == "dept_head" and m.org_unit_id]
    if not unit_ids:
        return []
    return list(db.session.scalars(sa.select(OrgUnit.path).where(OrgUnit.id.in_(unit_ids))))


def _units_under(paths: list[str]):
    """A select of the ids of the org units under any of *paths* (the units themselves included)."""
    return sa.select(OrgUnit.id).where(sa.or_(*(OrgUnit.path.startswith(p, autoescape=True) for p in paths)))


def subject_visibility(user):
    """A WHERE clause over Subject: the subjects *user* may see."""
    if sees_all(user):
        return sa.true()
    clauses = [Subject.responsible_user_id == user.id]
    paths = dept_head_paths(user)
    if paths:
        clauses.append(Subject.org_unit_id.in_(_units_under(paths)))
    return sa.or_(*clauses)


def get_visible_subject(user, subject_id: int) -> Subject:
    """The subject, or 404 when it does not exist or *user* may not see it (no hint which)."""
    subject = db.session.scalar(sa.select(Subject).where(Subject.id == subject_id, subject_visibility(user)))
    if subject is None:
        raise NotFound(f"质量主体 {subject_id} 不存在或您无权查看")
    return subject


def can_see_unit(user, unit: OrgUnit) -> bool:
    """Whether *user* may see aggregates and reports of *unit* (its whole subtree)."""
    return sees_all(user) or any(unit.path.startswith(p) for p in dept_head_paths(user))


def get_visible_unit(user, org_unit_id: int) -> OrgUnit:
    unit = db.session.get(OrgUnit, org_unit_id)
    if unit is None or not can_see_unit(user, unit):
        raise NotFound(f"单位 {org_unit_id} 不存在或您无权查看")
    return unit


# --- lines, states and scores ---------------------------------------------------------------------------------

def state_of(direction: str, value: float | None, standard: float | None, warning: float | None) -> str:
    """met | yellow | red | unmeasured for one value against its effective lines.

    higher: red below the warning line, yellow below the standard, else met (a value on a line is on its good
    side); lower: the mirror image; bool (1 = yes) behaves as higher, so 0 against a standard of 1 is yellow,
    red only if a warning line says so — the same rule hall.quality.warnings raises warnings by. `state_sql`
    is this rule in SQL and must stay in step with this function.
    """
    if value is None:
        return "unmeasured"
    sign = -1 if direction == "lower" else 1
    if warning is not None and sign * value < sign * warning:
        return "red"
    if standard is not None and sign * value < sign * standard:
        return "yellow"
    return "met"


def state_sql(direction, value, standard, warning):
    """`state_of` as a SQL CASE expression over columns (for GROUP BY aggregates)."""
    higher_state = sa.case(
        (sa.and_(warning.is_not(None), value < warning), "red"),
        (sa.and_(standard.is_not(None), value < standard), "yellow"),
        else_="met",
    )
    lower_state = sa.case(
        (sa.and_(warning.is_not(None), value > warning), "red"),
        (sa.and_(standard.is_not(None), value > standard), "yellow"),
        else_="met",
    )
    return sa.case((direction == "lower", lower_state), else_=higher_state)


def normalised_score(direction: str, value: float | None, target: float | None, standard: float | None,
                     warning: float | None) -> float | None:
    """A 0–100 score of one value relative to its lines, for a radar chart (higher is always better).

    The lines are anchors on the score scale: the warning line sits at 30, the standard line at 60 and the
    target line at 100. The score is the piecewise-linear interpolation of the value between the anchors it
    falls between; beyond the outermost anchors the nearest segment's slope is extended, and the result is
    clamped to 0–100. For a "lower is better" point the values are mirrored (negated) first, so the same
    formula applies. Example (higher, warning 60, standard 70, target 90): 70 → 60, 80 → 80, 90 → 100,
    65 → 45, 50 → 0. With a single line the score is 100 on its good side (the line included) and 0 otherwise;
    a yes/no point scores 100 when it meets its standard (or has none) and 0 otherwise; no value gives None,
    and so does a higher/lower point with no line at all.
    """
    if value is None:
        return None
    if direction == "bool":
        return 100.0 if state_of("bool", value, standard, warning) == "met" else 0.0  # no middle on yes/no
    sign = 1.0 if direction == "higher" else -1.0
    anchors: list[tuple[float, float]] = []
    for line, score in ((warning, SCORE_AT_WARNING), (standard, SCORE_AT_STANDARD), (target, SCORE_AT_TARGET)):
        if line is None:
            continue
        x = sign * line
        # Keep the anchors increasing in both value and score; a line out of order (or equal to the one
        # before) replaces the lower anchor, so e.g. target == standard scores 100 at that value.
        while anchors and anchors[-1][0] >= x:
            anchors.pop()
        anchors.append((x, score))
    if not anchors:
        return None
    x = sign * value
    if len(anchors) == 1:
        return 100.0 if x >= anchors[0][0] else 0.0
    if x <= anchors[0][0]:
        (x0, y0), (x1, y1) = anchors[0], anchors[1]
    elif x >= anchors[-1][0]:
        (x0, y0), (x1, y1) = anchors[-2], anchors[-1]
    else:
        i = next(i for i in range(1, len(anchors)) if x <= anchors[i][0])
        (x0, y0), (x1, y1) = anchors[i - 1], anchors[i]
    score = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return round(max(0.0, min(100.0, score)), 1)


def effective_lines(subject: Subject) -> list[dict]:
    """Every point of the subject's level with its lines, the subject's PointOverride winning per line."""
    P, Ov = MonitoringPoint, PointOverride
    rows = db.session.execute(
        sa.select(P, Ov.id.label("override_id"),
                  sa.func.coalesce(Ov.target_value, P.target_value).label("target"),
                  sa.func.coalesce(Ov.standard_value, P.standard_value).label("standard"),
                  sa.func.coalesce(Ov.warning_value, P.warning_value).label("warning"))
        .outerjoin(Ov, sa.and_(Ov.point_id == P.id, Ov.subject_id == subject.id))
        .where(P.level_code == subject.level_code)
        .order_by(P.code)
    ).all()
    return [{"point": r[0], "overridden": r.override_id is not None, "target": r.target, "standard": r.standard,
             "warning": r.warning} for r in rows]


def latest_measurements(*where):
    """A subquery of the latest measurement per subject, point and period (several sources: the newest
    wins), with optional WHERE clauses on Measurement."""
    M = Measurement
    rank = sa.func.row_number().over(partition_by=(M.subject_id, M.point_id, M.period),
                                     order_by=(M.measured_at.desc(), M.id.desc()))
    inner = sa.select(M.subject_id, M.point_id, M.period, M.value, M.source, M.measured_at,
                      rank.label("rank")).where(*where).subquery()
    return sa.select(inner).where(inner.c.rank == 1).subquery("latest")


# --- one subject ----------------------------------------------------------------------------------------------

def subject_portrait(user, subject_id: int) -> dict:
    """The portrait of one subject: its points with lines, values and states over periods, its warnings,
    the radar scores of the latest period and its children for the drill-down."""
    subject = get_visible_subject(user, subject_id)
    lines = effective_lines(subject)
    latest = latest_measurements(Measurement.subject_id == subject.id)
    values = {(r.point_id, r.period): r for r in db.session.execute(sa.select(latest))}
    periods = sorted({period for _, period in values})
    latest_period = periods[-1] if periods else None
    points, radar = [], []
    for line in lines:
        point = line["point"]
        series = []
        for period in periods:
            row = values.get((point.id, period))
            value = row.value if row else None
            state = state_of(point.direction, value, line["standard"], line["warning"])
            series.append({"period": period, "value": value, "source": row.source if row else None,
                           "measured_at": row.measured_at.isoformat() if row and row.measured_at else None,
                           "state": state, "state_name": STATES[state]})
        current = series[-1] if series else {"value": None, "state": "unmeasured"}
        score = normalised_score(point.direction, current["value"], line["target"], line["standard"],
                                 line["warning"])
        points.append({
            "id": point.id, "code": point.code, "name": point.name, "element": point.element, "unit": point.unit,
            "direction": point.direction, "is_example": point.is_example, "overridden": line["overridden"],
            "lines": {"target": line["target"], "standard": line["standard"], "warning": line["warning"]},
            "series": series, "score": score,
        })
        radar.append({"point_id": point.id, "code": point.code, "name": point.name, "score": score})
    warnings = db.session.execute(
        sa.select(QualityWarning, MonitoringPoint.code, MonitoringPoint.name)
        .join(MonitoringPoint, MonitoringPoint.id == QualityWarning.point_id)
        .where(QualityWarning.subject_id == subject.id)
        .order_by(QualityWarning.period.desc(), MonitoringPoint.code)
    ).all()
    return {
        "subject": _subject_dict(subject),
        "level": {"code": subject.level_code, "name": _level_name(subject.level_code)},
        "periods": periods,
        "latest_period": latest_period,
        "points": points,
        "radar": radar,
        "warnings": [_warning_dict(w, code, name) for w, code, name in warnings],
        "children": _children(user, subject),
    }


# Measured values and their means are shown to two decimals wherever a person reads them (the portrait
# pages and the reports): percentages, scores, hours and amounts alike need no more.
DECIMALS = 2


def rounded(value):
    """A value as people read it: floats to DECIMALS places; anything else unchanged."""
    return round(value, DECIMALS) if isinstance(value, float) else value


def format_value(value) -> str:
    """A value as text: "—" for none, whole numbers without decimals, otherwise at most DECIMALS places."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    text = f"{float(value):.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _children(user, subject: Subject) -> list[dict]:
    """The subjects directly under *subject* that *user* may see, each with its open-warning count."""
    open_count = (sa.select(sa.func.count(QualityWarning.id))
                  .where(QualityWarning.subject_id == Subject.id, QualityWarning.state.in_(OPEN_WARNING_STATES))
                  .correlate(Subject).scalar_subquery())
    rows = db.session.execute(
        sa.select(Subject.id, Subject.code, Subject.name, Subject.level_code, open_count.label("open_warnings"))
        .where(Subject.parent_id == subject.id, Subject.active.is_(True), subject_visibility(user))
        .order_by(Subject.level_code, Subject.code)
    ).all()
    return [{"id": r.id, "code": r.code, "name": r.name, "level": r.level_code,
             "level_name": _level_name(r.level_code), "open_warnings": r.open_warnings} for r in rows]


def _subject_dict(subject: Subject) -> dict:
    return {
        "id": subject.id, "code": subject.code, "name": subject.name, "level": subject.level_code,
        "level_name": _level_name(subject.level_code),
        "org_unit": {"id": subject.org_unit.id, "name": subject.org_unit.name} if subject.org_unit else None,
        "responsible": ({"id": subject.responsible.id, "name": subject.responsible.name}
                        if subject.responsible else None),
        "parent": {"id": subject.parent.id, "name": subject.parent.name} if subject.parent else None,
    }


def _warning_dict(warning: QualityWarning, point_code: str, point_name: str) -> dict:
    return {
        "id": warning.id, "point_id": warning.point_id, "point_code": point_code, "point_name": point_name,
        "period": warning.period, "level": warning.level, "value": warning.value,
        "standard_value": warning.standard_value, "warning_value": warning.warning_value, "state": warning.state,
        "raised_at": _iso(warning.raised_at), "handled_at": _iso(warning.handled_at),
        "closed_at": _iso(warning.closed_at), "instance_id": warning.instance_id,
    }


def _iso(value):
    return value.isoformat() if value else None


def _level_name(code: str) -> str:
    """The level's Chinese name; the (five-row) table is read once per request."""
    if "quality_level_names" not in g:
        g.quality_level_names = dict(db.session.execute(sa.select(Level.code, Level.name)).all())
    return g.quality_level_names.get(code) or LEVELS.get(code, code)


# --- aggregates -----------------------------------------------------------------------------------------------

class Scope:
    """Which subjects an aggregate covers: an org unit's subtree (None: the whole college), or a subject's
    children, optionally one level; `clauses` are WHERE clauses over Subject."""

    def __init__(self, unit: OrgUnit | None, parent: Subject | None, level: str | None, clauses: list):
        self.unit, self.parent, self.level, self.clauses = unit, parent, level, clauses


def resolve_scope(user, org_unit_id: int | None = None, parent_id: int | None = None,
                  level: str | None = None) -> Scope:
    """The aggregate scope *user* asked for, checked: an unknown or foreign unit/subject is 404; a person
    with no aggregate view at all (neither all-seeing, nor a department head) asking for no scope is 403."""
    clauses = [Subject.active.is_(True)]
    unit = parent = None
    if parent_id is not None:
        parent = get_visible_subject(user, parent_id)
        clauses.append(Subject.parent_id == parent.id)
    elif org_unit_id is not None:
        unit = get_visible_unit(user, org_unit_id)
        clauses.append(Subject.org_unit_id.in_(_units_under([unit.path])))
    elif sees_all(user):
        # The whole college (subjects with no org unit included); the root unit drives the breakdown.
        roots = list(db.session.scalars(sa.select(OrgUnit).where(OrgUnit.parent_id.is_(None))))
        unit = roots[0] if len(roots) == 1 else None
    else:
        paths = dept_head_paths(user)
        if not paths:
            raise Forbidden("您没有查看汇总画像的权限")
        unit = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.path == paths[0]))
        clauses.append(Subject.org_unit_id.in_(_units_under([unit.path])))
    if level:
        clauses.append(Subject.level_code == level)
    return Scope(unit, parent, level, clauses)


def default_period(scope: Scope) -> str | None:
    """The latest period with any measurement of a subject in scope."""
    return db.session.scalar(
        sa.select(sa.func.max(Measurement.period))
        .where(Measurement.subject_id.in_(sa.select(Subject.id).where(*scope.clauses))))


def level_order(code: str) -> int:
    """Levels from the top (学院) down (学生); unknown levels last."""
    order = list(LEVELS)
    return order.index(code) if code in order else len(order)


def subject_counts_by_level(scope: Scope) -> dict[str, int]:
    """Subjects in scope per level, ordered from the top level down."""
    rows = db.session.execute(sa.select(Subject.level_code, sa.func.count(Subject.id))
                              .where(*scope.clauses).group_by(Subject.level_code)).all()
    return {code: n for code, n in sorted(rows, key=lambda r: level_order(r[0]))}


def unit_breakdown(scope: Scope, period: str | None) -> list[dict]:
    """Per child org unit of the scope's unit (college → departments, department → offices/classes): its
    subjects per level over its whole subtree and its warnings of the period. Two GROUP BY queries."""
    if scope.unit is None or scope.parent is not None:
        return []
    child, inner = aliased(OrgUnit), aliased(OrgUnit)
    counts = db.session.execute(
        sa.select(child.id, Subject.level_code, sa.func.count(Subject.id))
        .select_from(child).join(inner, inner.path.startswith(child.path))
        .join(Subject, Subject.org_unit_id == inner.id)
        .where(child.parent_id == scope.unit.id, *scope.clauses)
        .group_by(child.id, Subject.level_code)
    ).all()
    warning_rows = []
    if period:
        warning_rows = db.session.execute(
            sa.select(child.id, QualityWarning.level, QualityWarning.state, sa.func.count(QualityWarning.id))
            .select_from(child).join(inner, inner.path.startswith(child.path))
            .join(Subject, Subject.org_unit_id == inner.id)
            .join(QualityWarning, QualityWarning.subject_id == Subject.id)
            .where(child.parent_id == scope.unit.id, QualityWarning.period == period, *scope.clauses)
            .group_by(child.id, QualityWarning.level, QualityWarning.state)
        ).all()
    units = {u.id: {"id": u.id, "code": u.code, "name": u.name, "kind": u.kind, "subjects": 0, "by_level": {},
                    "warnings": {"yellow": 0, "red": 0, "open": 0}}
             for u in db.session.scalars(sa.select(OrgUnit).where(OrgUnit.parent_id == scope.unit.id)
                                         .order_by(OrgUnit.code))}
    for unit_id, level_code, n in counts:
        units[unit_id]["by_level"][level_code] = n
        units[unit_id]["subjects"] += n
    for unit_id, level, state, n in warning_rows:
        units[unit_id]["warnings"][level] = units[unit_id]["warnings"].get(level, 0) + n
        if state in OPEN_WARNING_STATES:
            units[unit_id]["warnings"]["open"] += n
    return list(units.values())


def point_summary(scope: Scope, period: str | None) -> list[dict]:
    """Per monitoring point of the levels in scope: mean/min/max of the latest measured values of the period
    and the number of subjects in each state (未测 = subjects of the point's level in scope with no value).
    One GROUP BY query over measurements joined with their effective lines."""
    P, Ov = MonitoringPoint, PointOverride
    level_counts = subject_counts_by_level(scope)
    points = sorted(db.session.scalars(sa.select(P).where(P.level_code.in_(list(level_counts) or [""]))),
                    key=lambda p: (level_order(p.level_code), p.code))
    stats = {}
    if period and points:
        latest = latest_measurements(Measurement.period == period,
                                     Measurement.subject_id.in_(sa.select(Subject.id).where(*scope.clauses)))
        standard = sa.func.coalesce(Ov.standard_value, P.standard_value)
        warning = sa.func.coalesce(Ov.warning_value, P.warning_value)
        state = state_sql(P.direction, latest.c.value, standard, warning)
        rows = db.session.execute(
            sa.select(P.id, sa.func.count(), sa.func.avg(latest.c.value), sa.func.min(latest.c.value),
                      sa.func.max(latest.c.value),
                      *(sa.func.sum(sa.case((state == s, 1), else_=0)) for s in ("met", "yellow", "red")))
            .select_from(latest).join(P, P.id == latest.c.point_id)
            .outerjoin(Ov, sa.and_(Ov.point_id == latest.c.point_id, Ov.subject_id == latest.c.subject_id))
            .group_by(P.id)
        ).all()
        stats = {r[0]: r[1:] for r in rows}
    summary = []
    for point in points:
        measured, mean, low, high, met, yellow, red = stats.get(point.id, (0, None, None, None, 0, 0, 0))
        total = level_counts.get(point.level_code, 0)
        summary.append({
            "id": point.id, "code": point.code, "name": point.name, "level": point.level_code, "unit": point.unit,
            "direction": point.direction,
            "lines": {"target": point.target_value, "standard": point.standard_value, "warning": point.warning_value},
            "subjects": total, "measured": measured,
            "mean": round(float(mean), 4) if mean is not None else None,
            "min": low, "max": high,
            "states": {"met": int(met or 0), "yellow": int(yellow or 0), "red": int(red or 0),
                       "unmeasured": max(total - measured, 0)},
            "met_share": round(int(met or 0) / measured, 4) if measured else None,
        })
    return summary


def subject_rows(scope: Scope, period: str | None, page: int = 1, page_size: int = 50) -> tuple[list[dict], int]:
    """The subjects in scope (a page), each with its state counts for the period and open warnings — the
    next step of the drill-down. GROUP BY subject, not a loop."""
    total = db.session.scalar(sa.select(sa.func.count(Subject.id)).where(*scope.clauses))
    page_rows = db.session.execute(
        sa.select(Subject.id, Subject.code, Subject.name, Subject.level_code, Subject.org_unit_id)
        .where(*scope.clauses).order_by(Subject.level_code, Subject.code)
        .limit(page_size).offset((page - 1) * page_size)
    ).all()
    ids = [r.id for r in page_rows]
    states: dict[int, dict] = {i: {"met": 0, "yellow": 0, "red": 0} for i in ids}
    if period and ids:
        P, Ov = MonitoringPoint, PointOverride
        latest = latest_measurements(Measurement.period == period, Measurement.subject_id.in_(ids))
        state = state_sql(P.direction, latest.c.value, sa.func.coalesce(Ov.standard_value, P.standard_value),
                          sa.func.coalesce(Ov.warning_value, P.warning_value)).label("state")
        for subject_id, st, n in db.session.execute(
            sa.select(latest.c.subject_id, state, sa.func.count())
            .select_from(latest).join(P, P.id == latest.c.point_id)
            .outerjoin(Ov, sa.and_(Ov.point_id == latest.c.point_id, Ov.subject_id == latest.c.subject_id))
            .group_by(latest.c.subject_id, state)
        ):
            states[subject_id][st] = n
    open_warnings = dict(db.session.execute(
        sa.select(QualityWarning.subject_id, sa.func.count()).where(
            QualityWarning.subject_id.in_(ids or [0]), QualityWarning.state.in_(OPEN_WARNING_STATES))
        .group_by(QualityWarning.subject_id)).all())
    children = dict(db.session.execute(
        sa.select(Subject.parent_id, sa.func.count()).where(Subject.parent_id.in_(ids or [0]),
                                                            Subject.active.is_(True))
        .group_by(Subject.parent_id)).all())
    return [{"id": r.id, "code": r.code, "name": r.name, "level": r.level_code,
             "level_name": _level_name(r.level_code), "org_unit_id": r.org_unit_id, "states": states[r.id],
             "open_warnings": open_warnings.get(r.id, 0), "children": children.get(r.id, 0)}
            for r in page_rows], total


def aggregate_portrait(user, org_unit_id: int | None = None, parent_id: int | None = None,
                       level: str | None = None, period: str | None = None, page: int = 1,
                       page_size: int = 50) -> dict:
    """Aggregates over a scope (see `resolve_scope`) for a period (default: the latest measured one)."""
    scope = resolve_scope(user, org_unit_id, parent_id, level)
    period = period or default_period(scope)
    by_level = subject_counts_by_level(scope)
    subjects, total = subject_rows(scope, period, page, page_size)
    return {
        "org_unit": ({"id": scope.unit.id, "code": scope.unit.code, "name": scope.unit.name,
                      "kind": scope.unit.kind, "path": scope.unit.path} if scope.unit else None),
        "parent": ({"id": scope.parent.id, "name": scope.parent.name, "level": scope.parent.level_code}
                   if scope.parent else None),
        "level": level,
        "period": period,
        "levels": [{"code": code, "name": _level_name(code), "subjects": n} for code, n in by_level.items()],
        "units": unit_breakdown(scope, period),
        "points": point_summary(scope, period),
        "subjects": {"items": subjects, "total": total, "page": page, "page_size": page_size},
    }
