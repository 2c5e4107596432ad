"""Pages of the quality office and department heads: the cycle dashboard, portraits with drill-down, warnings
and report downloads. Views stay thin: they call the quality services (which check who may see what) and
render; charts get their data through <script type="application/json"> blocks read by static/js/charts.js.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from hall.errors import Invalid
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.quality import cycles, portraits
from hall.quality import services as quality
from hall.quality import warnings as quality_warnings
from hall.quality.models import CYCLE_STEPS, DIRECTIONS, LEVELS, WARNING_STATES, Cycle, CycleUnit
from hall.tasks import services as tasks
from hall.web.args import int_arg, page_arg
from hall.web.views import _check_csrf

bp = Blueprint("quality_web", __name__, url_prefix="/quality")
bp.before_request(_check_csrf)  # the same per-session token as the other pages

PAGE_SIZE = 20
DASHBOARD_ROLES = ("quality_office", "admin", "supervisor", "dept_head")
WARNING_STATE_LABELS = {"open": "待处置", "handling": "处置中", "handled": "已处置", "closed": "已关闭"}
WARNING_LEVEL_LABELS = {"yellow": "黄色预警", "red": "红色预警"}
# Columns of a read-only pre-filled table that are codes for machines, not for the reader.
HIDDEN_COLUMNS = {"point", "direction", "status", "warning"}
FIRST_COLUMNS = ["name", "value", "unit", "status_label", "target_value", "standard_value", "warning_value"]


def sees_dashboard(user) -> bool:
    """Whether the quality pages are in *user*'s navigation (anybody may open them and sees their own)."""
    return user.is_authenticated and user.has_role(*DASHBOARD_ROLES)


@bp.record_once
def _template_helpers(state):
    state.app.jinja_env.globals.update(sees_quality=sees_dashboard, readonly_tables=readonly_tables,
                                       reads_points=_reads_points)
    state.app.jinja_env.filters["line"] = _cell  # a point's line: 90, 0.5 or —


def _reads_points() -> bool:
    """Whether the signed-in person may open the monitoring-point list (a global: macros see it too)."""
    return current_user.is_authenticated and current_user.has_role(*quality.QUALITY_READERS)


def readonly_tables(task, schema: dict | None) -> list[dict]:
    """Pre-filled read-only tables of a task's form (e.g. 诊断's measured values against their lines):
    [{title, columns: [title…], rows: [[cell…]…]}], empty when the form has none or *user* may not act."""
    if not schema or task.state != "ready":
        return []
    data = tasks.task_data(task) or {}
    tables = []
    for name, prop in (schema.get("properties") or {}).items():
        items = (prop or {}).get("items") or {}
        if not (prop or {}).get("readOnly") or prop.get("type") != "array" or items.get("type") != "object":
            continue
        keys = [k for k in items.get("properties", {}) if k not in HIDDEN_COLUMNS]
        # What the reader looks for first on a narrow screen: the name, the value and how it stands.
        keys.sort(key=lambda k: FIRST_COLUMNS.index(k) if k in FIRST_COLUMNS else len(FIRST_COLUMNS))
        rows = [[_cell(row.get(k)) for k in keys] for row in data.get(name) or [] if isinstance(row, dict)]
        tables.append({"name": name, "title": prop.get("title") or name,
                       "columns": [items["properties"][k].get("title") or k for k in keys], "rows": rows})
    return tables


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


# -- cycles ------------------------------------------------------------------------------------------

@bp.route("/")
@login_required
def index():
    return redirect(url_for("quality_web.cycle_list"))


@bp.route("/cycles")
@login_required
def cycle_list():
    page = page_arg()
    items, total = cycles.list_cycles(request.args.get("level") or None, page, PAGE_SIZE)
    return render_template("quality/cycles.html", items=items, total=total, page=page,
                           pages=_pages(total, PAGE_SIZE), levels=LEVELS)


