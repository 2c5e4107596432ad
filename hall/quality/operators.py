"""Service-task operators of the diagnosis process (workflows/diagnosis_cycle.bpmn).

They run inside the engine call, in the request's (or the opening job's) app context: reads see the
current transaction, writes are committed together with the instance by apply_outcome. Each returns
plain JSON that the diagram stores in its result variable, where a form picks it up as pre-filled data.
"""

from __future__ import annotations

import sqlalchemy as sa

from hall.db_types import utcnow
from hall.engine.services import operator
from hall.extensions import db
from hall.quality.models import (
    LEVELS,
    CycleUnit,
    Measurement,
    MonitoringPoint,
    PointOverride,
    QualityWarning,
    Subject,
    Target,
)
from hall.tasks.services import form_check

# The form fields each step writes, kept in CycleUnit.report under the step's code.
STEP_FIELDS = {
    "target": ("targets", "target_summary"),
    "target_review": ("review_decision", "review_opinion", "return_reason"),
    "standard": ("standard_points", "standard_confirmed", "standard_note"),
    "design": ("design_plan", "design_milestones"),
    "organise": ("organise_responsibilities", "organise_resources"),
    "implement": ("implement_progress",),
    "diagnose": ("diagnosis_points", "diagnosis_text", "diagnosis_problems"),
    "incentive": ("grade", "incentive_measures", "accountability"),
    "learn": ("learn_text",),
    "innovate": ("innovate_text",),
    "improve": ("improvements", "improve_text"),
}
GRADES = ("优秀", "良好", "合格", "不合格")
STATUS_LABELS = {
    "target_met": "达到目标值",
    "standard_met": "达到标准值",
    "yellow": "未达标准值（黄色预警）",
    "red": "超过预警线（红色预警）",
    "no_data": "暂无数据",
}


def _subject(params: dict) -> Subject:
    subject = db.session.get(Subject, int(params["subject_id"]))
    if subject is None:
        raise LookupError(f"质量主体 {params['subject_id']} 不存在")
    return subject


def _number(value):
    return None if value is None else float(value)


def effective_points(subject: Subject) -> list[dict]:
    """The level's monitoring points with the subject's own lines where it overrides the defaults."""
    rows = db.session.execute(
        sa.select(MonitoringPoint, PointOverride)
        .outerjoin(PointOverride, sa.and_(PointOverride.point_id == MonitoringPoint.id,
                                          PointOverride.subject_id == subject.id))
        .where(MonitoringPoint.level_code == subject.level_code)
        .order_by(MonitoringPoint.element, MonitoringPoint.code)
    ).all()
    points = []
    for point, override in rows:
        lines = {}
        for name in ("target_value", "standard_value", "warning_value"):
            own = getattr(override, name) if override is not None else None
            lines[name] = _number(own if own is not None else getattr(point, name))
        points.append(dict(point=point.code, point_id=point.id, name=point.name, element=point.element,
                           unit=point.unit, direction=point.direction, **lines))
    return points


def status_of(value: float | None, direction: str, target: float | None, standard: float | None,
              warning: float | None) -> str:
    """Where a measured value stands against its lines (same tiers as warnings: yellow, then red)."""
    if value is None:
        return "no_data"
    if direction == "lower":
        better_or_equal = lambda a, b: a <= b  # noqa: E731
    else:  # higher, and bool (1 = yes)
        better_or_equal = lambda a, b: a >= b  # noqa: E731
    if warning is not None and not better_or_equal(value, warning):
        return "red"
    if standard is not None and not better_or_equal(value, standard):
        return "yellow"
    if target is not None and better_or_equal(value, target):
        return "target_met"
    return "standard_met"


@operator("quality.draft_targets")
def draft_targets(params: dict, data: dict) -> list[dict]:
    """This period's draft targets of the subject (written by the last cycle's 改进), to pre-fill 目标.

    A job that starts many instances reads the drafts of its whole batch in one query (draft_targets_of)
    and passes each subject's list in the start data as `targets`; then there is nothing to read here."""
    if isinstance(data.get("targets"), list):
        return data["targets"]
    return draft_targets_of([int(params["subject_id"])], str(params["period"])).get(int(params["subject_id"]), [])


