"""Quality subjects, standards, monitoring points, targets and measurements.

Who sees what (object level): the quality office and administrators see every subject; a department head
sees the subjects of his department's subtree; everybody sees the subjects they are responsible for.
Measurements are written as one validated batch: every row is checked first, then all are written or none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from hall.accounts.models import User
from hall.db_types import utcnow
from hall.errors import Forbidden, Invalid, NotFound
from hall.extensions import db
from hall.org.models import Membership, OrgUnit
from hall.processes.services import on_terminated
from hall.quality.models import (
    DIRECTIONS,
    LEVELS,
    STANDARD_KINDS,
    SYSTEMS,
    Cycle,
    CycleUnit,
    Level,
    Measurement,
    MeasurementRevision,
    MonitoringPoint,
    PointOverride,
    QualityWarning,
    Standard,
    Subject,
    Target,
)

MANAGER_ROLES = ("quality_office", "admin")
QUALITY_READERS = (*MANAGER_ROLES, "supervisor")
# Rounds per level (DESIGN §2): programs by academic year, teachers and students by semester.
ROUND_UNITS = {"institution": "academic_year", "program": "academic_year", "course": "teaching_cycle",
               "teacher": "semester", "student": "semester"}
# "2025-2026" (an academic year) or "2025-2026-1" (its first or second semester).
PERIOD_RE = re.compile(r"^(\d{4})-(\d{4})(?:-([12]))?$")


def responsible_user_id(subject_id: int) -> int | None:
    """The responsible person of a subject (lane `subject_owner`)."""
    subject = db.session.get(Subject, subject_id)
    return subject.responsible_user_id if subject else None


def period_problem(period: str) -> str | None:
    """Why a period string is not one (None when it is)."""
    match = PERIOD_RE.match(period or "")
    if not match or int(match.group(2)) != int(match.group(1)) + 1:
        return f"周期“{period}”格式不正确，应为学年“2025-2026”或学期“2025-2026-1”"
    return None


def is_manager(user: User) -> bool:
    return user.has_role(*MANAGER_ROLES)


def require_manager(user: User, action: str = "此操作") -> None:
    if not is_manager(user):
        raise Forbidden(f"只有质量办或系统管理员可以{action}")


# -- levels ------------------------------------------------------------------------------------------

def ensure_levels() -> None:
    """Create the five levels (五横) if they are missing; idempotent."""
    existing = set(db.session.scalars(sa.select(Level.code)))
    for sort, (code, name) in enumerate(LEVELS.items(), start=1):
        if code not in existing:
            db.session.add(Level(code=code, name=name, sort=sort, round_unit=ROUND_UNITS[code]))
    if len(existing) < len(LEVELS):
        db.session.commit()


def list_levels() -> list[Level]:
    ensure_levels()
    return list(db.session.scalars(sa.select(Level).order_by(Level.sort)))


def _level(code: str, field: str = "level") -> str:
    """Accept a level code or its Chinese name; return the code."""
    if code in LEVELS:
        return code
    for key, name in LEVELS.items():
        if code == name:
            return key
    raise Invalid(f"层面“{code}”不存在", errors={field: [f"层面应为 {', '.join(LEVELS.values())} 之一"]})


def level_code(value: str) -> str | None:
    """A level code from a code or a Chinese name, or None."""
    try:
        return _level(value)
    except Invalid:
        return None


# -- object-level access -----------------------------------------------------------------------------

def visible_subject_filter(user: User):
    """A SQL condition on Subject selecting the subjects *user* may see (None: all). Supervisors (督导) read
    every unit's data like the quality office (hall/access.py QUALITY_READERS) but change nothing."""
    if user.has_role(*QUALITY_READERS):
        return None
    conditions = [Subject.responsible_user_id == user.id]
    head_paths = db.session.scalars(
        sa.select(OrgUnit.path).join(Membership, Membership.org_unit_id == OrgUnit.id)
        .where(Membership.user_id == user.id, Membership.role_code == "dept_head")
    ).all()
    if head_paths:
        subtree = sa.select(OrgUnit.id).where(sa.or_(*[OrgUnit.path.startswith(p) for p in head_paths]))
        conditions.append(Subject.org_unit_id.in_(subtree))
    return sa.or_(*conditions)