@bp.route("/cycles/<int:cycle_id>")
@login_required
def cycle_dashboard(cycle_id):
    steps = [code for code, _ in CYCLE_STEPS] + ["done"]
    step = request.args.get("step") if request.args.get("step") in steps else None
    org_unit = int_arg("org_unit")
    page = page_arg()
    progress = cycles.cycle_progress(cycle_id, current_user, page, PAGE_SIZE, step, org_unit=org_unit)
    unit = db.session.get(OrgUnit, org_unit) if org_unit else None
    subject_ids = [i["subject_id"] for i in progress["by_subject"]["items"]]
    unit_ids = dict(db.session.execute(sa.select(CycleUnit.subject_id, CycleUnit.id).where(
        CycleUnit.cycle_id == cycle_id, CycleUnit.subject_id.in_(subject_ids or [0]))).all())
    step_names = dict(CYCLE_STEPS) | {"done": "已完成"}
    chart = {"kind": "bar", "categories": [gettext(step_names[s]) for s in steps],
             "values": [progress["by_step"].get(s, 0) for s in steps],
             "links": [url_for("quality_web.cycle_dashboard", cycle_id=cycle_id, step=s, org_unit=org_unit)
                       for s in steps]}
    dept_chart = {"kind": "stacked", "categories": [d["name"] for d in progress["by_department"]],
                  "series": [{"name": gettext(step_names[s]), "values": [d["by_step"].get(s, 0)
                                                                for d in progress["by_department"]]}
                             for s in steps if any(d["by_step"].get(s) for d in progress["by_department"])],
                  "links": [url_for("quality_web.cycle_dashboard", cycle_id=cycle_id, org_unit=d["org_unit"])
                            if d["org_unit"] else None for d in progress["by_department"]]}
    return render_template(
        "quality/cycle.html", progress=progress, cycle=progress["cycle"], steps=steps, step_names=step_names,
        step=step, unit=unit, org_unit=org_unit, page=page,
        pages=_pages(progress["by_subject"]["total"], PAGE_SIZE), unit_ids=unit_ids,
        chart=chart, dept_chart=dept_chart)


# -- portraits ---------------------------------------------------------------------------------------

@bp.app_template_filter("value")
def value_filter(value) -> str:
    """A measured value or line as the reports print it (two decimals at most, "—" for none)."""
    return portraits.format_value(value)


