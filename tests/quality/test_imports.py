"""POST /imports: subjects and measurements from real .xlsx and .csv files, all or nothing, row reports."""

from io import BytesIO

import sqlalchemy as sa
from openpyxl import Workbook

from hall.extensions import db
from hall.quality.models import Cycle, Measurement, QualityWarning, Subject
from tests.quality.core_factories import (
    count,
    make_point,
    make_subject,
    org_fixture,  # noqa: F401 - the `org` fixture
    unit_id,
    user_id,
)

SUBJECT_HEADER = ["层面", "编码", "名称", "所属单位编码", "负责人工号", "上级编码"]
MEASUREMENT_HEADER = ["层面", "主体编码", "质控点编码", "周期", "数值", "来源"]


def xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list], encoding="utf-8") -> bytes:
    return "\r\n".join(",".join("" if v is None else str(v) for v in row) for row in rows).encode(encoding)


def upload(api, content: bytes, filename: str, kind: str, **form):
    return api.post("imports", data={"file": (BytesIO(content), filename), "kind": kind, **form},
                    content_type="multipart/form-data")


def test_subjects_import_from_xlsx_with_parents(api, org):
    """An .xlsx of a program and its course (parent by code, in the same file) creates both, linked."""
    api.login("q4001")
    response = upload(api, xlsx([
        SUBJECT_HEADER,
        ["课程", "C0101", "程序设计基础", "xxgc-rj", "t1001", 510201],
        ["专业", 510201, "软件技术专业", "xxgc-rj", "t1001", None],
    ]), "subjects.xlsx", "subjects")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == 2
    course = db.session.scalar(sa.select(Subject).where(Subject.code == "C0101"))
    program = db.session.scalar(sa.select(Subject).where(Subject.code == "510201"))
    assert course.parent_id == program.id and program.org_unit_id == unit_id("xxgc-rj")
    assert course.responsible_user_id == user_id("t1001")


def test_subjects_import_reports_every_bad_row_and_writes_nothing(api, org):
    """Unknown level, unit, person and parent, a missing name and a duplicate row: a report, no rows."""
    api.login("q4001")
    response = upload(api, xlsx([
        SUBJECT_HEADER,
        ["专业", "510201", "软件技术专业", "xxgc-rj", "t1001", None],
        ["系部", "X1", "未知层面", "xxgc", None, None],
        ["专业", "510202", "网络", "nope", "t9999", "P404"],
        ["专业", "510203", None, "xxgc", None, None],
        ["专业", "510201", "重复", "xxgc-rj", None, None],
    ]), "subjects.xlsx", "subjects")
    assert response.status_code == 422
    errors = {(e["row"], e["column"]) for e in response.get_json()["errors"]}
    assert errors == {(3, "层面"), (4, "所属单位编码"), (4, "负责人工号"), (4, "上级编码"), (5, "名称"), (6, "编码")}
    assert count(Subject) == 0


def test_reimporting_subjects_updates_them(api, org):
    """Importing the same codes again updates names instead of duplicating."""
    api.login("q4001")
    first = csv_bytes([SUBJECT_HEADER, ["专业", "510201", "软件技术", "xxgc-rj", "t1001", ""]])
    upload(api, first, "s.csv", "subjects")
    again = upload(api, csv_bytes([SUBJECT_HEADER, ["专业", "510201", "软件技术专业", "xxgc-rj", "t1001", ""]]),
                   "s.csv", "subjects")
    assert again.get_json()["updated"] == 1
    assert db.session.scalars(sa.select(Subject.name)).all() == ["软件技术专业"]


def test_measurements_import_from_xlsx_raises_warnings(api, org):
    """Measurements from .xlsx are recorded and a value below the standard raises its warning."""
    make_subject(), make_point()
    make_subject("510202", "计算机网络技术专业", unit="xxgc-wl", responsible="t1002")
    api.login("q4001")
    response = upload(api, xlsx([
        MEASUREMENT_HEADER,
        ["专业", 510201, "P-SSR", "2025-2026", 17.2, "教务系统"],
        ["专业", "510202", "P-SSR", "2025-2026", 19, "教务系统"],
    ]), "m.xlsx", "measurements")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["created"], body["rows"], body["warnings_raised"]) == (2, 2, 1)
    assert count(QualityWarning) == 1


