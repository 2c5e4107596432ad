"""The quality pages in a real browser: a program leader completes the 诊断 step of a diagnosis cycle on a
phone, and the quality office's dashboard (desktop) shows that program one step further; portraits, warnings
and the cycle dashboard fit a phone; report links download real files."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hall.accounts.models import User
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.quality.models import LEVELS, CycleUnit, Level, Measurement, MonitoringPoint, QualityWarning, Subject
from hall.tasks.models import HumanTask
from tests.conftest import ROOT
from tests.web.test_pages import Visit, sign_in

PERIOD = "2025-2026"


def _user(username: str) -> User:
    return db.session.scalar(sa.select(User).where(User.username == username))


def _unit_id(code: str) -> int:
    return db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == code))



@pytest.fixture
def cycle(app, ctx):
    """A program-level cycle for two programs of 信息工程学院 (leader t1001), one of them taken through
    目标 … 实施 by services, so that its leader's 诊断 task is open; measured values for two periods."""
    from hall.org.demo import load_demo_organisation
    from hall.processes import services as processes
    from hall.quality import cycles
    from hall.tasks import services as tasks

    load_demo_organisation()
    for sort, (code, name) in enumerate(LEVELS.items()):
        if db.session.get(Level, code) is None:
            db.session.add(Level(code=code, name=name, sort=sort))
    db.session.commit()
    forms = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "forms").glob("diagnosis_*.json")}
    processes.deploy({"diagnosis_cycle.bpmn": (ROOT / "workflows" / "diagnosis_cycle.bpmn").read_bytes()}, forms)

    leader, head = _user("t1001"), _user("h2001")
    software = Subject(level_code="program", code="510203", name="软件技术", org_unit_id=_unit_id("xxgc"),
                       responsible_user_id=leader.id, attributes={})
    network = Subject(level_code="program", code="510202", name="计算机网络技术", org_unit_id=_unit_id("xxgc"),
                      responsible_user_id=leader.id, attributes={})
    electric = Subject(level_code="program", code="460306", name="电气自动化技术", org_unit_id=_unit_id("jdgc"),
                       responsible_user_id=_user("t1003").id, attributes={})
    db.session.add_all([software, network, electric])
    points = [MonitoringPoint(level_code="program", element="人才培养质量", code=code, name=name, unit="%",
                              direction="higher", target_value=t, standard_value=s, warning_value=w)
              for code, name, t, s, w in (("PRG-JY", "就业率", 96, 90, 85), ("PRG-DK", "专业对口率", 80, 70, 60),
                                          ("PRG-SS", "双师素质教师比例", 70, 50, 40))]
    db.session.add_all(points)
    db.session.flush()
    for period, values in (("2024-2025", (93.5, 72, 48)), (PERIOD, (95.2, 76, 46))):
        db.session.add_all(Measurement(subject_id=software.id, point_id=p.id, period=period, value=v, source="就业系统")
                           for p, v in zip(points, values, strict=True))
    db.session.add(QualityWarning(point_id=points[2].id, subject_id=software.id, period=PERIOD, level="yellow",
                                  value=46, standard_value=50, warning_value=40, state="open"))
    db.session.commit()

    opened = cycles.open_cycle("program", PERIOD, _user("q4001"), period_end="2025-08-31",
                               scope={"subjects": [software.id, network.id, electric.id]})
    steps = [("target", leader, {"targets": [{"text": "就业率达到 96%", "point": "PRG-JY", "target_value": 96}]}),
             ("target_review", head, {"review_decision": "approve", "review_opinion": "同意"}),
             ("standard", leader, {"standard_confirmed": True}),
             ("design", leader, {"design_plan": "修订人才培养方案"}),
             ("organise", leader, {"organise_responsibilities": "专业负责人统筹"}),
             ("implement", leader, {"implement_progress": "实训开出率 98%"})]
    instance_id = db.session.scalar(sa.select(CycleUnit.instance_id).where(CycleUnit.cycle_id == opened.id,
                                                                           CycleUnit.subject_id == software.id))
    for element, user, data in steps:
        task = db.session.scalar(sa.select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                            HumanTask.state == "ready"))
        assert task.element_id == element
        tasks.complete_task(task.id, user, data, task.version)
    return {"cycle_id": opened.id, "software": software.id, "network": network.id}


@pytest.fixture
def visit(request, screenshots):
    return Visit(screenshots, request.node.name.removeprefix("test_"))


def _step_count(page, step: str):
    return page.locator(f"#by-step tr[data-step={step}] [data-count]")


