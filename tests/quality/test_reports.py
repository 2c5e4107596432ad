"""Reports: a subject's 自我诊改报告 and the annual reports of a department and of the college, opened with
python-docx and openpyxl and checked for their real content."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from docx import Document
from docx.oxml.ns import qn
from openpyxl import load_workbook

from tests.quality.test_portraits import P2_PERIOD, build_quality_world


@pytest.fixture
def world(ctx):
    return build_quality_world()


def _download(api, user, path, status=200):
    response = api.login(user).get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response


def _docx(response):
    return Document(io.BytesIO(response.data))


def _tables(document):
    return [[[cell.text for cell in row.cells] for row in table.rows] for table in document.tables]


def _text(document):
    return "\n".join(p.text for p in document.paragraphs)


def _rows(sheet):
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_self_diagnosis_docx_content(api, world):
    """The .docx names the subject, prints every point against its lines with its state, the grade, the
    warning with its handling texts, the diagnosis and improvements, and （未填写） for empty steps."""
    document = _docx(_download(api, "t1001", f"reports/self-diagnosis/{world.unit}.docx"))
    assert document.paragraphs[0].text == "软件技术自我诊改报告"
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[:7] == ["一、基本情况", "二、目标", "三、标准", "四、质控点监测结果", "五、预警及处理情况",
                            "PR02 生师比 处理记录", "六、诊改过程记录"]
    tables = _tables(document)
    points = next(t for t in tables if t[0][:4] == ["编码", "质控点", "单位", "测量值"])
    assert points[0] == ["编码", "质控点", "单位", "测量值", "目标值", "标准值", "预警值", "状态"]
    assert points[1] == ["PR01", "毕业生就业率", "%", "91", "98", "92", "85", "黄色预警"]
    assert points[2] == ["PR02", "生师比", "—", "23", "16", "18", "22", "红色预警"]
    assert points[3][-1] == "未测"
    basics = dict(row for row in tables[0][1:])
    assert basics["等级"] == "良好" and basics["期间"] == P2_PERIOD
    assert ["毕业生就业率达到98%", "毕业生就业率", "98", "已确认"] in tables[1]
    warnings = next(t for t in tables if t[0][0] == "质控点" and "预警级别" in t[0])
    assert warnings[1][:6] == ["PR02 生师比", "红色预警", "23", "18", "22", "已处理"]
    text = _text(document)
    assert "原因分析：招生规模扩大，专任教师补充不及时" in text and "整改方案：引进两名专任教师" in text
    assert "诊断结论：就业率略低于本专业标准，生师比超过预警线" in text
    assert "· 扩大校企合作订单班" in text and "评定等级：良好" in text
    assert "（未填写）" in text


def test_docx_styles_carry_an_east_asian_font(api, world):
    """Normal and heading styles name 宋体 as the East-Asian font so Word renders the Chinese."""
    document = _docx(_download(api, "q4001", f"reports/self-diagnosis/{world.unit}.docx"))
    for name in ("Normal", "Title", "Heading 1"):
        fonts = document.styles[name].element.rPr.find(qn("w:rFonts"))
        assert fonts.get(qn("w:eastAsia")) == "宋体", name


def test_self_diagnosis_xlsx_content(api, world):
    """The .xlsx holds the same report: basics with the grade, points against lines, the warning handling."""
    response = _download(api, "h2001", f"reports/self-diagnosis/{world.unit}.xlsx")
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["基本情况", "目标", "标准", "质控点", "预警", "诊改过程"]
    basics = dict(_rows(book["基本情况"])[1:])
    assert basics["质量主体"] == "软件技术" and basics["等级"] == "良好"
    points = _rows(book["质控点"])
    assert points[0][5:] == ["测量值", "目标值", "标准值", "预警值", "状态"]
    assert points[1][0] == "PR01" and points[1][5:] == [91, 98, 92, 85, "黄色预警"]
    warning = _rows(book["预警"])[1]
    assert warning[:2] == ["PR02 生师比", "红色预警"] and "引进两名专任教师" in warning[-1]
    steps = dict(_rows(book["诊改过程"])[1:])
    assert steps["诊断"].startswith("诊断结论：") and steps["学习"] == "（未填写）"
    assert _rows(book["标准"])[1][:4] == ["STD-P-01", "运行标准", "质量生成", "专业建设运行标准"]


def test_report_filename_is_utf8(api, world):
    """Content-Disposition carries an ASCII fallback and the Chinese name as filename*=UTF-8''."""
    response = _download(api, "q4001", f"reports/self-diagnosis/{world.unit}.docx")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=\"self-diagnosis-")
    assert f"filename*=UTF-8''{quote(f'软件技术-{P2_PERIOD}-自我诊改报告.docx')}" in disposition


@pytest.mark.parametrize("user, status", [("h2002", 404), ("t1002", 404), ("20240101", 404), ("d4002", 200)])
def test_self_diagnosis_access(api, world, user, status):
    """Only those who may see the subject get its report; others get 404."""
    _download(api, user, f"reports/self-diagnosis/{world.unit}.docx", status)


def test_unknown_ids_are_404(api, world):
    """Unknown cycle units and org units, and an unknown format, answer 404."""
    api.login("q4001")
    assert api.get("reports/self-diagnosis/999999.docx").status_code == 404
    assert api.get("reports/department/999999.xlsx").status_code == 404
    assert api.get(f"reports/self-diagnosis/{world.unit}.pdf").status_code == 404


def test_department_report_docx(api, world):
    """A department's annual report: subjects by level, grades, point summary, warnings and its units."""
    response = _download(api, "h2001", f"reports/department/{world.xxgc}.docx?period={P2_PERIOD}")
    document = _docx(response)
    assert document.paragraphs[0].text == f"信息工程学院{P2_PERIOD}年度质量报告"
    tables = _tables(document)
    assert tables[0] == [["层面", "主体数"], ["专业", "1"], ["课程", "2"]]  # from the top level down
    grades = {row[0]: row[1:] for row in tables[1][1:]}
    assert grades["良好"] == ["1", "100.0%"] and grades["优秀"] == ["0", "0.0%"]
    points = {row[1]: row for row in tables[2][1:]}
    assert points["PR01 毕业生就业率"][3:] == ["1/1", "91", "91", "91", "90", "0.0%"]
    assert tables[3] == [["发出", "黄色预警", "红色预警", "已处理", "已关闭", "未关闭"], ["1", "0", "1", "1", "0", "0"]]
    units = tables[-1]
    assert units[0] == ["编码", "质量主体", "层面", "所在单位", "当前步骤", "等级", "未关闭预警"]
    assert units[1:] == [["510201", "软件技术", "专业", "信息工程学院", "改进", "良好", "0"]]