def test_measurements_import_from_utf8_csv(api, org):
    """A UTF-8 CSV with a BOM (as Excel saves it) is read."""
    make_subject(), make_point()
    api.login("q4001")
    rows = [MEASUREMENT_HEADER, ["专业", "510201", "P-SSR", "2025-2026", "17", "教务"]]
    content = "\ufeff".encode() + csv_bytes(rows)
    response = upload(api, content, "m.csv", "measurements")
    assert response.status_code == 201, response.get_json()
    assert count(Measurement) == 1


def test_measurements_import_from_gbk_csv(api, org):
    """A GBK CSV (Chinese Windows Excel's default) is read, Chinese headers and all."""
    make_subject(), make_point()
    api.login("q4001")
    content = csv_bytes([MEASUREMENT_HEADER, ["专业", "510201", "P-SSR", "2025-2026", "17", "教务处"]], "gbk")
    response = upload(api, content, "m.csv", "measurements")
    assert response.status_code == 201, response.get_json()
    assert db.session.scalar(sa.select(Measurement.source)) == "教务处"


def test_measurements_import_row_report(api, org):
    """Unknown subject and point, non-numeric value, bad period and duplicates: rows as in the sheet."""
    make_subject(), make_point()
    api.login("q4001")
    response = upload(api, xlsx([
        MEASUREMENT_HEADER,
        ["专业", "510201", "P-SSR", "2025-2026", 17, "教务"],
        ["专业", "999999", "P-SSR", "2025-2026", 17, "教务"],
        ["专业", "510201", "P-NONE", "2025-2026", 17, "教务"],
        ["专业", "510201", "P-SSR", "2025-2026", "十七", "人事"],
        ["专业", "510201", "P-SSR", "2025年", 17, "学工"],
        ["专业", "510201", "P-SSR", "2025-2026", 17, "教务"],
    ]), "m.xlsx", "measurements")
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert {(e["row"], e["column"]) for e in errors} == {(3, "主体编码"), (4, "质控点编码"), (5, "数值"), (6, "周期"),
                                                          (7, "主体编码")}
    assert next(e for e in errors if e["row"] == 5)["message"] == "数值“十七”不是数字"
    assert count(Measurement) == 0


def test_measurements_import_period_outside_the_cycle(api, org):
    """With a cycle, a row for another period is refused and nothing is written."""
    make_subject(), make_point()
    cycle = Cycle(level_code="program", period="2025-2026", title="专业层面 2025-2026 学年")
    db.session.add(cycle)
    db.session.commit()
    api.login("q4001")
    response = upload(api, csv_bytes([MEASUREMENT_HEADER, ["专业", "510201", "P-SSR", "2025-2026", "17", "教务"],
                                      ["专业", "510201", "P-SSR", "2024-2025", "17", "教务"]]),
                      "m.csv", "measurements", cycle=str(cycle.id))
    assert response.status_code == 422
    assert [e["row"] for e in response.get_json()["errors"]] == [3]
    assert count(Measurement) == 0


def test_missing_columns_are_named(api, org):
    """A file without 数值 and 周期 columns is refused naming both."""
    api.login("q4001")
    response = upload(api, csv_bytes([["层面", "主体编码", "质控点编码"], ["专业", "510201", "P-SSR"]]),
                      "m.csv", "measurements")
    assert response.status_code == 422
    assert {e["column"] for e in response.get_json()["errors"]} == {"周期", "数值"}


def test_unsupported_file_type_is_refused(api, org):
    """A .txt upload is refused with a clear message."""
    api.login("q4001")
    response = upload(api, b"hello", "m.txt", "measurements")
    assert response.status_code == 422
    assert ".xlsx" in response.get_json()["message"]


def test_broken_xlsx_is_refused(api, org):
    """Bytes that are not a workbook get 422, not a server error."""
    api.login("q4001")
    response = upload(api, b"PK\x03\x04 not really", "m.xlsx", "measurements")
    assert response.status_code == 422


def test_unknown_kind_is_refused(api, org):
    """kind must be subjects or measurements."""
    api.login("q4001")
    response = upload(api, csv_bytes([SUBJECT_HEADER]), "s.csv", "teachers")
    assert response.status_code == 422
    assert "kind" in response.get_json()["errors"]


def test_teacher_may_not_import(api, org):
    """Imports are for the quality office and administrators."""
    api.login("t1001")
    response = upload(api, csv_bytes([SUBJECT_HEADER, ["专业", "510201", "软件技术专业", "", "", ""]]),
                      "s.csv", "subjects")
    assert response.status_code == 403
    assert count(Subject) == 0
