"""The monitoring-point editor (/quality/points): the quality office lists points by level and edits their
lines; lines in the wrong order for the direction are refused beside the fields with the typed values
kept; a teacher is refused the pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.test_pages import Visit, sign_in


@pytest.fixture
def points(app, ctx):
    """The demo organisation and three points: two of the program level, one of the course level."""
    from hall.accounts.models import User
    from hall.extensions import db
    from hall.org.demo import load_demo_organisation
    from hall.quality import services as quality

    load_demo_organisation()
    office = db.session.scalar(db.select(User).where(User.username == "q4001"))
    common = {"unit": "%", "source": "教务", "frequency": "学年"}
    made = {}
    for level, code, name, direction, lines in [
        ("program", "P-EMP", "毕业生就业率", "higher", (98, 90, 80)),
        ("program", "P-RATIO", "生师比", "lower", (16, 18, 22)),
        ("course", "C-PASS", "课程考核通过率", "higher", (95, 85, 70)),
    ]:
        target, standard, warning = lines
        point = quality.save_point(office, {"level": level, "code": code, "name": name, "element": "培养质量",
                                            "direction": direction, "target_value": target,
                                            "standard_value": standard, "warning_value": warning, **common})
        made[code] = point.id
    return made


@pytest.fixture
def visit(request, screenshots):
    return Visit(screenshots, request.node.name.removeprefix("test_"))


def test_quality_office_edits_a_points_standard_value(points, live_server, phone, visit):
    """q4001 filters the list by level, opens 毕业生就业率, changes its 标准值 to 92 and sees 92 in the list."""
    page = phone()
    sign_in(page, live_server, "q4001")
    page.goto(live_server + "/quality/points")
    expect(page.locator("#point-list .point")).to_have_count(3)
    visit.check(page, "points")
    page.select_option("select[name=level]", "program")
    page.click("button:has-text('筛选')")
    expect(page.locator("#point-list .point")).to_have_count(2)
    expect(page.locator("#point-list")).not_to_contain_text("课程考核通过率")
    page.click("a.item:has-text('毕业生就业率')")
    expect(page.locator("h1")).to_have_text("编辑质控点")
    expect(page.locator("#p-standard_value")).to_have_value("90")
    visit.check(page, "point-edit")
    page.fill("#p-standard_value", "92")
    page.click("button:has-text('保存')")
    expect(page.locator(".flash")).to_have_text("质控点「毕业生就业率」已保存")
    expect(page.locator(".point[data-code=P-EMP] [data-line=standard]")).to_have_text("92")
    visit.check(page, "points-saved")


def test_lines_in_the_wrong_order_are_refused_beside_the_fields(points, live_server, phone, visit):
    """A 标准值 above the 目标值 of a “higher is better” point answers 422 with the service's message next to
    the lines, keeps every typed value, and changes nothing."""
    page = phone()
    sign_in(page, live_server, "q4001")
    page.goto(live_server + f"/quality/points/{points['P-EMP']}/edit")
    page.fill("#p-name", "毕业生就业率（初次）")
    page.fill("#p-standard_value", "99")
    with page.expect_response(re.compile(r"/quality/points/\d+/edit$")) as posted:
        page.click("button:has-text('保存')")
    assert posted.value.status == 422
    expect(page.locator("[data-field=lines] .field-error")).to_contain_text("目标值 ≥ 标准值 ≥ 预警值")
    expect(page.locator("[data-field=lines] .field-error")).to_contain_text("目标值 98 小于标准值 99")
    expect(page.locator("#p-standard_value")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#p-standard_value")).to_have_value("99")
    expect(page.locator("#p-name")).to_have_value("毕业生就业率（初次）")
    expect(page.locator("#p-target_value")).to_have_value("98")
    visit.check(page, "point-wrong-order")
    page.goto(live_server + "/quality/points")
    expect(page.locator(".point[data-code=P-EMP]")).to_contain_text("毕业生就业率")
    expect(page.locator(".point[data-code=P-EMP]")).not_to_contain_text("初次")
    expect(page.locator(".point[data-code=P-EMP] [data-line=standard]")).to_have_text("90")


def test_quality_office_creates_a_lower_is_better_point(points, live_server, phone):
    """A new point is created from the form, and a number field holding text is refused beside it."""
    page = phone()
    sign_in(page, live_server, "q4001")
    page.goto(live_server + "/quality/points?level=course")
    page.click("a.button:has-text('新建质控点')")
    expect(page.locator("#p-level")).to_have_value("course")
    page.fill("#p-element", "课程建设")
    page.fill("#p-code", "C-DROP")
    page.fill("#p-name", "课程缺课率")
    page.select_option("#p-direction", "lower")
    page.fill("#p-target_value", "2")
    page.fill("#p-standard_value", "五")
    page.fill("#p-warning_value", "10")
    page.click("button:has-text('保存')")
    expect(page.locator("[data-field=lines] .field-error")).to_have_text("请填写数字")
    page.fill("#p-standard_value", "5")
    page.click("button:has-text('保存')")
    expect(page.locator(".point[data-code=C-DROP]")).to_contain_text("越低越好")
    expect(page.locator(".point[data-code=C-DROP] [data-line=warning]")).to_have_text("10")


def test_teacher_is_refused_the_point_pages(points, api):
    """A teacher gets 403 on the list, the editor and a save, and the point is unchanged."""
    api.login("t1001")
    client = api.client
    assert client.get("/quality/points").status_code == 403
    assert client.get(f"/quality/points/{points['P-EMP']}/edit").status_code == 403
    assert client.get("/quality/points/new").status_code == 403
    with client.session_transaction() as session:
        token = session.get("_csrf", "")
    response = client.post(f"/quality/points/{points['P-EMP']}/edit",
                           data={"_csrf": token, "level": "program", "code": "P-EMP", "name": "x", "element": "x",
                                 "direction": "higher", "standard_value": "10"})
    assert response.status_code == 403
    from hall.extensions import db
    from hall.quality.models import MonitoringPoint

    db.session.expire_all()
    assert db.session.get(MonitoringPoint, points["P-EMP"]).standard_value == 90
