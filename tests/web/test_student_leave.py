"""学生请假 end to end on phones: the student applies, the counsellor approves, the student reports back
(销假) and sees the instance finished with the result and every passed step marked on the diagram."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.test_diagram import diagram_marks
from tests.web.test_pages import Visit, sign_in


def test_student_applies_counsellor_approves_student_reports_back(demo, live_server, phone, screenshots):
    """20240101 applies for two days' sick leave away from campus, c5001 approves, the student reports back
    from 待办, and the instance page shows 已办结 · 同意 with start, form, approval, 销假 and end marked done."""
    visit = Visit(screenshots, "student_leave_on_phones")
    student = phone()
    sign_in(student, live_server, "20240101", visit)
    student.click("nav.tabs >> text=办事")
    expect(student.locator(".card", has_text="学生服务")).to_contain_text("学生请假")
    visit.check(student, "services")
    student.click("button[aria-label='发起学生请假']")
    expect(student.locator("h1")).to_have_text("填写请假单")
    student.check("input[name=leave_type][value=病假]", force=True)
    student.fill("#f-start_date", "2026-12-07")
    student.fill("#f-end_date", "2026-12-08")
    student.fill("#f-days", "2")
    student.fill("#f-reason", "发烧，需去医院就诊并在家休息。")
    student.check("input[name=leave_campus][value=true]", force=True)
    student.fill("#f-destination", "长沙市岳麓区家中")
    student.fill("#f-phone", "13800138000")
    expect(student.locator("summary:has-text('转办')")).to_have_count(0)  # a student's step stays the student's
    visit.check(student, "leave-form")
    student.click("button[value=submit]")
    expect(student.locator("[data-state]")).to_have_attribute("data-state", "running")
    expect(student.locator("text=当前步骤")).to_contain_text("辅导员审批")
    visit.check(student, "instance-waiting")

    counsellor = phone()
    sign_in(counsellor, live_server, "c5001", visit)
    counsellor.click("nav.tabs >> text=待办")
    counsellor.click("a.item:has-text('辅导员审批')")
    expect(counsellor.locator("h1")).to_have_text("辅导员审批")
    expect(counsellor.locator(".pairs")).to_contain_text("长沙市岳麓区家中")
    visit.check(counsellor, "approve-form")
    counsellor.check("input[name=decision][value=approve]", force=True)
    counsellor.fill("#f-opinion", "注意休息，返校后及时销假。")
    counsellor.click("button[value=submit]")
    expect(counsellor.locator("text=当前步骤")).to_contain_text("销假")

    student.click("nav.tabs >> text=待办")
    student.click("a.item:has-text('销假')")
    expect(student.locator("h1")).to_have_text("销假")
    student.fill("#f-returned_date", "2026-12-01")
    student.click("button[value=submit]")
    expect(student.locator("#returned_date-error")).to_have_text("实际返校日期不能早于请假开始日期（2026-12-07）")
    student.fill("#f-returned_date", "2026-12-09")
    student.click("button[value=submit]")
    expect(student.locator("[data-state]")).to_have_attribute("data-state", "completed")
    expect(student.locator("[data-outcome]")).to_have_text("同意")
    marks = diagram_marks(student)
    passed = {"start", "set_defaults", "fill_form", "counsellor_approve", "report_back", "end_back"}
    assert {element: marks.get(element) for element in passed} == dict.fromkeys(passed, "done")
    assert not {"dept_approve", "end_rejected", "end_dept_rejected"} & marks.keys()
    visit.check(student, "instance-finished")
