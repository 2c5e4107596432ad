"""Cycles of the big loop: open a round for a level and period, start one diagnosis process per subject,
and read its progress.

Opening is idempotent (one cycle per level and period, enforced by a unique key) and runs as background
work in batches: each batch starts its instances and writes their CycleUnit rows in one transaction, so a
retried or concurrent job never starts a subject twice (the unique cycle+subject key refuses the batch).
Progress is computed set-based from the human tasks of the cycle's instances.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hall.accounts.models import User
from hall.db_types import utcnow
from hall.errors import Conflict, Forbidden, Invalid, NotFound
from hall.extensions import db
from hall.org.models import Membership, OrgUnit
from hall.processes import services as processes
from hall.processes.models import ProcessInstance
from hall.quality.models import CYCLE_STEPS, Cycle, CycleUnit, Level, QualityWarning, Subject
from hall.quality.operators import draft_targets_of
from hall.tasks.models import HumanTask

log = logging.getLogger(__name__)

DEFINITION_KEY = "diagnosis_cycle"
BATCH_SIZE = 200
# A large opening is split into shards (subjects by id % shards), one job each, so two workers use two cores.
SHARDS = 2
SHARD_MIN = 1000  # subjects per shard at least: a small cycle is opened by one job
STEP_NAMES = dict(CYCLE_STEPS) | {"done": "已完成", "error": "出错", "terminated": "已终止", "suspended": "已挂起"}
# User tasks that belong to a step without being named after it.
ELEMENT_STEPS = {"target_review": "target"}
# Deadlines are calendar days of the college (China Standard Time, no daylight saving).
COLLEGE_TZ = timezone(timedelta(hours=8))
MANAGERS = ("quality_office", "admin")
OVERVIEW_ROLES = ("quality_office", "admin", "supervisor")

# -- periods -----------------------------------------------------------------------------------------

# An academic year "2026-2027", or one of its semesters "2026-2027-1" / "2026-2027-2".
_PERIOD = re.compile(r"^(\d{4})-(\d{4})(?:-([12]))?$")


def parse_period(period: str) -> tuple[int, int, int | None] | None:
    match = _PERIOD.match(period or "")
    if not match:
        return None
    first, second = int(match.group(1)), int(match.group(2))
    if second != first + 1:
        return None
    return first, second, int(match.group(3)) if match.group(3) else None


def next_period(period: str) -> str:
    """The period after this one: the next academic year, or the next semester."""
    parsed = parse_period(period)
    if parsed is None:
        raise ValueError(f"unknown period format: {period!r}")
    first, second, semester = parsed
    if semester == 1:
        return f"{first}-{second}-2"
    if semester == 2:
        return f"{first + 1}-{second + 1}-1"
    return f"{first + 1}-{second + 1}"


def default_period_end(period: str) -> date:
    first, second, semester = parse_period(period)
    return {None: date(second, 8, 31), 1: date(second, 1, 31), 2: date(second, 7, 31)}[semester]


def period_label(period: str) -> str:
    first, second, semester = parse_period(period)
    return f"{first}-{second} 学年" + (f"第{semester}学期" if semester else "")


def end_of_day(day: date) -> str:
    """The last second of a college day, as an ISO datetime with its offset (what timers and due dates read)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=COLLEGE_TZ).isoformat()


def _parse_day_or_time(value) -> str | None:
    """An ISO date (end of that day) or datetime (naive = college time) as an ISO datetime, or None if bad."""
    text = str(value or "").strip()
    try:
        if len(text) == 10:
            return end_of_day(date.fromisoformat(text))
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=COLLEGE_TZ)).isoformat()


# -- opening -----------------------------------------------------------------------------------------

def _require_manager(user: User) -> None:
    if not (user.is_admin or user.has_role(*MANAGERS)):
        raise Forbidden("只有质量管理办公室可以开启诊改周期")


def _scope_query(level: str, scope: dict, unit: OrgUnit | None):
    query = sa.select(Subject.id).where(Subject.level_code == level, Subject.active.is_(True))
    if unit is not None:
        query = query.join(OrgUnit, OrgUnit.id == Subject.org_unit_id).where(OrgUnit.path.startswith(unit.path))
    if scope.get("subjects"):
        query = query.where(Subject.id.in_(scope["subjects"]))
    return query


