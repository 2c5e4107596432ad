"""The hall's pages in a phone-sized browser: sign in, start a service, fill and submit its form, approve,
follow the instance; inline validation errors; and the layout rules (no sideways scrolling, 44 px targets)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT

# Two user tasks: the applicant fills the request, the department head decides (and may return it).
SWAP_BPMN = '''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://hall.test">
  <bpmn:process id="course_swap" name="调课申请" isExecutable="true">
    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="category" value="教学运行"/>
      <spiffworkflow:property name="description" value="因公出差、病事假等需要调整上课时间，由系部负责人审批。"/>
      <spiffworkflow:property name="expectedDays" value="2"/>
    </spiffworkflow:properties></bpmn:extensionElements>
    <bpmn:laneSet id="ls">
      <bpmn:lane id="l_applicant" name="applicant"><bpmn:flowNodeRef>apply</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="l_head" name="dept_head"><bpmn:flowNodeRef>approve</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="apply" name="填写调课申请">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="swap_apply.json"/>
        <spiffworkflow:property name="formUiSchemaFilename" value="swap_apply.uischema.json"/>
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:userTask id="approve" name="系部审批">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="swap_approve.json"/>
        <spiffworkflow:property name="returnVariable" value="decision"/>
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="gw" default="f_done"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="apply"/>
    <bpmn:sequenceFlow id="f2" sourceRef="apply" targetRef="approve"/>
    <bpmn:sequenceFlow id="f3" sourceRef="approve" targetRef="gw"/>
    <bpmn:sequenceFlow id="f_back" sourceRef="gw" targetRef="apply">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">decision == 'return'</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_done" sourceRef="gw" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>'''.encode()

SWAP_FORMS = {
    "swap_apply.json": {
        "type": "object", "title": "调课申请",
        "required": ["course", "date", "hours", "kind", "reason"],
        "properties": {
            "course": {"type": "string", "title": "课程名称", "maxLength": 100},
            "date": {"type": "string", "format": "date", "title": "原上课日期"},
            "hours": {"type": "integer", "title": "课时数", "minimum": 1, "maximum": 8},
            "kind": {"type": "string", "title": "调整方式", "enum": ["swap", "substitute", "cancel"],
                     "enumNames": ["调课", "代课", "停课"]},
            "reason": {"type": "string", "title": "调课原因", "maxLength": 500, "description": "请说明原因和补课安排"},
            "notified": {"type": "boolean", "title": "已通知学生"},
        },
    },
    "swap_apply.uischema.json": {"ui:order": ["course", "kind", "date", "hours", "reason", "notified"]},
    "swap_approve.json": {
        "type": "object", "title": "审批",
        "required": ["decision"],
        "properties": {
            "decision": {"type": "string", "title": "审批结论", "enum": ["approve", "reject"],
                         "enumNames": ["同意", "不同意"]},
            "opinion": {"type": "string", "title": "审批意见", "maxLength": 1000},
        },
    },
}

LAYOUT_PROBLEMS = """() => {
  const problems = [];
  for (const el of document.querySelectorAll('a, button, input, select, textarea, summary')) {
    if (el.type === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
    // A radio button or checkbox is tapped through its label, which is what must be large enough.
    const target = (el.type === 'radio' || el.type === 'checkbox') ? (el.closest('label') || el) : el;
    const height = target.getBoundingClientRect().height;
    const label = (el.name || el.textContent).trim().slice(0, 20);
    if (height < 44) problems.push(`${el.tagName.toLowerCase()} "${label}" ${height}px`);
  }
  return problems;
}"""


class Visit:
    """Screenshots every page a test visits and checks the phone layout rules on it."""

    def __init__(self, folder: Path, test: str):
        self.folder, self.test, self.count = folder, test, 0

    def check(self, page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.test}-{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name}: the page is {width}px wide and scrolls sideways"
        assert page.evaluate(LAYOUT_PROBLEMS) == [], f"{name}: targets under 44px"
        return path


@pytest.fixture
def hall(app, ctx, deploy_bpmn):
    """The demo organisation with the course-swap service deployed."""
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()
    deploy_bpmn(SWAP_BPMN, SWAP_FORMS, "course_swap.bpmn")


@pytest.fixture
def visit(request, screenshots):
    return Visit(screenshots, request.node.name.removeprefix("test_"))


def sign_in(page, base: str, username: str, visit: Visit | None = None):
    page.goto(base + "/login")
    if visit:
        visit.check(page, "login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "hall2026")
    page.click("button:has-text('登录')")
    expect(page.locator("h1.greet")).to_be_visible()


def start_swap(page, base: str, visit: Visit):
    page.click("nav.tabs >> text=办事")
    expect(page.locator("h1")).to_have_text("办事服务")
    visit.check(page, "services")
    page.click("button[aria-label='发起调课申请']")
    expect(page.locator("h1")).to_have_text("填写调课申请")


def test_teacher_applies_head_approves_teacher_sees_completed(hall, live_server, phone, visit):
    """A teacher starts a service from the catalogue and submits its form; the head approves; the
    teacher then sees the instance completed with its timeline and submitted data."""
    teacher = phone()
    sign_in(teacher, live_server, "t1001", visit)
    visit.check(teacher, "home-teacher")
    start_swap(teacher, live_server, visit)
    teacher.fill("#f-course", "Python 程序设计")
    teacher.check("input[name=kind][value=swap]", force=True)
    teacher.fill("#f-date", "2026-12-01")
    teacher.fill("#f-hours", "2")
    teacher.fill("#f-reason", "12 月 1 日赴省教育厅参加专业评估会议，课程调至 12 月 3 日第 5–6 节。")
    teacher.check("input[name=notified][value=true]", force=True)
    task_shot = visit.check(teacher, "task-form")
    teacher.click("button[value=submit]")
    expect(teacher.locator("[data-state]")).to_have_attribute("data-state", "running")
    expect(teacher.locator("text=当前步骤")).to_contain_text("系部审批")
    visit.check(teacher, "instance-running")

    head = phone()
    sign_in(head, live_server, "h2001", visit)
    home_shot = visit.check(head, "home-head")
    expect(head.locator(".count").first).to_contain_text("1")
    head.click("a.item:has-text('系部审批')")
    expect(head.locator("h1")).to_have_text("系部审批")
    expect(head.locator(".pairs")).to_contain_text("Python 程序设计")  # the applicant's step, read-only
    expect(head.locator(".pairs")).to_contain_text("调课")
    expect(head.locator("summary", has_text="退回")).to_be_visible()
    visit.check(head, "task-approve")
    head.check("input[name=decision][value=approve]", force=True)
    head.fill("#f-opinion", "同意，请做好补课安排。")
    head.click("button[value=submit]")
    expect(head.locator("[data-state]")).to_have_attribute("data-state", "completed")

    teacher.click("nav.tabs >> text=我发起的")
    visit.check(teacher, "mine")
    teacher.click("a.item:has-text('调课申请')")
    expect(teacher.locator("[data-state]")).to_have_text("已办结")
    timeline = teacher.locator(".timeline")
    expect(timeline).to_contain_text("发起")
    expect(timeline).to_contain_text("提交「填写调课申请」")
    expect(timeline).to_contain_text("李华 · 提交「系部审批」")
    expect(teacher.locator(".step", has_text="系部审批")).to_contain_text("同意，请做好补课安排。")
    visit.check(teacher, "instance-completed")

    if os.environ.get("HALL_UPDATE_DOCS_SCREENSHOTS") == "1":  # refresh the README pictures on request
        shutil.copy(home_shot, ROOT / "docs" / "screenshot-home.png")
        shutil.copy(task_shot, ROOT / "docs" / "screenshot-task.png")


def test_missing_required_field_is_shown_beside_it_and_input_kept(hall, live_server, phone, visit):
    """Submitting without a required field re-renders the form (422) with the message next to that field,
    keeping everything that was typed."""
    page = phone()
    sign_in(page, live_server, "t1001")
    start_swap(page, live_server, visit)
    page.fill("#f-reason", "参加技能大赛集训")
    page.fill("#f-hours", "3")
    page.check("input[name=kind][value=cancel]", force=True)
    with page.expect_response(re.compile(r"/tasks/\d+$")) as posted:
        page.click("button[value=submit]")
    assert posted.value.status == 422
    course = page.locator("[data-field=course]")
    expect(course.locator(".field-error")).to_have_text("请填写课程名称")
    expect(page.locator("#f-course")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("[data-field=reason] .field-error")).to_have_count(0)
    expect(page.locator("#f-reason")).to_have_value("参加技能大赛集训")
    expect(page.locator("#f-hours")).to_have_value("3")
    expect(page.locator("input[name=kind][value=cancel]")).to_be_checked()
    visit.check(page, "task-errors")


def test_every_page_fits_a_phone(hall, live_server, phone, visit):
    """At 390 px no page scrolls sideways and every visible control is at least 44 px tall."""
    page = phone()
    sign_in(page, live_server, "t1001", visit)
    visit.check(page, "home")
    start_swap(page, live_server, visit)
    page.fill("#f-course", "一个非常非常长的课程名称用来检查换行" * 3)
    page.click("button[value=draft]")
    expect(page.locator(".flash")).to_have_text("草稿已保存")
    expect(page.locator("#f-course")).to_have_value("一个非常非常长的课程名称用来检查换行" * 3)
    visit.check(page, "task-draft")
    page.click("summary:has-text('转办')")
    page.fill("#transfer-to", "nobody")
    page.click("button[value=transfer]")
    expect(page.locator("#username-error")).to_contain_text("用户不存在")
    visit.check(page, "task-transfer-error")
    page.fill("#comment-body", "课程安排已与教务处确认。")
    page.click("button[value=comment]")
    expect(page.locator(".comment")).to_contain_text("课程安排已与教务处确认。")
    for path, name in [("/services?q=调课", "services-search"), ("/services?q=没有这个", "services-empty"),
                       ("/tasks?view=open", "tasks-open"), ("/tasks?view=completed", "tasks-completed"),
                       ("/mine", "mine")]:
        page.goto(live_server + path)
        visit.check(page, name)
    page.click("a.item:has-text('调课申请')")
    visit.check(page, "instance")
    page.click("button:has-text('催办')")
    expect(page.locator(".flash")).to_contain_text("已催办")
    expect(page.locator(".timeline")).to_contain_text("催办")
    page.click("button:has-text('撤销')")
    expect(page.locator("[data-state]")).to_have_text("已撤销")
    visit.check(page, "instance-withdrawn")


def test_form_post_without_csrf_token_is_refused(hall, live_server, phone):
    """A form post that does not carry the session's CSRF token is refused and changes nothing."""
    page = phone()
    sign_in(page, live_server, "t1001")
    response = page.request.post(live_server + "/services/course_swap/start", form={"_csrf": "forged"})
    assert response.status == 400
    page.goto(live_server + "/mine")
    expect(page.locator("h1")).to_contain_text("共 0 项")
