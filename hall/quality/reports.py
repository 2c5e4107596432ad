"""Reports of the quality domain as .docx (python-docx) and .xlsx (openpyxl): a subject's 自我诊改报告 filled
from its cycle unit, and the 年度质量报告 of a department or of the college for a period.

Each report is first gathered into a plain dict (one place that reads the database and checks access), then
rendered by a writer per format, so the two formats always say the same thing.
"""

from __future__ import annotations

import io
from datetime import datetime
from urllib.parse import quote

import sqlalchemy as sa
from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import aliased

from hall.errors import Forbidden, Invalid, NotFound
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.processes.models import InstanceEvent, ProcessInstance, ProcessVersion
from hall.quality import cycles, portraits
from hall.quality.models import (
    CYCLE_STEPS,
    DIRECTIONS,
    STANDARD_KINDS,
    SYSTEMS,
    Cycle,
    CycleUnit,
    Measurement,
    MonitoringPoint,
    QualityWarning,
    Standard,
    Subject,
    Target,
)
from hall.tasks import services as tasks
from hall.tasks.models import HumanTask
from hall.web.forms import readable

MISSING = "（未填写）"
GRADES = ("优秀", "良好", "合格", "不合格")
STEP_NAMES = cycles.STEP_NAMES
WARNING_LEVEL_NAMES = {"yellow": "黄色预警", "red": "红色预警"}
WARNING_STATE_NAMES = {"open": "待处理", "handling": "处理中", "handled": "已处理", "closed": "已关闭"}
# Labels for field names that forms commonly use, when the form's own titles are not at hand.
FIELD_LABELS = {
    "diagnosis": "诊断结论", "strengths": "优势", "weaknesses": "不足", "problems": "存在问题", "cause": "原因分析",
    "causes": "原因分析", "plan": "改进计划", "measures": "改进措施", "improvements": "改进措施",
    "comment": "意见", "opinion": "意见", "decision": "结论", "grade": "等级", "incentive": "激励措施",
    "accountability": "问责", "learning": "学习内容", "innovation": "创新举措", "targets": "目标",
    "summary": "小结", "result": "结果", "return_reason": "退回原因", "approved": "同意",
}
DOCX_UNIT_ROWS = 500  # longer unit tables go to the .xlsx only
EAST_ASIAN_FONT, LATIN_FONT = "宋体", "SimSun"


# --- gathering ------------------------------------------------------------------------------------------------