def _validate(level: str, period: str, scope, deadlines, period_end) -> tuple[Level, dict, dict, date, OrgUnit | None]:
    """Check every argument; all problems are reported at once, field by field."""
    errors: dict[str, list[str]] = {}
    level_row = db.session.get(Level, level) if isinstance(level, str) and level else None
    if level_row is None:
        errors["level"] = [f"层面 {level!r} 不存在"]
    if not isinstance(period, str) or parse_period(period) is None:
        errors["period"] = ["周期格式应为学年 2026-2027 或学期 2026-2027-1 / 2026-2027-2"]
    scope = scope or {}
    unit = None
    if not isinstance(scope, dict) or set(scope) - {"org_unit", "subjects"}:
        errors["scope"] = ["范围只能按部门 {\"org_unit\": 编号} 或主体 {\"subjects\": [编号…]} 指定"]
    else:
        if scope.get("org_unit") is not None:
            unit = db.session.get(OrgUnit, scope["org_unit"]) if isinstance(scope["org_unit"], int) else None
            if unit is None:
                errors.setdefault("scope", []).append(f"部门 {scope['org_unit']!r} 不存在")
        if "subjects" in scope:
            ids = scope["subjects"]
            if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
                errors.setdefault("scope", []).append("主体应为非空的编号列表")
            elif level_row is not None:
                found = set(db.session.scalars(sa.select(Subject.id).where(
                    Subject.id.in_(ids), Subject.level_code == level, Subject.active.is_(True))))
                missing = [i for i in ids if i not in found]
                if missing:
                    errors.setdefault("scope", []).append(
                        "以下主体不存在或不属于该层面：" + "、".join(map(str, missing)))
    due = {}
    if deadlines is not None and not isinstance(deadlines, dict):
        errors["deadlines"] = ["截止日期应为 {步骤: 日期} 对象"]
    else:
        steps = dict(CYCLE_STEPS)
        for step, value in (deadlines or {}).items():
            if step not in steps:
                errors.setdefault("deadlines", []).append(f"未知步骤 {step!r}（可用：{'、'.join(steps)}）")
            elif (moment := _parse_day_or_time(value)) is None:
                errors.setdefault("deadlines", []).append(f"{steps[step]}的截止日期 {value!r} 不是有效日期")
            else:
                due[step] = moment
    end = None
    if period_end is not None:
        try:
            end = period_end if isinstance(period_end, date) else date.fromisoformat(str(period_end))
        except ValueError:
            errors["period_end"] = [f"周期结束日期 {period_end!r} 不是有效日期（YYYY-MM-DD）"]
    if errors:
        raise Invalid("开启诊改周期的参数有误", errors=errors)
    if end is None:
        end = default_period_end(period)
    return level_row, scope, due, end, unit


def open_cycle(level: str, period: str, user: User, scope: dict | None = None, deadlines: dict | None = None,
               period_end: str | date | None = None) -> Cycle:
    """Open (or return the already opened) cycle of a level and period; instances start in the background."""
    cycle, pending = create_cycle(level, period, user, scope, deadlines, period_end)
    if not pending:
        return cycle
    enqueue_units(cycle.id, cycle.total)
    db.session.expire_all()
    return db.session.get(Cycle, cycle.id)


def create_cycle(level: str, period: str, user: User, scope: dict | None = None, deadlines: dict | None = None,
                 period_end: str | date | None = None) -> tuple[Cycle, bool]:
    """The first half of open_cycle: the cycle row (created, or an interrupted one set opening again), and
    whether its units still have to be started (by enqueue_units, or by workers running open_units)."""
    _require_manager(user)
    level_row, scope, due, end, unit = _validate(level, period, scope, deadlines, period_end)
    existing = db.session.scalar(sa.select(Cycle).where(Cycle.level_code == level, Cycle.period == period))
    if existing is None:
        try:
            processes.get_definition(DEFINITION_KEY)
        except NotFound:
            raise Conflict("诊改流程（diagnosis_cycle）尚未部署，不能开启诊改周期") from None
        total = db.session.scalar(sa.select(sa.func.count()).select_from(_scope_query(level, scope, unit).subquery()))
        if not total:
            raise Invalid("范围内没有可诊改的质量主体", errors={"scope": ["范围内没有该层面的质量主体"]})
        cycle = Cycle(level_code=level, period=period, title=f"{level_row.name}层面 {period_label(period)}诊改",
                      definition_key=DEFINITION_KEY, state="opening", scope=scope, deadlines=due,
                      period_end=end, total=total, opened=0, created_by_id=user.id)
        db.session.add(cycle)
        try:
            db.session.flush()
            cycle_id = cycle.id
            db.session.commit()
        except IntegrityError:  # opened by somebody else meanwhile: theirs is the cycle
            db.session.rollback()
            existing = db.session.scalar(sa.select(Cycle).where(Cycle.level_code == level, Cycle.period == period))
            return existing, False
    elif existing.state in ("opening", "failed"):
        # Resume an interrupted opening; subjects that already have a unit are skipped.
        cycle_id = existing.id
        if existing.state == "failed":
            existing.state, existing.error = "opening", None
        db.session.commit()
    else:
        return existing, False
    return db.session.get(Cycle, cycle_id), True