def _unit_subtree(org_unit_id: int):
    unit = db.session.get(OrgUnit, org_unit_id)
    if unit is None:
        raise NotFound(f"单位 {org_unit_id} 不存在")
    return sa.select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path))


def get_subject(subject_id: int, user: User | None = None) -> Subject:
    subject = db.session.get(Subject, subject_id)
    if subject is None:
        raise NotFound(f"质量主体 {subject_id} 不存在")
    if user is not None:
        condition = visible_subject_filter(user)
        if condition is not None and not db.session.scalar(
                sa.select(sa.literal(True)).where(Subject.id == subject_id, condition)):
            raise Forbidden("您无权查看此质量主体")
    return subject


# -- subjects ----------------------------------------------------------------------------------------

def list_subjects(user: User, level: str | None = None, org_unit: int | None = None, parent: int | None = None,
                  q: str | None = None, page: int = 1, page_size: int = 20) -> tuple[list[Subject], int]:
    query = sa.select(Subject)
    condition = visible_subject_filter(user)
    if condition is not None:
        query = query.where(condition)
    if level:
        query = query.where(Subject.level_code == _level(level))
    if org_unit:
        query = query.where(Subject.org_unit_id.in_(_unit_subtree(org_unit)))
    if parent:
        query = query.where(Subject.parent_id == parent)
    if q:
        needle = f"%{q.strip()}%"
        query = query.where(sa.or_(Subject.name.like(needle), Subject.code.like(needle)))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Subject.level_code, Subject.code)
                               .limit(page_size).offset((page - 1) * page_size)).all()
    return list(items), total


def create_subject(user: User, level: str, code: str, name: str, org_unit: int | None = None,
                   responsible: str | None = None, parent: int | None = None,
                   attributes: dict | None = None) -> Subject:
    require_manager(user, "新建质量主体")
    ensure_levels()
    level = _level(level)
    errors: dict[str, list[str]] = {}
    if db.session.scalar(sa.select(Subject.id).where(Subject.level_code == level, Subject.code == code)):
        errors["code"] = [f"{LEVELS[level]}层面已有编码为“{code}”的质量主体"]
    if org_unit is not None and db.session.get(OrgUnit, org_unit) is None:
        errors["org_unit"] = [f"单位 {org_unit} 不存在"]
    responsible_id = None
    if responsible:
        responsible_id = db.session.scalar(sa.select(User.id).where(User.username == responsible))
        if responsible_id is None:
            errors["responsible"] = [f"工号“{responsible}”不存在"]
    if parent is not None and db.session.get(Subject, parent) is None:
        errors["parent"] = [f"上级质量主体 {parent} 不存在"]
    if errors:
        raise Invalid("质量主体信息有误", errors=errors)
    subject = Subject(level_code=level, code=code, name=name, org_unit_id=org_unit, responsible_user_id=responsible_id,
                      parent_id=parent, attributes=attributes or {})
    db.session.add(subject)
    db.session.commit()
    return subject


# -- standards ---------------------------------------------------------------------------------------

def list_standards(level: str | None = None, kind: str | None = None, system: str | None = None) -> list[Standard]:
    query = sa.select(Standard)
    if level:
        query = query.where(Standard.level_code == _level(level))
    if kind:
        query = query.where(Standard.kind == kind)
    if system:
        query = query.where(Standard.system == system)
    return list(db.session.scalars(query.order_by(Standard.level_code, Standard.code)))


