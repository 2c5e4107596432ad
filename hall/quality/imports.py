"""Import subjects and measurements from .xlsx or .csv (UTF-8 or GBK): all rows or none.

Every row is checked before anything is written; a bad file gets one 422 with a row-by-row report in
Chinese: errors=[{"row": n, "column": "数值", "message": "…"}], where n is the row number as the
spreadsheet shows it (the header is row 1). Headers may be Chinese or the English field names.
"""

from __future__ import annotations

import csv
import io
from pathlib import PurePath

import sqlalchemy as sa

from hall.accounts.models import User
from hall.errors import Invalid
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.quality import services
from hall.quality.models import LEVELS, Subject

# field -> (Chinese header, other accepted headers); required fields first.
SUBJECT_COLUMNS = {
    "level": ("层面", ("level",)),
    "code": ("编码", ("code", "主体编码", "学科/专业代码", "专业代码", "课程代码")),
    "name": ("名称", ("name", "主体名称")),
    "org_unit": ("所属单位编码", ("org_unit", "单位编码")),
    "responsible": ("负责人工号", ("responsible", "负责人")),
    "parent": ("上级编码", ("parent", "上级主体编码")),
}
SUBJECT_REQUIRED = ("level", "code", "name")
MEASUREMENT_COLUMNS = {
    "level": ("层面", ("level",)),
    "subject": ("主体编码", ("subject", "编码", "学科/专业代码", "专业代码")),
    "point": ("质控点编码", ("point", "质控点")),
    "period": ("周期", ("period",)),
    "value": ("数值", ("value", "值")),
    "source": ("来源", ("source", "数据来源")),
}
MEASUREMENT_REQUIRED = ("subject", "point", "period", "value")
KINDS = {"subjects": "质量主体", "measurements": "监测数据"}


def import_file(user: User, filename: str, content: bytes, kind: str, cycle_id: int | None = None) -> dict:
    """Import one uploaded file of *kind* (subjects | measurements); returns counts."""
    services.require_manager(user, "导入数据")
    if kind not in KINDS:
        raise Invalid("请选择导入类型：subjects（质量主体）或 measurements（监测数据）",
                      errors={"kind": ["导入类型应为 subjects 或 measurements"]})
    columns = SUBJECT_COLUMNS if kind == "subjects" else MEASUREMENT_COLUMNS
    required = SUBJECT_REQUIRED if kind == "subjects" else MEASUREMENT_REQUIRED
    header, rows = read_table(filename, content)
    mapping = _map_header(header, columns, required)
    records = [(number, {field: _cell(values, index) for field, index in mapping.items()})
               for number, values in rows]
    if not records:
        raise Invalid("文件中没有数据行", errors=[{"row": 2, "column": "", "message": "表头之后没有数据"}])
    services.ensure_levels()
    if kind == "subjects":
        result = import_subjects(user, records)
    else:
        names = {field: columns[field][0] for field in columns}
        result = services.record_measurements(
            [services.MeasurementRow(row=n, subject=_text(r.get("subject")), level=_text(r.get("level")),
                                     point=_text(r.get("point")) or "", period=_text(r.get("period")) or "",
                                     value=r.get("value"), source=_text(r.get("source")) or "import")
             for n, r in records],
            user, cycle_id=cycle_id, columns=names,
        )
    result.update(kind=kind, rows=len(records))
    return result


# -- reading files -----------------------------------------------------------------------------------

def read_table(filename: str, content: bytes) -> tuple[list[str], list[tuple[int, list]]]:
    """The header and the non-empty data rows (with their sheet row numbers) of an .xlsx or .csv file."""
    suffix = PurePath(filename or "").suffix.lower()
    if suffix == ".xlsx":
        table = _read_xlsx(content)
    elif suffix == ".csv":
        table = _read_csv(content)
    else:
        raise Invalid(f"不支持的文件类型“{suffix or filename}”：请上传 .xlsx 或 .csv 文件",
                      errors={"file": ["只接受 .xlsx 或 .csv"]})
    if not table:
        raise Invalid("文件是空的", errors=[{"row": 1, "column": "", "message": "文件中没有表头"}])
    header = ["" if h is None else str(h).strip() for h in table[0]]
    rows = [(number, values) for number, values in enumerate(table[1:], start=2)
            if any(v not in (None, "") and str(v).strip() for v in values)]
    return header, rows


def _read_xlsx(content: bytes) -> list[list]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a broken zip or a non-workbook
        raise Invalid("无法读取 .xlsx 文件：文件已损坏或不是 Excel 工作簿", errors={"file": ["无法读取"]}) from None
    try:
        sheet = book.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _read_csv(content: bytes) -> list[list]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise Invalid("无法识别 CSV 文件的编码：请保存为 UTF-8 或 GBK", errors={"file": ["编码无法识别"]})
    return [row for row in csv.reader(io.StringIO(text))]