def shard_count(total: int) -> int:
    """How many jobs open a cycle of *total* subjects: one per SHARD_MIN subjects, at most SHARDS."""
    return max(1, min(SHARDS, (total or 0) // SHARD_MIN))


def enqueue_units(cycle_id: int, total: int) -> int:
    """Queue the shard jobs that start a cycle's instances (with a broker, workers run them in parallel;
    without one, they run here one after the other); returns the number of shards."""
    from hall.quality.tasks import open_cycle_units_job

    shards = shard_count(total)
    for shard in range(shards):
        try:
            open_cycle_units_job.delay(cycle_id, shard, shards)
        except Exception:  # noqa: BLE001 - run in-process (eager): the shard has marked the cycle failed
            log.exception("opening cycle %s (shard %s of %s) failed", cycle_id, shard, shards)
    return shards


def _pending(cycle: Cycle, unit: OrgUnit | None):
    """The cycle's subjects in scope that have no unit yet."""
    done = sa.select(CycleUnit.subject_id).where(CycleUnit.cycle_id == cycle.id)
    return sa.select(Subject).where(Subject.id.in_(_scope_query(cycle.level_code, cycle.scope, unit)),
                                    Subject.id.not_in(done))


def open_units(cycle_id: int, batch_size: int | None = None, shard: int = 0, shards: int = 1) -> int:
    """The background part of opening: start the instances of one shard (the subjects whose id % shards ==
    shard) batch by batch; returns how many it started.

    Each batch is one transaction: its instances (processes.start_instances), its CycleUnit rows and
    `opened = opened + n`, so progress advances batch by batch and a failed batch leaves nothing behind.
    A rerun skips the subjects that already have a unit; a concurrent run of the same shard is refused
    by the unique cycle+subject key. Whichever shard finds no subject left sets the cycle open."""
    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None or cycle.state not in ("opening", "failed"):
        return 0
    batch_size = batch_size or BATCH_SIZE
    started = 0
    try:
        opener = db.session.get(User, cycle.created_by_id)
        level = db.session.get(Level, cycle.level_code)
        unit = db.session.get(OrgUnit, cycle.scope["org_unit"]) if cycle.scope.get("org_unit") else None
        key, title, period = cycle.definition_key, cycle.title, cycle.period
        base = dict(
            cycle_id=cycle.id, cycle_title=title, level=cycle.level_code, level_name=level.name,
            period=period, next_period=next_period(period),
            implement_until=end_of_day(cycle.period_end), deadlines=dict(cycle.deadlines or {}),
        )
        target_due = _due_date(cycle.deadlines.get("target")) if cycle.deadlines else None
        pending = _pending(cycle, unit)
        if shards > 1:
            pending = pending.where(Subject.id % shards == shard)
        pending = pending.order_by(Subject.id).limit(batch_size)
        conflicts = 0
        while True:
            with db.session.no_autoflush:
                subjects = db.session.scalars(pending).all()
                if not subjects:
                    break
                ids = [s.id for s in subjects]
                drafts = draft_targets_of(ids, period)  # the batch's drafts in one query, not one per start
                instance_ids = processes.start_instances(key, opener, [
                    dict(data=dict(base, subject_id=s.id, subject_code=s.code, subject_name=s.name,
                                   targets=drafts.get(s.id, [])),
                         org_unit_id=s.org_unit_id, subject_id=s.id, title=f"{title} · {s.name}")
                    for s in subjects
                ])
            try:
                db.session.execute(sa.insert(CycleUnit), [
                    dict(cycle_id=cycle_id, subject_id=subject_id, instance_id=instance_id, step="target",
                         step_due=target_due, report={})
                    for subject_id, instance_id in zip(ids, instance_ids, strict=True)])
                db.session.execute(sa.update(Cycle).where(Cycle.id == cycle_id)
                                   .values(opened=Cycle.opened + len(ids))
                                   .execution_options(synchronize_session=False))
                db.session.commit()
                started += len(ids)
            except IntegrityError:
                # Another run of this job took some of these subjects first: drop this batch, read again.
                db.session.rollback()
                conflicts += 1
                if conflicts > 3:
                    raise
        # The last shard to finish (the one that finds no subject of any shard left) opens the cycle.
        db.session.execute(
            sa.update(Cycle)
            .where(Cycle.id == cycle_id, Cycle.state.in_(("opening", "failed")),
                   ~sa.exists(_pending(cycle, unit).with_only_columns(Subject.id)))
            .values(state="open", error=None)
            .execution_options(synchronize_session=False))
        db.session.commit()
    except Exception as err:
        db.session.rollback()
        log.exception("opening cycle %s (shard %s of %s) failed", cycle_id, shard, shards)
        db.session.execute(sa.update(Cycle).where(Cycle.id == cycle_id, Cycle.state.in_(("opening", "failed")))
                           .values(state="failed", error=f"{err.__class__.__name__}: {err}"[:2000]))
        db.session.commit()
        raise
    return started


def _due_date(value: str | None) -> date | None:
    return datetime.fromisoformat(value).date() if value else None


# -- reading -----------------------------------------------------------------------------------------

def list_cycles(level: str | None = None, page: int = 1, page_size: int = 20):
    query = sa.select(Cycle)
    if level:
        query = query.where(Cycle.level_code == level)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Cycle.id.desc()).limit(page_size).offset((page - 1) * page_size)).all()
    return items, total