def self_diagnosis(user, cycle_unit_id: int) -> dict:
    """Everything a subject's 自我诊改报告 prints, from its cycle unit; 404 for an unknown unit or one whose
    subject *user* may not see."""
    unit = db.session.get(CycleUnit, cycle_unit_id)
    if unit is None:
        raise NotFound(f"诊改单元 {cycle_unit_id} 不存在")
    subject = portraits.get_visible_subject(user, unit.subject_id)
    cycle = unit.cycle
    period = cycle.period
    targets = db.session.execute(
        sa.select(Target, MonitoringPoint.name).outerjoin(MonitoringPoint, MonitoringPoint.id == Target.point_id)
        .where(Target.subject_id == subject.id, Target.period == period).order_by(Target.id)).all()
    standards = db.session.scalars(sa.select(Standard).where(Standard.level_code == subject.level_code)
                                   .order_by(Standard.kind.desc(), Standard.code)).all()
    latest = portraits.latest_measurements(Measurement.subject_id == subject.id, Measurement.period == period)
    values = {r.point_id: r.value for r in db.session.execute(sa.select(latest))}
    points = []
    for line in portraits.effective_lines(subject):
        point = line["point"]
        value = values.get(point.id)
        state = portraits.state_of(point.direction, value, line["standard"], line["warning"])
        points.append({"code": point.code, "name": point.name, "element": point.element, "unit": point.unit,
                       "direction": DIRECTIONS.get(point.direction, point.direction), "value": value,
                       "target": line["target"], "standard": line["standard"], "warning": line["warning"],
                       "state": portraits.STATES[state]})
    warnings = db.session.execute(
        sa.select(QualityWarning, MonitoringPoint.code, MonitoringPoint.name)
        .join(MonitoringPoint, MonitoringPoint.id == QualityWarning.point_id)
        .where(QualityWarning.subject_id == subject.id, QualityWarning.period == period)
        .order_by(MonitoringPoint.code)).all()
    handling = _handling_texts([w.instance_id for w, _, _ in warnings if w.instance_id])
    report = unit.report if isinstance(unit.report, dict) else {}
    labels = _form_labels([unit.instance_id] if unit.instance_id else [])
    step = _unit_steps([unit]).get(unit.id, unit.step)
    written = _step_texts(unit.instance_id) if unit.instance_id else {}
    return {
        "title": f"{subject.name}自我诊改报告",
        "subject": {"code": subject.code, "name": subject.name, "level": portraits._level_name(subject.level_code),
                    "org_unit": subject.org_unit.name if subject.org_unit else "",
                    "responsible": subject.responsible.name if subject.responsible else ""},
        "cycle": {"title": cycle.title, "period": period, "step": STEP_NAMES.get(step, step),
                  "completed_at": _date(unit.completed_at)},
        "targets": [{"text": t.text, "point": point_name or "", "target_value": t.target_value,
                     "state": "已确认" if t.state == "approved" else "草稿"} for t, point_name in targets],
        "standards": [{"code": s.code, "kind": STANDARD_KINDS.get(s.kind, s.kind),
                       "system": SYSTEMS.get(s.system, s.system), "title": s.title,
                       "items": [i.get("text", "") if isinstance(i, dict) else str(i) for i in s.items or []]}
                      for s in standards],
        "points": points,
        "warnings": [{"point": f"{code} {name}", "level": WARNING_LEVEL_NAMES.get(w.level, w.level), "value": w.value,
                      "standard": w.standard_value, "warning": w.warning_value,
                      "state": WARNING_STATE_NAMES.get(w.state, w.state), "raised_at": _date(w.raised_at),
                      "handled_at": _date(w.handled_at), "closed_at": _date(w.closed_at),
                      "handling": handling.get(w.instance_id, []) if w.instance_id else []}
                     for w, code, name in warnings],
        "grade": unit.grade or MISSING,
        "steps": [{"code": code, "name": name,
                   "lines": written.get(code) or _text_lines(report.get(code), labels)}
                  for code, name in CYCLE_STEPS],
        "filename": f"{subject.name}-{period}-自我诊改报告",
        "ascii_filename": f"self-diagnosis-{unit.id}",
    }


def _unit_steps(units) -> dict[int, str]:
    """Each cycle unit's current step code by unit id, derived from its instance like the progress page
    (CycleUnit.step is only written when a unit starts and ends); a unit without an instance keeps its own."""
    steps = cycles.current_steps(sa.select(CycleUnit.instance_id).where(
        CycleUnit.id.in_([u.id for u in units]), CycleUnit.instance_id.is_not(None)))
    return {u.id: steps.get(u.instance_id, u.step) for u in units}


def _task_lines(task: HumanTask, labels: dict[str, str] | None = None) -> list[str]:
    """A completed task's submitted data as the task pages show it: the form's titles and choice labels
    (a task without a form of its own: the field titles in *labels*)."""
    schema, ui_schema = tasks.form_of(task)
    if schema is None:
        return _text_lines(task.submitted, labels or FIELD_LABELS)
    pairs = readable(schema, task.submitted, ui_schema)
    return [f"{label}：{text if text != '' else MISSING}" for label, text in pairs] or [MISSING]


def _step_texts(instance_id: int) -> dict[str, list[str]]:
    """What was submitted at each step of a diagnosis instance, by step code: the latest completion of each of
    the step's tasks (a returned step is submitted again), its review (目标审核) after it."""
    latest: dict[str, HumanTask] = {}
    for task in db.session.scalars(
        sa.select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.state == "completed",
                                   HumanTask.kind == "user", HumanTask.submitted.is_not(None))
        .order_by(HumanTask.completed_at, HumanTask.id)):
        latest[task.element_id] = task
    texts: dict[str, list[str]] = {}
    for code, _name in CYCLE_STEPS:
        elements = [code] + [e for e, owner in cycles.ELEMENT_STEPS.items() if owner == code]
        lines = [line for e in elements if e in latest for line in _task_lines(latest[e])]
        if lines:
            texts[code] = lines
    return texts