def create_standard(user: User, level: str, kind: str, system: str, code: str, title: str, items: list) -> Standard:
    require_manager(user, "制定标准")
    ensure_levels()
    level = _level(level)
    errors: dict[str, list[str]] = {}
    if kind not in STANDARD_KINDS:
        errors["kind"] = ["标准类别应为 operation（运行标准）或 development（发展标准）"]
    if system not in SYSTEMS:
        errors["system"] = [f"体系应为 {', '.join(f'{k}（{v}）' for k, v in SYSTEMS.items())} 之一"]
    if db.session.scalar(sa.select(Standard.id).where(Standard.code == code)):
        errors["code"] = [f"已有编码为“{code}”的标准"]
    if errors:
        raise Invalid("标准信息有误", errors=errors)
    standard = Standard(level_code=level, kind=kind, system=system, code=code, title=title, items=items)
    db.session.add(standard)
    db.session.commit()
    return standard


# -- monitoring points -------------------------------------------------------------------------------

def lines_problem(direction: str, target, standard, warning) -> str | None:
    """Why three lines are in the wrong order for their direction (None when they are fine)."""
    if direction == "bool":
        bad = [v for v in (target, standard, warning) if v is not None and v not in (0, 1)]
        if bad:
            return "是/否型质控点的目标值、标准值、预警值只能是 0 或 1"
    pairs = [(target, standard, "目标值", "标准值"), (standard, warning, "标准值", "预警值"),
             (target, warning, "目标值", "预警值")]
    for upper, lower, upper_name, lower_name in pairs:
        if upper is None or lower is None:
            continue
        if direction in ("higher", "bool") and upper < lower:
            return (f"“越高越好”的质控点须满足 目标值 ≥ 标准值 ≥ 预警值，"
                    f"而{upper_name} {upper:g} 小于{lower_name} {lower:g}")
        if direction == "lower" and upper > lower:
            return (f"“越低越好”的质控点须满足 目标值 ≤ 标准值 ≤ 预警值，"
                    f"而{upper_name} {upper:g} 大于{lower_name} {lower:g}")
    return None


def list_points(level: str | None = None, q: str | None = None) -> list[MonitoringPoint]:
    query = sa.select(MonitoringPoint)
    if level:
        query = query.where(MonitoringPoint.level_code == _level(level))
    if q:
        needle = f"%{q.strip()}%"
        query = query.where(sa.or_(MonitoringPoint.name.like(needle), MonitoringPoint.code.like(needle)))
    return list(db.session.scalars(query.order_by(MonitoringPoint.level_code, MonitoringPoint.code)))


def get_point(point_id: int) -> MonitoringPoint:
    point = db.session.get(MonitoringPoint, point_id)
    if point is None:
        raise NotFound(f"质控点 {point_id} 不存在")
    return point


POINT_FIELDS = ("element", "code", "name", "unit", "direction", "target_value", "standard_value", "warning_value",
                "source", "frequency", "standard_id", "is_example", "note")


def save_point(user: User, values: dict, point_id: int | None = None) -> MonitoringPoint:
    """Create (point_id None) or update a monitoring point; lines in the wrong order are refused."""
    require_manager(user, "维护质控点")
    ensure_levels()
    point = get_point(point_id) if point_id else MonitoringPoint()
    merged = {f: values.get(f, getattr(point, f, None)) for f in POINT_FIELDS}
    level = values.get("level") or point.level_code
    errors: dict[str, list[str]] = {}
    if not level:
        errors["level"] = ["请选择层面"]
    else:
        level = _level(level)
    if merged["direction"] not in DIRECTIONS:
        errors["direction"] = ["方向应为 higher（越高越好）、lower（越低越好）或 bool（是/否）"]
    else:
        problem = lines_problem(merged["direction"], merged["target_value"], merged["standard_value"],
                                merged["warning_value"])
        if problem:
            errors["standard_value"] = [problem]
    if merged["code"] and db.session.scalar(sa.select(MonitoringPoint.id).where(
            MonitoringPoint.code == merged["code"], MonitoringPoint.id != (point.id or 0))):
        errors["code"] = [f"已有编码为“{merged['code']}”的质控点"]
    if merged["standard_id"] and db.session.get(Standard, merged["standard_id"]) is None:
        errors["standard_id"] = [f"标准 {merged['standard_id']} 不存在"]
    if errors:
        raise Invalid(next(iter(errors.values()))[0] if len(errors) == 1 else "质控点信息有误", errors=errors)
    point.level_code = level
    for field in POINT_FIELDS:
        if merged[field] is not None or field in values:
            setattr(point, field, merged[field])
    if point_id is None:
        db.session.add(point)
    db.session.commit()
    return point