def get_cycle(cycle_id: int) -> Cycle:
    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None:
        raise NotFound(f"诊改周期 {cycle_id} 不存在")
    return cycle


def _visible_subjects(user: User):
    """A clause on Subject: all for the quality office, a head's departments, otherwise one's own subjects."""
    if user.is_admin or user.has_role(*OVERVIEW_ROLES):
        return sa.true()
    head_paths = db.session.scalars(
        sa.select(OrgUnit.path).join(Membership, Membership.org_unit_id == OrgUnit.id)
        .where(Membership.user_id == user.id, Membership.role_code == "dept_head")
    ).all()
    clauses = [Subject.responsible_user_id == user.id]
    if head_paths:
        clauses.append(Subject.org_unit_id.in_(
            sa.select(OrgUnit.id).where(sa.or_(*[OrgUnit.path.startswith(p) for p in head_paths]))))
    return sa.or_(*clauses)


def _step_of(label: str | None) -> str:
    return ELEMENT_STEPS.get(label, label or "implement")


def _open_tasks(instance_ids):
    """Per instance of *instance_ids* (a select of ids), its open user task's element and due date."""
    return (
        sa.select(HumanTask.instance_id, sa.func.min(HumanTask.element_id).label("element"),
                  sa.func.min(HumanTask.due_at).label("due_at"))
        .where(HumanTask.state.in_(processes.OPEN_TASK_STATES), HumanTask.kind == "user",
               HumanTask.instance_id.in_(instance_ids))
        .group_by(HumanTask.instance_id)
        .subquery()
    )


def _label(open_tasks):
    """Where a unit stands: its open task's element; "done" when its instance ended; a running instance
    without an open task is waiting for the period to end (the 实施 timer)."""
    return sa.case(
        (ProcessInstance.state == "completed", "done"),
        (ProcessInstance.state.in_(("error", "terminated", "suspended")), ProcessInstance.state),
        (open_tasks.c.element.is_(None), "implement"),
        else_=open_tasks.c.element,
    ).label("label")


def current_steps(instance_ids) -> dict[int, str]:
    """The step each diagnosis instance of *instance_ids* (a select of ids) stands at, by instance id, as the
    progress page counts it. CycleUnit.step is written only when a unit starts and ends (and on
    termination), so whatever shows a running unit's step reads it here, from its instance and open task."""
    open_tasks = _open_tasks(instance_ids)
    rows = db.session.execute(
        sa.select(ProcessInstance.id, _label(open_tasks))
        .outerjoin(open_tasks, open_tasks.c.instance_id == ProcessInstance.id)
        .where(ProcessInstance.id.in_(instance_ids))).all()
    return {instance_id: _step_of(label) for instance_id, label in rows}