def _map_header(header: list[str], columns: dict, required: tuple) -> dict[str, int]:
    """Field -> column index; a missing required column is an error naming it."""
    mapping = {}
    for field, (chinese, aliases) in columns.items():
        for index, name in enumerate(header):
            if name == chinese or name in aliases:
                mapping[field] = index
                break
    missing = [columns[f][0] for f in required if f not in mapping]
    if missing:
        raise Invalid(f"缺少必需的列：{'、'.join(missing)}",
                      errors=[{"row": 1, "column": name, "message": f"缺少列“{name}”"} for name in missing])
    return mapping


def _cell(values: list, index: int):
    value = values[index] if index < len(values) else None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _text(value) -> str | None:
    """A code cell as text: Excel turns 510201 into 510201.0, which is not the code."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() or None


# -- subjects ----------------------------------------------------------------------------------------

def import_subjects(user: User, records: list[tuple[int, dict]]) -> dict:
    """Create or update subjects by (level, code); parents may be earlier or later rows of the file."""
    header = {field: SUBJECT_COLUMNS[field][0] for field in SUBJECT_COLUMNS}
    errors: list[dict] = []

    def fail(row, field, message):
        errors.append({"row": row, "column": header[field], "message": message})

    unit_codes = {_text(r.get("org_unit")) for _, r in records} - {None}
    units = dict(db.session.execute(sa.select(OrgUnit.code, OrgUnit.id).where(OrgUnit.code.in_(unit_codes))).all()) \
        if unit_codes else {}
    usernames = {_text(r.get("responsible")) for _, r in records} - {None}
    users = dict(db.session.execute(sa.select(User.username, User.id).where(User.username.in_(usernames))).all()) \
        if usernames else {}
    codes = {_text(r.get("code")) for _, r in records} | {_text(r.get("parent")) for _, r in records}
    codes -= {None}
    existing: dict[tuple[str, str], Subject] = {}
    by_code: dict[str, list[tuple[str, str]]] = {}
    if codes:
        for s in db.session.scalars(sa.select(Subject).where(Subject.code.in_(codes))):
            existing[(s.level_code, s.code)] = s
            by_code.setdefault(s.code, []).append((s.level_code, s.code))
    seen: dict[tuple[str, str], int] = {}
    parsed, parents = [], []
    for number, r in records:
        before = len(errors)
        level = services.level_code(_text(r.get("level")) or "") if r.get("level") else None
        if not r.get("level"):
            fail(number, "level", "缺少层面")
        elif level is None:
            fail(number, "level", f"层面“{r.get('level')}”不存在，应为 {'、'.join(LEVELS.values())} 之一")
        code, name = _text(r.get("code")), _text(r.get("name"))
        if not code:
            fail(number, "code", "缺少编码")
        elif len(code) > 64:
            fail(number, "code", "编码不能超过 64 个字符")
        if not name:
            fail(number, "name", "缺少名称")
        elif len(name) > 200:
            fail(number, "name", "名称不能超过 200 个字符")
        unit = _text(r.get("org_unit"))
        if unit and unit not in units:
            fail(number, "org_unit", f"单位编码“{unit}”不存在")
        responsible = _text(r.get("responsible"))
        if responsible and responsible not in users:
            fail(number, "responsible", f"工号“{responsible}”不存在")
        if level and code:
            if (level, code) in seen:
                fail(number, "code", f"与第 {seen[(level, code)]} 行重复（同一层面、编码）")
            else:
                seen[(level, code)] = number
                by_code.setdefault(code, []).append((level, code))
        if _text(r.get("parent")):
            parents.append((number, level, code, _text(r.get("parent"))))
        if len(errors) == before:
            parsed.append((number, level, code, name, units.get(unit), users.get(responsible), _text(r.get("parent"))))
    # Parents resolve against the file and the database, by code; a code used at two levels is ambiguous.
    for number, level, code, parent in parents:
        if parent:
            matches = {key for key in by_code.get(parent, []) if key != (level, code)}
            if not matches:
                fail(number, "parent", f"上级编码“{parent}”不存在")
            elif len(matches) > 1:
                fail(number, "parent", f"上级编码“{parent}”在多个层面都存在，无法确定上级")
    if errors:
        errors.sort(key=lambda e: e["row"])
        raise Invalid(f"有 {len({e['row'] for e in errors})} 行数据有误，未导入任何数据", errors=errors)
    created = updated = 0
    subjects: dict[tuple[str, str], Subject] = dict(existing)
    for _number, level, code, name, unit_id, user_id, _parent in parsed:
        subject = subjects.get((level, code))
        if subject is None:
            subject = Subject(level_code=level, code=code, attributes={})
            db.session.add(subject)
            subjects[(level, code)] = subject
            created += 1
        else:
            updated += 1
        subject.name, subject.org_unit_id, subject.responsible_user_id = name, unit_id, user_id
    db.session.flush()
    for _number, level, code, _name, _unit, _user, parent in parsed:
        if parent:
            (key,) = {k for k in by_code[parent] if k != (level, code)}
            subjects[(level, code)].parent_id = subjects[key].id
    db.session.commit()
    return {"created": created, "updated": updated, "unchanged": 0}