def _handling_texts(instance_ids: list[int]) -> dict[int, list[dict]]:
    """The texts submitted in each warning-handling instance, step by step: the completed human tasks'
    submitted data, or (for instances whose tasks are gone) the task_completed events' data."""
    if not instance_ids:
        return {}
    labels = _form_labels(instance_ids)
    texts: dict[int, list[dict]] = {}
    for task in db.session.scalars(
        sa.select(HumanTask).where(HumanTask.instance_id.in_(instance_ids), HumanTask.completed_at.is_not(None),
                                   HumanTask.submitted.is_not(None))
        .order_by(HumanTask.completed_at, HumanTask.id)):
        texts.setdefault(task.instance_id, []).append(
            {"step": task.name, "at": _date(task.completed_at), "lines": _task_lines(task, labels)})
    missing = [i for i in instance_ids if i not in texts]
    if missing:
        for event in db.session.scalars(
            sa.select(InstanceEvent).where(InstanceEvent.instance_id.in_(missing),
                                           InstanceEvent.kind == "task_completed")
            .order_by(InstanceEvent.at, InstanceEvent.id)):
            texts.setdefault(event.instance_id, []).append(
                {"step": event.element_id or "", "at": _date(event.at), "lines": _text_lines(event.data, labels)})
    return texts


def _form_labels(instance_ids: list[int]) -> dict[str, str]:
    """Field name → title from the JSON Schema forms of the instances' process versions."""
    labels = dict(FIELD_LABELS)
    if not instance_ids:
        return labels
    # JSON has no equality operator on PostgreSQL, so pick the versions by id rather than DISTINCT forms.
    versions = sa.select(ProcessInstance.process_version_id).where(ProcessInstance.id.in_(instance_ids))
    for forms in db.session.scalars(sa.select(ProcessVersion.forms).where(ProcessVersion.id.in_(versions))):
        for schema in (forms or {}).values():
            for name, prop in ((schema or {}).get("properties") or {}).items():
                if isinstance(prop, dict) and prop.get("title"):
                    labels[name] = prop["title"]
    return labels


def _text_lines(value, labels: dict[str, str]) -> list[str]:
    """Submitted data as printable lines; nothing written gives ["（未填写）"]."""
    if value in (None, "", [], {}):
        return [MISSING]
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            rendered = _text_lines(item, labels)
            label = labels.get(key, key)
            if len(rendered) == 1:
                lines.append(f"{label}：{rendered[0]}")
            else:
                lines.append(f"{label}：")
                lines.extend(f"  {line}" for line in rendered)
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            rendered = _text_lines(item, labels)
            lines.append("· " + "；".join(rendered))
        return lines
    if isinstance(value, bool):
        return ["是" if value else "否"]
    return [str(value)]


