"""The task page on a phone: the approver reads the request before the form, a returned task says so with
its reason, and a refused side action is summarised at the top."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.leave_steps import open_approval, submit_leave
from tests.web.test_pages import Visit

VIEWPORT_HEIGHT = 844  # tests/web/conftest.py PHONE


@pytest.fixture
def visit(request, screenshots):
    return Visit(screenshots, request.node.name.removeprefix("test_"))


def test_approver_sees_the_request_before_the_form(demo, live_server, phone, visit):
    """On 部门负责人审批 the applicant's submission is above the approval form, within the first screen."""
    submit_leave(phone(), live_server, "腰伤复查。")
    page = phone()
    open_approval(page, live_server)
    earlier = page.locator("#earlier")
    expect(earlier).to_contain_text("腰伤复查。")
    above = page.evaluate("""() => {
        const earlier = document.getElementById('earlier'), form = document.getElementById('task-form');
        return !!(earlier.compareDocumentPosition(form) & Node.DOCUMENT_POSITION_FOLLOWING);
    }""")
    assert above, "the earlier steps come after the form"
    reason = page.locator("#earlier dd", has_text="腰伤复查。")
    assert reason.bounding_box()["y"] < VIEWPORT_HEIGHT, "the request's reason is below the first screen"
    visit.check(page, "approval")


def test_returned_task_says_returned_with_the_reason(demo, live_server, phone, visit):
    """After the head's 退回, the applicant's task shows 已退回 and the reason at the top, and offers no
    放弃申请 (the application has gone on)."""
    teacher = phone()
    submit_leave(teacher, live_server)
    head = phone()
    open_approval(head, live_server)
    head.click("summary:has-text('退回')")
    head.fill("#reason", "请补充课程调整安排。")
    head.click("button[value=return]")
    expect(head.locator(".flash")).to_contain_text("已退回")

    teacher.goto(live_server + "/tasks")
    teacher.click("a.item:has-text('填写请假单')")
    returned = teacher.locator("#returned")
    expect(returned).to_contain_text("已退回")
    expect(returned).to_contain_text("退回理由：请补充课程调整安排。")
    expect(returned).to_contain_text("李华")
    assert returned.bounding_box()["y"] < VIEWPORT_HEIGHT
    expect(teacher.locator("summary:has-text('放弃申请')")).to_have_count(0)
    visit.check(teacher, "returned")


def test_new_task_is_not_marked_returned(demo, live_server, phone):
    """A task reached in the ordinary way carries no 已退回 marker."""
    submit_leave(phone(), live_server)
    page = phone()
    open_approval(page, live_server)
    expect(page.locator("#returned")).to_have_count(0)


def test_empty_return_is_summarised_at_the_top(demo, live_server, phone, visit):
    """退回 without a reason answers with a summary at the top of the page (in the first screen) that links to
    the reason field, which shows the message too."""
    submit_leave(phone(), live_server)
    page = phone()
    open_approval(page, live_server)
    page.click("summary:has-text('退回')")
    page.click("button[value=return]")
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("请填写退回理由")
    assert summary.bounding_box()["y"] < VIEWPORT_HEIGHT
    visit.check(page, "empty-return")
    expect(page.locator("#reason-error")).to_have_text("请填写退回理由")
    summary.locator("a").click()
    expect(page.locator("#reason")).to_be_in_viewport()