def cycle_progress(cycle_id: int, user: User, page: int = 1, page_size: int = 20, step: str | None = None,
                   overdue_limit: int = 100, org_unit: int | None = None) -> dict:
    """Counts by step and department, units page by page, overdue steps and open warnings of a cycle
    (with *org_unit*: of the subjects in that unit's subtree only, the dashboard's drill-down)."""
    cycle = get_cycle(cycle_id)
    now = utcnow()
    visible = _visible_subjects(user)
    if org_unit is not None:
        unit = db.session.get(OrgUnit, org_unit)
        if unit is None:
            raise NotFound(f"部门 {org_unit} 不存在")
        visible = sa.and_(visible, Subject.org_unit_id.in_(
            sa.select(OrgUnit.id).where(OrgUnit.path.startswith(unit.path, autoescape=True))))
    open_tasks = _open_tasks(sa.select(CycleUnit.instance_id).where(CycleUnit.cycle_id == cycle.id))
    label = _label(open_tasks)
    overdue = sa.and_(open_tasks.c.due_at.is_not(None), open_tasks.c.due_at < now)

    def units(*columns):
        return (sa.select(*columns).select_from(CycleUnit)
                .join(Subject, Subject.id == CycleUnit.subject_id)
                .outerjoin(ProcessInstance, ProcessInstance.id == CycleUnit.instance_id)
                .outerjoin(open_tasks, open_tasks.c.instance_id == CycleUnit.instance_id)
                .where(CycleUnit.cycle_id == cycle.id, visible))

    by_step = {code: 0 for code, _ in CYCLE_STEPS} | {"done": 0}
    for row_label, count in db.session.execute(units(label, sa.func.count()).group_by(label)).all():
        key = _step_of(row_label)
        by_step[key] = by_step.get(key, 0) + count

    departments: dict[int | None, dict] = {}
    for unit_id, unit_name, row_label, count in db.session.execute(
        units(Subject.org_unit_id, OrgUnit.name, label, sa.func.count())
        .outerjoin(OrgUnit, OrgUnit.id == Subject.org_unit_id)
        .group_by(Subject.org_unit_id, OrgUnit.name, label)
    ).all():
        entry = departments.setdefault(unit_id, {"org_unit": unit_id, "name": unit_name or "（未指定部门）",
                                                 "total": 0, "by_step": {}})
        key = _step_of(row_label)
        entry["total"] += count
        entry["by_step"][key] = entry["by_step"].get(key, 0) + count

    columns = (CycleUnit.subject_id, Subject.code, Subject.name, Subject.org_unit_id, CycleUnit.instance_id,
               CycleUnit.grade, label, open_tasks.c.due_at, overdue.label("overdue"))

    def item(row) -> dict:
        key = _step_of(row.label)
        return {"subject_id": row.subject_id, "subject_code": row.code, "subject_name": row.name,
                "org_unit": row.org_unit_id, "instance_id": row.instance_id, "step": key,
                "step_name": STEP_NAMES.get(key, key), "element": row.label, "due_at": row.due_at,
                "overdue": bool(row.overdue), "grade": row.grade}

    subject_query = units(*columns)
    if step:
        labels = [step] + [element for element, owner in ELEMENT_STEPS.items() if owner == step]
        subject_query = subject_query.where(label.in_(labels))
    subject_total = db.session.scalar(sa.select(sa.func.count()).select_from(subject_query.subquery()))
    subjects = [item(r) for r in db.session.execute(
        subject_query.order_by(Subject.code, CycleUnit.id).limit(page_size).offset((page - 1) * page_size)).all()]

    overdue_query = units(*columns).where(overdue)
    overdue_count = db.session.scalar(sa.select(sa.func.count()).select_from(overdue_query.subquery()))
    overdue_items = [item(r) for r in db.session.execute(
        overdue_query.order_by(open_tasks.c.due_at, Subject.code).limit(overdue_limit)).all()]

    warnings = {"yellow": 0, "red": 0}
    for level, count in db.session.execute(
        sa.select(QualityWarning.level, sa.func.count())
        .where(QualityWarning.period == cycle.period, QualityWarning.state.in_(("open", "handling")),
               QualityWarning.subject_id.in_(units(CycleUnit.subject_id)))
        .group_by(QualityWarning.level)
    ).all():
        warnings[level] = count
    return {
        "cycle": cycle, "total": cycle.total, "opened": cycle.opened, "state": cycle.state,
        "by_step": by_step,
        "by_department": sorted(departments.values(), key=lambda d: d["name"]),
        "by_subject": {"items": subjects, "total": subject_total, "page": page, "page_size": page_size},
        "overdue": {"count": overdue_count, "items": overdue_items},
        "open_warnings": dict(warnings, total=sum(warnings.values())),
    }
