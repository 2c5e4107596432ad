"""The shipped leave flow (workflows/leave_request.bpmn) end to end on phones: the teacher applies, the
department head approves, and the teacher sees the instance finished with every passed step marked."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.leave_steps import fill_leave, submit_filled_leave
from tests.web.test_diagram import diagram_marks
from tests.web.test_pages import Visit, sign_in


def test_teacher_applies_for_leave_head_approves_teacher_sees_finished_diagram(demo, live_server, phone,
                                                                              screenshots):
    """t1001 applies for two days' leave on a phone, h2001 approves on a phone, and t1001's instance page
    shows 已办结 with the start event, both tasks and the end event passed all marked hall-done."""
    visit = Visit(screenshots, "leave_request_on_phones")
    teacher = phone()
    sign_in(teacher, live_server, "t1001", visit)
    teacher.click("nav.tabs >> text=办事")
    expect(teacher.locator("h1")).to_have_text("办事服务")
    visit.check(teacher, "services")
    teacher.click("button[aria-label='发起请假申请']")
    expect(teacher.locator("h1")).to_have_text("填写请假单")
    fill_leave(teacher, "家中老人住院，需陪护两天。", leave_type="事假", end="2026-12-08", days="2",
               arrangement="周一第 3、4 节《数据库原理》已与王老师调课。")
    visit.check(teacher, "leave-form")
    submit_filled_leave(teacher)
    expect(teacher.locator("text=当前步骤")).to_contain_text("部门负责人审批")
    visit.check(teacher, "instance-waiting")

    head = phone()
    sign_in(head, live_server, "h2001", visit)
    head.click("nav.tabs >> text=待办")
    head.click("a.item:has-text('部门负责人审批')")
    expect(head.locator("h1")).to_have_text("部门负责人审批")
    expect(head.locator(".pairs")).to_contain_text("家中老人住院，需陪护两天。")  # the applicant's step, read-only
    visit.check(head, "approve-form")
    head.check("input[name=decision][value=approve]", force=True)
    head.fill("#f-opinion", "同意，注意做好课程安排。")
    head.click("button[value=submit]")
    expect(head.locator("[data-state]")).to_have_attribute("data-state", "completed")
    visit.check(head, "instance-approved")

    teacher.click("nav.tabs >> text=我发起的")
    visit.check(teacher, "mine")
    teacher.click("a.item:has-text('请假申请')")
    expect(teacher.locator("[data-state]")).to_have_text("已办结")
    expect(teacher.locator(".step", has_text="部门负责人审批")).to_contain_text("同意，注意做好课程安排。")
    expect(teacher.locator(".step", has_text="部门负责人审批").locator("dd").first).to_have_text("同意")
    marks = diagram_marks(teacher)
    passed = {"start", "fill_form", "head_approve", "end_approved"}
    assert {element: marks.get(element) for element in passed} == dict.fromkeys(passed, "done")
    assert "current" not in marks.values()
    # The branches not taken stay unmarked.
    assert not {"hr_approve", "end_hr", "end_rejected"} & marks.keys()
    visit.check(teacher, "instance-finished")