def test_leader_completes_diagnosis_and_dashboard_shows_the_next_step(cycle, live_server, phone, desktop, visit):
    """The program leader opens 诊断 on a phone, sees the measured values pre-filled, writes the diagnosis
    and submits; the quality office's dashboard then counts the program at 激励, one step further."""
    office = desktop()
    sign_in(office, live_server, "q4001")
    office.goto(f"{live_server}/quality/cycles/{cycle['cycle_id']}")
    expect(_step_count(office, "diagnose")).to_have_text("1")
    expect(_step_count(office, "incentive")).to_have_text("0")
    expect(office.locator("[data-chart=chart-steps]")).to_have_attribute("data-drawn", "true")
    office.screenshot(path=str(visit.folder / f"{visit.test}-00-dashboard-before.png"), full_page=True)

    leader = phone()
    sign_in(leader, live_server, "t1001", visit)
    leader.click("a.item:has-text('诊断')")
    expect(leader.locator("h1")).to_contain_text("诊断")
    table = leader.locator("[data-readonly=diagnosis_points]")
    expect(table).to_contain_text("就业率")
    expect(table.locator("tr", has_text="就业率")).to_contain_text("95.2")
    expect(table.locator("tr", has_text="双师素质教师比例")).to_contain_text("46")
    # On the phone every row is a card: its target, standard and warning lines are in view, nothing scrolls.
    target = table.locator("tr", has_text="就业率").locator("td[data-label=目标值]")
    expect(target).to_be_visible()
    assert target.bounding_box()["x"] + target.bounding_box()["width"] <= 390
    assert leader.evaluate("document.documentElement.scrollWidth") <= 390
    leader.fill("#f-diagnosis_text", "就业率、专业对口率达到标准值；双师素质教师比例低于标准值。")
    leader.fill("#f-diagnosis_problems", "青年教师企业实践经历不足。")
    visit.check(leader, "diagnose-task")
    leader.click("button[value=submit]")
    expect(leader.locator("[data-state]")).to_have_attribute("data-state", "running")
    visit.check(leader, "diagnose-submitted")

    office.reload()
    expect(_step_count(office, "diagnose")).to_have_text("0")
    expect(_step_count(office, "incentive")).to_have_text("1")
    row = office.locator(f"#by-subject tr[data-subject='{cycle['software']}']")
    expect(row).to_have_attribute("data-step", "incentive")
    expect(row).to_contain_text("激励")
    expect(office.locator("[data-chart=chart-steps]")).to_have_attribute("data-drawn", "true")
    chart_data = json.loads(office.locator("#chart-steps").text_content())
    assert chart_data["values"][chart_data["categories"].index("激励")] == 1
    office.screenshot(path=str(visit.folder / f"{visit.test}-99-dashboard-after.png"), full_page=True)


def test_dashboard_drills_down_to_a_department_and_a_portrait(cycle, live_server, desktop, visit):
    """Clicking a department filters the subject table to it; clicking a subject opens its portrait with
    the radar, one trend per point and its open warning."""
    page = desktop()
    sign_in(page, live_server, "q4001")
    page.goto(f"{live_server}/quality/cycles")
    page.click(f"a.item[href$='/quality/cycles/{cycle['cycle_id']}']")
    page.click("#by-department a:has-text('信息工程学院')")
    expect(page.locator(".filter")).to_contain_text("信息工程学院")
    expect(page.locator("#by-subject tbody tr")).to_have_count(2)
    page.click("#by-subject a:has-text('软件技术')")
    expect(page.locator("h1")).to_contain_text("软件技术")
    expect(page.locator("[data-chart=chart-radar]")).to_have_attribute("data-drawn", "true")
    expect(page.locator(".trends [data-chart]")).to_have_count(3)
    expect(page.locator("#points tr[data-point=PRG-SS]")).to_contain_text("黄色预警")
    expect(page.locator("#warnings")).to_contain_text("双师素质教师比例")
    page.screenshot(path=str(visit.folder / f"{visit.test}-01-portrait-desktop.png"), full_page=True)


def test_quality_pages_fit_a_phone(cycle, live_server, phone, visit):
    """At 390 px the dashboard, portraits and warnings do not scroll sideways and their controls are 44 px."""
    page = phone()
    sign_in(page, live_server, "q4001")
    page.click("nav.tabs >> text=质量")
    visit.check(page, "cycles")
    for path, name in [(f"/quality/cycles/{cycle['cycle_id']}", "dashboard"),
                       (f"/quality/subjects/{cycle['software']}", "portrait"),
                       ("/quality/portraits", "portraits-college"),
                       (f"/quality/portraits?org_unit={_unit_id('xxgc')}", "portraits-department"),
                       ("/quality/warnings", "warnings"),
                       ("/quality/warnings?level=yellow&state=open", "warnings-filtered")]:
        page.goto(live_server + path)
        for chart in page.locator("[data-chart]").all():
            expect(chart).to_have_attribute("data-drawn", "true")
        visit.check(page, name)
    expect(page.locator("#warning-list .item")).to_have_count(1)


def test_report_links_download_docx_and_xlsx(cycle, live_server, desktop):
    """The portrait's report buttons download the subject's self-diagnosis report as .docx and .xlsx."""
    page = desktop()
    sign_in(page, live_server, "q4001")
    page.goto(f"{live_server}/quality/subjects/{cycle['software']}")
    for fmt, magic in (("docx", b"PK"), ("xlsx", b"PK")):
        with page.expect_download() as download:
            page.click(f".reports a[href$='.{fmt}']")
        path = download.value.path()
        assert download.value.suggested_filename.endswith(f".{fmt}")
        with open(path, "rb") as handle:
            assert handle.read(2) == magic


def test_a_department_head_sees_only_his_departments_subjects(cycle, live_server, desktop):
    """A department head's dashboard counts his department's units only; a student's nav has no quality tab."""
    page = desktop()
    sign_in(page, live_server, "h2001")
    page.goto(f"{live_server}/quality/cycles/{cycle['cycle_id']}")
    expect(page.locator("[data-stat=total]")).to_have_text("2")
    expect(page.locator("#by-subject tbody tr")).to_have_count(2)
    teacher = desktop()
    sign_in(teacher, live_server, "20240101")
    expect(teacher.locator("nav.tabs")).not_to_contain_text("质量")