def annual(user, org_unit_id: int | None, period: str | None) -> dict:
    """The 年度质量报告 of a department (its org-unit subtree) or, with org_unit_id None, of the college."""
    if org_unit_id is None:
        if not portraits.sees_all(user):
            raise Forbidden("只有质量办、督导或系统管理员可以查看学院年度质量报告")
        scope = portraits.resolve_scope(user)
        title_unit = scope.unit.name if scope.unit else "学院"
    else:
        scope = portraits.resolve_scope(user, org_unit_id=org_unit_id)
        title_unit = scope.unit.name
    in_scope = sa.select(Subject.id).where(*scope.clauses)
    if not period:
        period = db.session.scalar(
            sa.select(sa.func.max(Cycle.period)).join(CycleUnit, CycleUnit.cycle_id == Cycle.id)
            .where(CycleUnit.subject_id.in_(in_scope))) or portraits.default_period(scope)
    if not period:
        raise Invalid("没有可报告的期间，请指定 period", errors={"period": ["请指定期间，例如 2025-2026"]})
    by_level = portraits.subject_counts_by_level(scope)
    grades = dict(db.session.execute(
        sa.select(CycleUnit.grade, sa.func.count()).join(Cycle, Cycle.id == CycleUnit.cycle_id)
        .where(Cycle.period == period, CycleUnit.subject_id.in_(in_scope)).group_by(CycleUnit.grade)).all())
    warning_rows = db.session.execute(
        sa.select(QualityWarning.level, QualityWarning.state, sa.func.count())
        .where(QualityWarning.period == period, QualityWarning.subject_id.in_(in_scope))
        .group_by(QualityWarning.level, QualityWarning.state)).all()
    warnings = {"raised": 0, "handled": 0, "closed": 0, "open": 0, "yellow": 0, "red": 0}
    for level, state, n in warning_rows:
        warnings["raised"] += n
        warnings[level] = warnings.get(level, 0) + n
        if state in ("handled", "closed"):
            warnings["handled"] += n
        if state == "closed":
            warnings["closed"] += n
        if state in portraits.OPEN_WARNING_STATES:
            warnings["open"] += n
    open_count = (sa.select(sa.func.count(QualityWarning.id))
                  .where(QualityWarning.subject_id == CycleUnit.subject_id,
                         QualityWarning.state.in_(portraits.OPEN_WARNING_STATES))
                  .correlate(CycleUnit).scalar_subquery())
    unit_rows = db.session.execute(
        sa.select(Subject.code, Subject.name, Subject.level_code, OrgUnit.name, CycleUnit.step, CycleUnit.grade,
                  open_count, CycleUnit.instance_id)
        .select_from(CycleUnit).join(Cycle, Cycle.id == CycleUnit.cycle_id)
        .join(Subject, Subject.id == CycleUnit.subject_id).outerjoin(OrgUnit, OrgUnit.id == Subject.org_unit_id)
        .where(Cycle.period == period, *scope.clauses)
        .order_by(Subject.level_code, Subject.code)).all()
    graded_total = sum(grades.values())
    # The units' real steps, in one statement for the whole report (see _unit_steps).
    steps = cycles.current_steps(
        sa.select(CycleUnit.instance_id).join(Cycle, Cycle.id == CycleUnit.cycle_id)
        .join(Subject, Subject.id == CycleUnit.subject_id)
        .where(Cycle.period == period, CycleUnit.instance_id.is_not(None), *scope.clauses))
    data = {
        "title": f"{title_unit}{period}年度质量报告",
        "unit": title_unit,
        "period": period,
        "levels": [{"level": portraits._level_name(code), "subjects": n} for code, n in by_level.items()],
        "grades": [{"grade": g, "count": grades.get(g, 0),
                    "share": _share(grades.get(g, 0), graded_total)} for g in GRADES]
                  + [{"grade": "未评定", "count": grades.get(None, 0),
                      "share": _share(grades.get(None, 0), graded_total)}],
        "points": [{"level": portraits._level_name(p["level"]), "code": p["code"], "name": p["name"], "unit": p["unit"],
                    "measured": p["measured"], "subjects": p["subjects"], "mean": p["mean"], "min": p["min"],
                    "max": p["max"], "standard": p["lines"]["standard"], "met": p["states"]["met"],
                    "met_share": _share(p["states"]["met"], p["measured"]),
                    "yellow": p["states"]["yellow"], "red": p["states"]["red"]}
                   for p in portraits.point_summary(scope, period)],
        "warnings": warnings,
        "units": [{"code": code, "name": name, "level": portraits._level_name(level), "org_unit": unit_name or "",
                   "step": STEP_NAMES.get(steps.get(instance_id, step), step), "grade": grade or "未评定",
                   "open_warnings": n}
                  for code, name, level, unit_name, step, grade, n, instance_id in unit_rows],
        "departments": _department_rows(scope, period),
        "filename": f"{title_unit}-{period}-年度质量报告",
        "ascii_filename": f"annual-report-{org_unit_id if org_unit_id else 'college'}-{period}",
    }
    return data