def draft_targets_of(subject_ids: list[int], period: str) -> dict[int, list[dict]]:
    """The draft targets of several subjects for a period, as the 目标 form's items, by subject id."""
    if not subject_ids:
        return {}
    rows = db.session.execute(
        sa.select(Target.subject_id, Target.text, MonitoringPoint.code, Target.target_value)
        .outerjoin(MonitoringPoint, MonitoringPoint.id == Target.point_id)
        .where(Target.subject_id.in_(subject_ids), Target.period == period, Target.state == "draft")
        .order_by(Target.id)
    ).all()
    items: dict[int, list[dict]] = {}
    for subject_id, text, point_code, target_value in rows:
        item = {"text": text}
        if point_code is not None:
            item["point"] = point_code
        if target_value is not None:
            item["target_value"] = target_value
        items.setdefault(subject_id, []).append(item)
    return items


# The form fields that hold target items ({text, point?, target_value?}): 目标 and 改进 (next period's drafts).
TARGET_ITEM_FIELDS = ("targets", "improvements")


def value_problem(point: MonitoringPoint, value: float) -> str | None:
    """Why a value is impossible for a point, by what the point says of itself: a yes/no point takes 0 or 1,
    a percentage 0–100, and the hall's other points (counts, amounts, ratios) are never negative."""
    if point.direction == "bool":
        return None if value in (0, 1) else "是/否型质控点的目标值只能是 0 或 1"
    if point.unit == "%":
        return None if 0 <= value <= 100 else "百分比质控点的目标值应在 0 到 100 之间"
    return None if value >= 0 else "目标值不能为负数"