@bp.route("/subjects/<int:subject_id>")
@login_required
def subject(subject_id):
    data = portraits.subject_portrait(current_user, subject_id)
    # The self-diagnosis report of the subject's latest cycle unit.
    latest_unit = db.session.execute(
        sa.select(CycleUnit.id, Cycle.title).join(Cycle, Cycle.id == CycleUnit.cycle_id)
        .where(CycleUnit.subject_id == subject_id).order_by(Cycle.period.desc(), CycleUnit.id.desc()).limit(1)
    ).first()
    periods = data["periods"]
    radar = {"kind": "radar", "indicators": [r["name"] for r in data["radar"]],
             "values": [r["score"] if r["score"] is not None else 0 for r in data["radar"]]}
    trends = [{"kind": "trend", "title": p["name"] + (f"（{p['unit']}）" if p["unit"] else ""),
               "categories": periods, "values": [portraits.rounded(s["value"]) for s in p["series"]],
               "lines": [{"name": gettext(name), "value": p["lines"][key]} for key, name in
                         (("target", "目标值"), ("standard", "标准值"), ("warning", "预警值"))
                         if p["lines"][key] is not None]}
              for p in data["points"]]
    # A subject may have hundreds of children (a college's courses): the list goes page by page.
    page = page_arg()
    children = data["children"][(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    return render_template("quality/subject.html", p=data, radar=radar, trends=trends, cycle_unit=latest_unit,
                           warning_states=WARNING_STATE_LABELS, warning_levels=WARNING_LEVEL_LABELS,
                           children=children, page=page, pages=_pages(len(data["children"]), PAGE_SIZE))


@bp.route("/portraits")
@login_required
def portrait_overview():
    level = request.args.get("level") if request.args.get("level") in LEVELS else None
    page = page_arg()
    data = portraits.aggregate_portrait(
        current_user, org_unit_id=int_arg("org_unit"),
        parent_id=int_arg("parent"), level=level,
        period=(request.args.get("period") or "")[:20] or None, page=page, page_size=PAGE_SIZE)
    points = [p for p in data["points"] if p["measured"]]
    chart = {"kind": "stacked", "horizontal": True, "categories": [p["name"] for p in points],
             "series": [{"name": gettext(name), "values": [p["states"][key] for p in points]}
                        for key, name in (("met", "达标"), ("yellow", "黄色预警"), ("red", "红色预警"))]}
    return render_template("quality/portraits.html", data=data, chart=chart, level=level, page=page,
                           pages=_pages(data["subjects"]["total"], PAGE_SIZE), levels=LEVELS,
                           sees_all=portraits.sees_all(current_user))


# -- warnings ----------------------------------------------------------------------------------------

@bp.route("/warnings")
@login_required
def warning_list():
    args = request.args
    state = args.get("state") if args.get("state") in WARNING_STATES else None
    level = args.get("level") if args.get("level") in WARNING_LEVEL_LABELS else None
    period = (args.get("period") or "").strip()[:20] or None
    org_unit = int_arg("org_unit")
    page = page_arg()
    items, total = quality_warnings.list_warnings(current_user, state=state, level=level, period=period,
                                                  org_unit=org_unit, page=page, page_size=PAGE_SIZE)
    filters = {k: v for k, v in (("state", state), ("level", level), ("period", period), ("org_unit", org_unit))
               if v}
    return render_template("quality/warnings.html", items=items, total=total, page=page,
                           pages=_pages(total, PAGE_SIZE), filters=filters, state=state, level=level,
                           period=period or "", states=WARNING_STATE_LABELS, levels=WARNING_LEVEL_LABELS)


# -- monitoring points (质控点) and their lines: the quality office's editor --------------------------

POINT_TEXT_FIELDS = ("element", "code", "name", "unit", "source", "frequency")
POINT_LINE_FIELDS = ("target_value", "standard_value", "warning_value")
FREQUENCIES = ("学年", "学期", "月", "周", "实时")


@bp.route("/points")
@login_required
def point_list():
    """Monitoring points by level with their three lines; a level filter and pages."""
    level = quality.level_code(request.args.get("level", "")) or ""
    points = quality.list_points(level or None)
    page = page_arg()
    total = len(points)
    items = points[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return render_template("quality/points.html", items=items, total=total, page=page,
                           pages=_pages(total, PAGE_SIZE), level=level, levels=LEVELS, directions=DIRECTIONS,
                           may_edit=quality.is_manager(current_user))


def _point_form(point) -> dict:
    """The editor's values as typed text, from a stored point."""
    values = {f: getattr(point, f) or "" for f in POINT_TEXT_FIELDS}
    values.update({f: _cell(getattr(point, f)) if getattr(point, f) is not None else ""
                   for f in POINT_LINE_FIELDS})
    values.update(level=point.level_code or "", direction=point.direction or "higher")
    return values


def _parse_point(form) -> tuple[dict, dict, dict]:
    """(typed text to show again, values for the service, errors of fields that are not numbers)."""
    typed = {f: form.get(f, "").strip() for f in (*POINT_TEXT_FIELDS, *POINT_LINE_FIELDS, "level", "direction")}
    values: dict = {f: typed[f] for f in (*POINT_TEXT_FIELDS, "level", "direction")}
    errors: dict[str, list[str]] = {}
    for name in POINT_LINE_FIELDS:
        text = typed[name].replace("，", ".").replace("％", "").rstrip("%")
        if not text:
            values[name] = None
            continue
        try:
            values[name] = float(text)
        except ValueError:
            errors[name] = [gettext("请填写数字")]
    for name in ("code", "name", "element"):
        if not typed[name]:
            errors[name] = [gettext("必填")]
    return typed, values, errors


def _render_point(point, typed: dict, errors: dict | None = None, message: str | None = None, status: int = 200):
    return render_template("quality/point_edit.html", point=point, values=typed, errors=errors or {},
                           message=message, levels=LEVELS, directions=DIRECTIONS, frequencies=FREQUENCIES), status


@bp.route("/points/new", methods=["GET", "POST"])
@bp.route("/points/<int:point_id>/edit", methods=["GET", "POST"])
@login_required
def point_edit(point_id=None):
    """Create or edit a point; a refusal (lines in the wrong order for the direction, a duplicate code)
    re-renders the form with the message next to its fields and the typed values kept (422)."""
    point = quality.get_point(point_id) if point_id else None
    if request.method == "GET":
        typed = _point_form(point) if point else {"direction": "higher", "frequency": "学年",
                                                   "level": quality.level_code(request.args.get("level", "")) or ""}
        return _render_point(point, typed)
    typed, values, errors = _parse_point(request.form)
    if errors:
        return _render_point(point, typed, errors, gettext("质控点信息有误，请检查标出的字段"), 422)
    try:
        saved = quality.save_point(current_user, values, point_id)
    except Invalid as err:
        db.session.rollback()
        # The message of each field stands beside it; the top only says where to look.
        message = gettext("质控点信息有误，请检查标出的字段") if err.errors else err.message
        return _render_point(point, typed, err.errors or {}, message, 422)
    flash(gettext("质控点「%(name)s」已保存", name=saved.name), "ok")
    return redirect(url_for("quality_web.point_list", level=saved.level_code))