def _department_rows(scope: portraits.Scope, period: str) -> list[dict]:
    """Per child unit of the report's unit: subjects, graded units by grade and open warnings."""
    breakdown = portraits.unit_breakdown(scope, period)
    if not breakdown:
        return []
    child, inner = aliased(OrgUnit), aliased(OrgUnit)
    grade_rows = db.session.execute(
        sa.select(child.id, CycleUnit.grade, sa.func.count())
        .select_from(child).join(inner, inner.path.startswith(child.path))
        .join(Subject, Subject.org_unit_id == inner.id).join(CycleUnit, CycleUnit.subject_id == Subject.id)
        .join(Cycle, Cycle.id == CycleUnit.cycle_id)
        .where(child.parent_id == scope.unit.id, Cycle.period == period, *scope.clauses)
        .group_by(child.id, CycleUnit.grade)).all()
    grades: dict[int, dict] = {}
    for unit_id, grade, n in grade_rows:
        grades.setdefault(unit_id, {})[grade or "未评定"] = n
    return [{"name": u["name"], "subjects": u["subjects"], "grades": grades.get(u["id"], {}),
             "yellow": u["warnings"].get("yellow", 0), "red": u["warnings"].get("red", 0),
             "open": u["warnings"]["open"]} for u in breakdown if u["subjects"]]


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def _num(value) -> str:
    return portraits.format_value(value)


# --- .docx ----------------------------------------------------------------------------------------------------

def _new_document(title: str, subtitle: str) -> Document:
    """A document whose styles carry an East-Asian font, so Word renders the Chinese as 宋体."""
    document = Document()
    for style_name in ("Normal", "Title", "Heading 1", "Heading 2", "Heading 3", "Table Grid"):
        try:
            style = document.styles[style_name]
        except KeyError:
            continue
        style.font.name = LATIN_FONT
        rpr = style.element.get_or_add_rPr()
        fonts = rpr.find(qn("w:rFonts"))
        if fonts is None:
            fonts = rpr.makeelement(qn("w:rFonts"), {})
            rpr.append(fonts)
        # Headings use theme fonts by default; drop them so the explicit fonts apply.
        for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
            fonts.attrib.pop(qn(attr), None)
        fonts.set(qn("w:ascii"), LATIN_FONT)
        fonts.set(qn("w:hAnsi"), LATIN_FONT)
        fonts.set(qn("w:eastAsia"), EAST_ASIAN_FONT)
    document.styles["Normal"].font.size = Pt(11)
    heading = document.add_heading(title, level=0)
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    sub = document.add_paragraph(subtitle)
    sub.alignment = WD_ALIGN_PARAGRAPH.CENTER
    return document


def _table(document, header: list[str], rows: list[list]) -> None:
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = ""
        run = cell.paragraphs[0].add_run(text)
        run.bold = True
    # Mark the header row to repeat on each page.
    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    tr_pr.append(tr_pr.makeelement(qn("w:tblHeader"), {}))
    for row in rows:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value if isinstance(value, str) else _num(value)


def _lines(document, lines: list[str]) -> None:
    for line in lines:
        document.add_paragraph(line)