def test_department_report_xlsx(api, world):
    """The department's .xlsx carries the same figures in sheets with header rows."""
    response = _download(api, "q4001", f"reports/department/{world.jdgc}.xlsx?period={P2_PERIOD}")
    book = load_workbook(io.BytesIO(response.data))
    assert book.properties.title == f"机电工程学院{P2_PERIOD}年度质量报告"
    assert _rows(book["等级分布"])[1:3] == [["优秀", 1, "100.0%"], ["良好", 0, "0.0%"]]
    points = {row[1]: row for row in _rows(book["质控点"])[1:]}
    assert points["PR03"][10:] == [0, 1, 0, "0.0%"]
    assert _rows(book["诊改单元"])[1][:6] == ["460306", "电气自动化技术", "专业", "机电工程学院", "诊断", "优秀"]


def test_college_report_breaks_down_by_department(api, world):
    """The college report adds a table per department; its point summary covers both programs."""
    document = _docx(_download(api, "q4001", f"reports/college.docx?period={P2_PERIOD}"))
    assert document.paragraphs[0].text.endswith(f"{P2_PERIOD}年度质量报告")
    tables = _tables(document)
    departments = next(t for t in tables if t[0][0] == "单位")
    rows = {row[0]: row for row in departments[1:]}
    assert rows["信息工程学院"][1:] == ["3", "0", "1", "0", "0", "0", "1", "0"]
    assert rows["机电工程学院"][1:] == ["1", "1", "0", "0", "0", "0", "0", "0"]
    points = {row[1]: row for row in tables[2][1:]}
    assert points["PR01 毕业生就业率"][3:9] == ["2/2", "93", "91", "95", "90", "50.0%"]
    book = load_workbook(io.BytesIO(_download(api, "q4001", f"reports/college.xlsx?period={P2_PERIOD}").data))
    assert "各单位" in book.sheetnames and len(_rows(book["诊改单元"])) == 3


def test_annual_report_access(api, world):
    """The college report is for all-seeing roles only; a dept head gets only his own department."""
    _download(api, "h2001", f"reports/college.docx?period={P2_PERIOD}", 403)
    _download(api, "t1001", f"reports/college.xlsx?period={P2_PERIOD}", 403)
    _download(api, "h2001", f"reports/department/{world.jdgc}.docx?period={P2_PERIOD}", 404)
    _download(api, "t1001", f"reports/department/{world.xxgc}.docx?period={P2_PERIOD}", 404)


def test_annual_report_defaults_period_and_refuses_without_data(api, ctx):
    """With no period and nothing to report, the answer is 422 naming the period."""
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()
    response = api.login("q4001").get("reports/college.docx")
    assert response.status_code == 422 and "period" in response.get_json()["errors"]


def test_values_are_rounded_alike_on_the_portrait_and_in_the_reports(api, world):
    """A measured 88.3317 reads 88.33 on the subject page, in the .docx and in the .xlsx."""
    from hall.extensions import db
    from hall.quality.models import Measurement

    db.session.add(Measurement(subject_id=world.software, point_id=world.employment, period=P2_PERIOD,
                               value=88.3317, source="督导"))
    db.session.commit()
    page = _download(api, "q4001", f"/quality/subjects/{world.software}").get_data(as_text=True)
    row = page[page.index('data-point="PR01"'):]
    assert "88.33<" in row[:row.index("</tr>")] and "88.3317" not in page
    points = next(t for t in _tables(_docx(_download(api, "q4001", f"reports/self-diagnosis/{world.unit}.docx")))
                  if t[0][:2] == ["编码", "质控点"])
    assert points[1][:4] == ["PR01", "毕业生就业率", "%", "88.33"]
    book = load_workbook(io.BytesIO(_download(api, "q4001", f"reports/self-diagnosis/{world.unit}.xlsx").data))
    assert _rows(book["质控点"])[1][5] == 88.33


def test_the_subject_page_lists_its_children_page_by_page(api, world):
    """A subject with 25 children shows 20 on its page with a pager; the second page shows the other 5."""
    from hall.extensions import db
    from hall.quality.models import Subject

    parent = db.session.get(Subject, world.software)
    db.session.add_all([Subject(level_code="course", code=f"C-X{i:02d}", name=f"课程{i:02d}", parent_id=parent.id,
                                org_unit_id=parent.org_unit_id, attributes={}) for i in range(23)])
    db.session.commit()
    first = _download(api, "q4001", f"/quality/subjects/{world.software}").get_data(as_text=True)
    listed = first[first.index('id="children"'):]
    assert listed.count('class="item"') == 20 and "第 1 / 2 页" in listed
    second = _download(api, "q4001", f"/quality/subjects/{world.software}?page=2").get_data(as_text=True)
    assert second[second.index('id="children"'):].count('class="item"') == 5