def set_override(user: User, point_id: int, subject_id: int, values: dict) -> PointOverride:
    """A subject's own lines for a point; the effective lines must keep the direction's order."""
    require_manager(user, "设置主体的质控点阈值")
    point = get_point(point_id)
    subject = get_subject(subject_id)
    if subject.level_code != point.level_code:
        raise Invalid("质控点与质量主体不属于同一层面", errors={"subject": ["层面不一致"]})
    override = db.session.scalar(sa.select(PointOverride).where(
        PointOverride.point_id == point_id, PointOverride.subject_id == subject_id))
    if override is None:
        override = PointOverride(point_id=point_id, subject_id=subject_id)
    lines = {f: values.get(f, getattr(override, f)) for f in ("target_value", "standard_value", "warning_value")}
    effective = {f: lines[f] if lines[f] is not None else getattr(point, f) for f in lines}
    problem = lines_problem(point.direction, effective["target_value"], effective["standard_value"],
                            effective["warning_value"])
    if problem:
        raise Invalid(problem, errors={"standard_value": [problem]})
    for field, value in lines.items():
        setattr(override, field, value)
    db.session.add(override)
    db.session.commit()
    return override


def effective_lines(point_id: int, subject_id: int) -> dict:
    point = get_point(point_id)
    get_subject(subject_id)
    override = db.session.scalar(sa.select(PointOverride).where(
        PointOverride.point_id == point_id, PointOverride.subject_id == subject_id))
    result = {"point_id": point.id, "subject_id": subject_id, "direction": point.direction, "overridden": False}
    for field in ("target_value", "standard_value", "warning_value"):
        own = getattr(override, field) if override else None
        result[field] = own if own is not None else getattr(point, field)
        result["overridden"] = result["overridden"] or own is not None
    return result


# -- targets -----------------------------------------------------------------------------------------

def list_targets(user: User, subject: int | None = None, period: str | None = None, parent: int | None = None,
                 page: int = 1, page_size: int = 50) -> tuple[list[Target], int]:
    query = sa.select(Target).join(Subject, Subject.id == Target.subject_id)
    condition = visible_subject_filter(user)
    if condition is not None:
        query = query.where(condition)
    if subject:
        query = query.where(Target.subject_id == subject)
    if period:
        query = query.where(Target.period == period)
    if parent:
        query = query.where(Target.parent_id == parent)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Target.subject_id, Target.period, Target.id)
                               .limit(page_size).offset((page - 1) * page_size)).all()
    return list(items), total


def create_target(user: User, subject: int, period: str, text: str, parent: int | None = None,
                  point: int | None = None, target_value: float | None = None) -> Target:
    """A target of the 目标链; a child's parent target belongs to the parent subject or the same subject."""
    owner = get_subject(subject, user)
    if not (is_manager(user) or owner.responsible_user_id == user.id):
        # A department head may see a subject but its targets are set by its team or the quality office.
        raise Forbidden("只有质量办或该质量主体的负责人可以制定目标")
    errors: dict[str, list[str]] = {}
    if period_problem(period):
        errors["period"] = [period_problem(period)]
    if parent is not None:
        parent_target = db.session.get(Target, parent)
        if parent_target is None:
            errors["parent"] = [f"上级目标 {parent} 不存在"]
        elif parent_target.subject_id not in (owner.id, owner.parent_id):
            errors["parent"] = ["上级目标须属于上级质量主体或本质量主体"]
    if point is not None:
        monitoring_point = db.session.get(MonitoringPoint, point)
        if monitoring_point is None:
            errors["point"] = [f"质控点 {point} 不存在"]
        elif monitoring_point.level_code != owner.level_code:
            errors["point"] = ["质控点与质量主体不属于同一层面"]
    if errors:
        raise Invalid("目标信息有误", errors=errors)
    target = Target(subject_id=owner.id, period=period, parent_id=parent, text=text, point_id=point,
                    target_value=target_value)
    db.session.add(target)
    db.session.commit()
    return target