@form_check("diagnosis_target.json", "diagnosis_improve.json")
def check_target_items(data: dict, instance) -> dict[str, list[str]]:
    """Each target item names a monitoring point that exists, of the subject's level, with a value it allows;
    otherwise the item's field gets the message (the item would be stored without its point)."""
    subject = db.session.get(Subject, instance.subject_id) if getattr(instance, "subject_id", None) else None
    errors: dict[str, list[str]] = {}
    for field in TARGET_ITEM_FIELDS:
        items = [i if isinstance(i, dict) else {} for i in data.get(field) or []] \
            if isinstance(data.get(field), list) else []
        codes = {str(i["point"]).strip() for i in items if str(i.get("point") or "").strip()}
        points = {p.code: p for p in db.session.scalars(
            sa.select(MonitoringPoint).where(MonitoringPoint.code.in_(codes)))} if codes else {}
        for index, item in enumerate(items):
            code = str(item.get("point") or "").strip()
            if not code:
                continue
            point = points.get(code)
            if point is None:
                errors[f"{field}.{index}.point"] = [f"质控点代码“{code}”不存在"]
                continue
            if subject is not None and point.level_code != subject.level_code:
                errors[f"{field}.{index}.point"] = [
                    f"质控点“{code}”属于{LEVELS.get(point.level_code, point.level_code)}层面，"
                    f"不是{subject.name}所在的{LEVELS.get(subject.level_code, subject.level_code)}层面"]
                continue
            value = item.get("target_value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                problem = value_problem(point, float(value))
                if problem:
                    errors[f"{field}.{index}.target_value"] = [problem]
    return errors


def _point_ids(codes: set[str]) -> dict[str, int]:
    if not codes:
        return {}
    return dict(db.session.execute(
        sa.select(MonitoringPoint.code, MonitoringPoint.id).where(MonitoringPoint.code.in_(codes))
    ).all())


def _write_targets(subject_id: int, period: str, items: list[dict], cycle_id: int | None, state: str,
                   origin: str) -> int:
    """Store target items ({text, point?, target_value?}); a point code the hall does not know is dropped."""
    ids = _point_ids({str(i["point"]) for i in items if isinstance(i, dict) and i.get("point")})
    rows = []
    for item in items or []:
        if not isinstance(item, dict) or not str(item.get("text") or "").strip():
            continue
        value = item.get("target_value")
        rows.append(Target(subject_id=subject_id, period=period, text=str(item["text"]).strip(),
                           point_id=ids.get(str(item.get("point") or "")), cycle_id=cycle_id,
                           target_value=float(value) if isinstance(value, (int, float)) else None,
                           state=state, origin=origin))
    db.session.add_all(rows)
    return len(rows)


@operator("quality.approve_targets")
def approve_targets(params: dict, data: dict) -> int:
    """目标审核 passed: the approved targets replace this period's drafts and any earlier approval by this cycle."""
    subject_id, period = int(params["subject_id"]), str(params["period"])
    cycle_id = int(params["cycle_id"]) if params.get("cycle_id") is not None else None
    db.session.execute(sa.delete(Target).where(
        Target.subject_id == subject_id, Target.period == period,
        sa.or_(Target.state == "draft", sa.and_(Target.cycle_id == cycle_id, Target.origin == "plan")),
    ))
    return _write_targets(subject_id, period, params.get("targets") or [], cycle_id, "approved", "plan")


@operator("quality.level_points")
def level_points(params: dict, data: dict) -> list[dict]:
    """The points of the subject's level with their effective 目标值/标准值/预警值 (pre-fills 标准)."""
    return [{k: v for k, v in p.items() if k != "point_id"} for p in effective_points(_subject(params))]


@operator("quality.diagnosis_data")
def diagnosis_data(params: dict, data: dict) -> list[dict]:
    """Every point's measured value for the subject and period against its lines, with its warning (诊断)."""
    subject = _subject(params)
    period = str(params["period"])
    points = effective_points(subject)
    # The latest value per point when several sources report one.
    latest = {}
    for point_id, value, _at in db.session.execute(
        sa.select(Measurement.point_id, Measurement.value, Measurement.measured_at)
        .where(Measurement.subject_id == subject.id, Measurement.period == period)
        .order_by(Measurement.measured_at, Measurement.id)
    ).all():
        latest[point_id] = value
    warnings = {
        w.point_id: {"level": w.level, "state": w.state}
        for w in db.session.scalars(sa.select(QualityWarning).where(
            QualityWarning.subject_id == subject.id, QualityWarning.period == period))
    }
    items = []
    for p in points:
        value = latest.get(p["point_id"])
        status = status_of(value, p["direction"], p["target_value"], p["standard_value"], p["warning_value"])
        item = {k: v for k, v in p.items() if k != "point_id"}
        item.update(value=_number(value), status=status, status_label=STATUS_LABELS[status],
                    warning=warnings.get(p["point_id"]))
        items.append(item)
    return items


@operator("quality.close_unit")
def close_unit(params: dict, data: dict) -> dict:
    """The end of the round: keep what every step wrote and the grade on the cycle unit, and turn the
    improvements into draft targets of the subject's next period (the spiral closes)."""
    cycle_id, subject_id, period = int(params["cycle_id"]), int(params["subject_id"]), str(params["period"])
    report = {step: {f: data[f] for f in fields if f in data} for step, fields in STEP_FIELDS.items()}
    grade = data.get("grade") if data.get("grade") in GRADES else None
    unit = db.session.scalar(sa.select(CycleUnit).where(CycleUnit.cycle_id == cycle_id,
                                                        CycleUnit.subject_id == subject_id))
    if unit is not None:
        unit.report = report
        unit.grade = grade
        unit.step = "done"
        unit.completed_at = utcnow()
    from hall.quality.cycles import next_period

    following = next_period(period)
    # A retried close replaces what an earlier attempt of this cycle wrote, never doubles it.
    db.session.execute(sa.delete(Target).where(
        Target.subject_id == subject_id, Target.period == following, Target.cycle_id == cycle_id,
        Target.origin == "improvement", Target.state == "draft",
    ))
    count = _write_targets(subject_id, following, data.get("improvements") or [], cycle_id, "draft", "improvement")
    db.session.flush()
    return {"grade": grade, "next_period": following, "draft_targets": count}