def _docx_bytes(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def self_diagnosis_docx(data: dict) -> bytes:
    s, c = data["subject"], data["cycle"]
    document = _new_document(data["title"], f"{c['title']}　{c['period']}")
    document.add_heading("一、基本情况", level=1)
    _table(document, ["项目", "内容"], [
        ["质量主体", f"{s['name']}（{s['code']}）"], ["层面", s["level"]], ["所在单位", s["org_unit"] or "—"],
        ["负责人", s["responsible"] or "—"], ["诊改周期", c["title"]], ["期间", c["period"]],
        ["当前步骤", c["step"]], ["等级", data["grade"]],
    ])
    document.add_heading("二、目标", level=1)
    if data["targets"]:
        _table(document, ["目标", "质控点", "目标值", "状态"],
               [[t["text"], t["point"] or "—", t["target_value"], t["state"]] for t in data["targets"]])
    else:
        document.add_paragraph(MISSING)
    document.add_heading("三、标准", level=1)
    if data["standards"]:
        _table(document, ["编码", "类别", "体系", "标准"],
               [[st["code"], st["kind"], st["system"], st["title"]] for st in data["standards"]])
    else:
        document.add_paragraph(MISSING)
    document.add_heading("四、质控点监测结果", level=1)
    _table(document, ["编码", "质控点", "单位", "测量值", "目标值", "标准值", "预警值", "状态"],
           [[p["code"], p["name"], p["unit"] or "—", p["value"], p["target"], p["standard"], p["warning"], p["state"]]
            for p in data["points"]])
    document.add_heading("五、预警及处理情况", level=1)
    if data["warnings"]:
        _table(document,
               ["质控点", "预警级别", "测量值", "标准值", "预警值", "状态", "预警日期", "处理日期", "关闭日期"],
               [[w["point"], w["level"], w["value"], w["standard"], w["warning"], w["state"], w["raised_at"],
                 w["handled_at"] or "—", w["closed_at"] or "—"] for w in data["warnings"]])
        for w in data["warnings"]:
            if w["handling"]:
                document.add_heading(f"{w['point']} 处理记录", level=2)
                for step in w["handling"]:
                    document.add_paragraph(f"{step['step']}（{step['at']}）").runs[0].bold = True
                    _lines(document, step["lines"])
    else:
        document.add_paragraph("本期无预警。")
    document.add_heading("六、诊改过程记录", level=1)
    for step in data["steps"]:
        document.add_heading(step["name"], level=2)
        _lines(document, step["lines"])
    document.add_heading("七、等级评定", level=1)
    document.add_paragraph(f"评定等级：{data['grade']}")
    return _docx_bytes(document)


def annual_docx(data: dict) -> bytes:
    document = _new_document(data["title"], f"期间：{data['period']}")
    document.add_heading("一、质量主体概况", level=1)
    _table(document, ["层面", "主体数"], [[row["level"], row["subjects"]] for row in data["levels"]])
    document.add_heading("二、诊改等级分布", level=1)
    _table(document, ["等级", "数量", "占比"], [[g["grade"], g["count"], g["share"]] for g in data["grades"]])
    document.add_heading("三、质控点达标情况", level=1)
    _table(document, ["层面", "质控点", "单位", "已测/主体", "平均值", "最小值", "最大值", "标准值", "达标率"],
           [[p["level"], f"{p['code']} {p['name']}", p["unit"] or "—", f"{p['measured']}/{p['subjects']}",
             p["mean"], p["min"], p["max"], p["standard"], p["met_share"]] for p in data["points"]])
    document.add_heading("四、预警情况", level=1)
    w = data["warnings"]
    _table(document, ["发出", "黄色预警", "红色预警", "已处理", "已关闭", "未关闭"],
           [[w["raised"], w["yellow"], w["red"], w["handled"], w["closed"], w["open"]]])
    numbers = iter("五六")
    if data["departments"]:
        document.add_heading(f"{next(numbers)}、各单位情况", level=1)
        _table(document, ["单位", "主体数", *GRADES, "黄色预警", "红色预警", "未关闭预警"],
               [[d["name"], d["subjects"], *(d["grades"].get(g, 0) for g in GRADES), d["yellow"], d["red"], d["open"]]
                for d in data["departments"]])
    document.add_heading(f"{next(numbers)}、诊改单元一览", level=1)
    units = data["units"]
    _table(document, ["编码", "质量主体", "层面", "所在单位", "当前步骤", "等级", "未关闭预警"],
           [[u["code"], u["name"], u["level"], u["org_unit"] or "—", u["step"], u["grade"], u["open_warnings"]]
            for u in units[:DOCX_UNIT_ROWS]])
    if len(units) > DOCX_UNIT_ROWS:
        document.add_paragraph(f"共 {len(units)} 个诊改单元，此处列出前 {DOCX_UNIT_ROWS} 个，完整名单见 Excel 版报告。")
    return _docx_bytes(document)


# --- .xlsx ----------------------------------------------------------------------------------------------------

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _sheet(workbook, title: str, header: list[str], rows: list[list], first: bool = False):
    sheet = workbook.active if first else workbook.create_sheet()
    sheet.title = title
    sheet.append(header)
    for cell in sheet[1]:
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
    widths = [len(str(h)) * 2 + 2 for h in header]
    for row in rows:
        row = [portraits.rounded(value) for value in row]
        sheet.append(row)
        for i, value in enumerate(row):
            widths[i] = min(max(widths[i], len(str(value if value is not None else "")) * 2 + 2), 60)
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A2"
    return sheet


def _xlsx_bytes(workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def self_diagnosis_xlsx(data: dict) -> bytes:
    s, c = data["subject"], data["cycle"]
    workbook = Workbook()
    _sheet(workbook, "基本情况", ["项目", "内容"], [
        ["报告", data["title"]], ["质量主体", s["name"]], ["编码", s["code"]], ["层面", s["level"]],
        ["所在单位", s["org_unit"]], ["负责人", s["responsible"]], ["诊改周期", c["title"]], ["期间", c["period"]],
        ["当前步骤", c["step"]], ["等级", data["grade"]],
    ], first=True)
    _sheet(workbook, "目标", ["目标", "质控点", "目标值", "状态"],
           [[t["text"], t["point"], t["target_value"], t["state"]] for t in data["targets"]])
    _sheet(workbook, "标准", ["编码", "类别", "体系", "标准", "条目"],
           [[st["code"], st["kind"], st["system"], st["title"], "\n".join(st["items"])] for st in data["standards"]])
    _sheet(workbook, "质控点",
           ["编码", "质控点", "诊断要素", "单位", "方向", "测量值", "目标值", "标准值", "预警值", "状态"],
           [[p["code"], p["name"], p["element"], p["unit"], p["direction"], p["value"], p["target"], p["standard"],
             p["warning"], p["state"]] for p in data["points"]])
    _sheet(workbook, "预警",
           ["质控点", "预警级别", "测量值", "标准值", "预警值", "状态", "预警日期", "处理日期", "关闭日期", "处理记录"],
           [[w["point"], w["level"], w["value"], w["standard"], w["warning"], w["state"], w["raised_at"],
             w["handled_at"], w["closed_at"],
             "\n".join(f"{h['step']}（{h['at']}）：" + "；".join(h["lines"]) for h in w["handling"])]
            for w in data["warnings"]])
    _sheet(workbook, "诊改过程", ["步骤", "内容"], [[st["name"], "\n".join(st["lines"])] for st in data["steps"]])
    return _xlsx_bytes(workbook)


def annual_xlsx(data: dict) -> bytes:
    workbook = Workbook()
    _sheet(workbook, "主体概况", ["层面", "主体数"], [[r["level"], r["subjects"]] for r in data["levels"]], first=True)
    _sheet(workbook, "等级分布", ["等级", "数量", "占比"],
           [[g["grade"], g["count"], g["share"]] for g in data["grades"]])
    _sheet(workbook, "质控点",
           ["层面", "编码", "质控点", "单位", "主体数", "已测", "平均值", "最小值", "最大值", "标准值",
            "达标", "黄色预警", "红色预警", "达标率"],
           [[p["level"], p["code"], p["name"], p["unit"], p["subjects"], p["measured"], p["mean"], p["min"], p["max"],
             p["standard"], p["met"], p["yellow"], p["red"], p["met_share"]] for p in data["points"]])
    w = data["warnings"]
    _sheet(workbook, "预警", ["发出", "黄色预警", "红色预警", "已处理", "已关闭", "未关闭"],
           [[w["raised"], w["yellow"], w["red"], w["handled"], w["closed"], w["open"]]])
    if data["departments"]:
        _sheet(workbook, "各单位", ["单位", "主体数", *GRADES, "黄色预警", "红色预警", "未关闭预警"],
               [[d["name"], d["subjects"], *(d["grades"].get(g, 0) for g in GRADES), d["yellow"], d["red"], d["open"]]
                for d in data["departments"]])
    _sheet(workbook, "诊改单元", ["编码", "质量主体", "层面", "所在单位", "当前步骤", "等级", "未关闭预警"],
           [[u["code"], u["name"], u["level"], u["org_unit"], u["step"], u["grade"], u["open_warnings"]]
            for u in data["units"]])
    workbook.properties.title = data["title"]
    return _xlsx_bytes(workbook)


# --- download -------------------------------------------------------------------------------------------------

MIMETYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def content_disposition(data: dict, fmt: str) -> str:
    """attachment with an ASCII fallback name and the Chinese name as RFC 5987 filename*."""
    return (f"attachment; filename=\"{data['ascii_filename']}.{fmt}\"; "
            f"filename*=UTF-8''{quote(data['filename'] + '.' + fmt, safe='')}")


def render(kind: str, data: dict, fmt: str) -> bytes:
    writers = {("self-diagnosis", "docx"): self_diagnosis_docx, ("self-diagnosis", "xlsx"): self_diagnosis_xlsx,
               ("annual", "docx"): annual_docx, ("annual", "xlsx"): annual_xlsx}
    return writers[(kind, fmt)](data)