# -- measurements ------------------------------------------------------------------------------------

@dataclass
class MeasurementRow:
    """One row to record, with its position for the error report (API: index from 1; file: sheet row)."""

    row: int
    subject: object  # an id (int) or a code
    level: str | None
    point: str
    period: str
    value: object
    source: str


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        text = str(value).strip().rstrip("%")
        return float(text) if text else None
    except ValueError:
        return None


def validate_measurements(rows: list[MeasurementRow], cycle_id: int | None = None,
                          columns: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:
    """Check every row; returns (resolved rows, errors [{row, column, message}]). Nothing is written."""
    columns = columns or {}
    col = lambda name: columns.get(name, name)  # noqa: E731 - the caller's name for a column
    cycle_period = None
    if cycle_id is not None:
        cycle = db.session.get(Cycle, cycle_id)
        if cycle is None:
            raise Invalid(f"诊改周期 {cycle_id} 不存在", errors={"cycle": ["周期不存在"]})
        cycle_period = cycle.period
    point_codes = {r.point for r in rows if r.point}
    points = {p.code: p for p in db.session.scalars(
        sa.select(MonitoringPoint).where(MonitoringPoint.code.in_(point_codes)))} if point_codes else {}
    ids = {r.subject for r in rows if isinstance(r.subject, int)}
    codes = {str(r.subject) for r in rows if not isinstance(r.subject, int) and r.subject not in (None, "")}
    by_id = {s.id: s for s in db.session.scalars(sa.select(Subject).where(Subject.id.in_(ids)))} if ids else {}
    by_code: dict[tuple[str, str], Subject] = {}
    if codes:
        for s in db.session.scalars(sa.select(Subject).where(Subject.code.in_(codes))):
            by_code[(s.level_code, s.code)] = s
    resolved, errors, seen = [], [], {}
    for r in rows:
        row_errors: list[dict] = []

        def fail(column, message, r=r, row_errors=row_errors):
            row_errors.append({"row": r.row, "column": col(column), "message": message})

        point = points.get(r.point)
        if not r.point:
            fail("point", "缺少质控点编码")
        elif point is None:
            fail("point", f"质控点“{r.point}”不存在")
        subject = None
        if r.subject in (None, ""):
            fail("subject", "缺少主体编码")
        elif isinstance(r.subject, int):
            subject = by_id.get(r.subject)
            if subject is None:
                fail("subject", f"质量主体 {r.subject} 不存在")
        else:
            level = level_code(r.level) if r.level else (point.level_code if point else None)
            if r.level and level is None:
                fail("level", f"层面“{r.level}”不存在")
            elif level is not None:
                subject = by_code.get((level, str(r.subject)))
                if subject is None:
                    fail("subject", f"{LEVELS[level]}层面没有编码为“{r.subject}”的质量主体")
        if subject is not None and point is not None and subject.level_code != point.level_code:
            fail("point", f"质控点“{point.code}”属于{LEVELS[point.level_code]}层面，"
                          f"与质量主体“{subject.name}”的层面不一致")
        problem = period_problem(str(r.period or ""))
        if problem:
            fail("period", problem)
        elif cycle_period is not None and r.period != cycle_period:
            fail("period", f"周期“{r.period}”不在本次诊改周期（{cycle_period}）内")
        value = _number(r.value)
        if value is None:
            fail("value", f"数值“{'' if r.value is None else r.value}”不是数字")
        elif point is not None and point.direction == "bool" and value not in (0, 1):
            fail("value", "是/否型质控点的数值只能是 0 或 1")
        source = (r.source or "manual").strip() or "manual"
        if not row_errors:
            key = (subject.id, point.id, r.period, source)
            if key in seen:
                fail("subject", f"与第 {seen[key]} 行重复（同一主体、质控点、周期、来源）")
            else:
                seen[key] = r.row
        if row_errors:
            errors.extend(row_errors)
        else:
            resolved.append({"subject_id": subject.id, "point_id": point.id, "period": r.period, "value": value,
                             "source": source})
    return resolved, errors


def record_measurements(rows: list[MeasurementRow], user: User | None, cycle_id: int | None = None,
                        columns: dict[str, str] | None = None, evaluate: bool = True) -> dict:
    """Validate the whole batch, then write it in one transaction (idempotent per subject+point+period+source).

    A repeated value changes nothing; a different value replaces it and keeps the old one as a revision.
    Afterwards warnings are evaluated for the (point, period) pairs touched. Returns counts.
    """
    if not rows:
        raise Invalid("没有要记录的数据", errors=[{"row": 0, "column": "", "message": "数据为空"}])
    resolved, errors = validate_measurements(rows, cycle_id, columns)
    if errors:
        raise Invalid(f"有 {len({e['row'] for e in errors})} 行数据有误，未写入任何数据", errors=errors)
    existing = {}
    keys = {(r["subject_id"], r["point_id"], r["period"], r["source"]) for r in resolved}
    for m in db.session.scalars(sa.select(Measurement).where(
            Measurement.subject_id.in_({k[0] for k in keys}), Measurement.point_id.in_({k[1] for k in keys}),
            Measurement.period.in_({k[2] for k in keys}))):
        existing[(m.subject_id, m.point_id, m.period, m.source)] = m
    now = utcnow()
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    touched: set[tuple[int, str]] = set()
    for r in resolved:
        key = (r["subject_id"], r["point_id"], r["period"], r["source"])
        current = existing.get(key)
        if current is None:
            db.session.add(Measurement(**r, measured_at=now, recorded_by_id=user.id if user else None))
            counts["created"] += 1
        elif current.value == r["value"]:
            counts["unchanged"] += 1
            continue
        else:
            db.session.add(MeasurementRevision(measurement_id=current.id, value=current.value,
                                               measured_at=current.measured_at, recorded_by_id=current.recorded_by_id,
                                               replaced_at=now))
            current.value, current.measured_at = r["value"], now
            current.recorded_by_id = user.id if user else None
            counts["updated"] += 1
        touched.add((r["point_id"], r["period"]))
    db.session.flush()
    if evaluate and touched:
        from hall.quality import warnings

        by_period: dict[str, set[int]] = {}
        for point_id, period in touched:
            by_period.setdefault(period, set()).add(point_id)
        raised = 0
        for period, point_ids in sorted(by_period.items()):
            raised += warnings.evaluate_warnings(sorted(point_ids), period, actor=user, commit=False)["raised"]
        counts["warnings_raised"] = raised
    db.session.commit()
    return counts


@on_terminated
def release_terminated_instance(instance_id: int) -> None:
    """A process the hall started ended without being handled (terminated by an administrator, after an
    error, or withdrawn): its warning goes back to open with the link cleared, so the next evaluation starts
    a new handling process for it, and its cycle unit is marked terminated rather than left at a step."""
    db.session.execute(
        sa.update(QualityWarning)
        .where(QualityWarning.instance_id == instance_id, QualityWarning.state == "handling")
        .values(state="open", instance_id=None)
        .execution_options(synchronize_session=False))
    db.session.execute(
        sa.update(CycleUnit).where(CycleUnit.instance_id == instance_id, CycleUnit.step != "done")
        .values(step="terminated", step_due=None)
        .execution_options(synchronize_session=False))
