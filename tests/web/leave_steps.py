"""The steps of a 请假申请 on a phone that several browser tests walk through: the teacher t1001 opens the
form, fills it in and submits it; the head h2001 opens the approval."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.test_pages import sign_in


def open_leave_form(page, base: str, visit=None):
    """Sign in as the teacher and start 请假申请: the teacher's own 填写请假单 task opens."""
    sign_in(page, base, "t1001", visit)
    page.goto(base + "/services")
    page.click("button[aria-label='发起请假申请']")
    expect(page.locator("h1")).to_have_text("填写请假单")


def fill_leave(page, reason: str = "发烧就医。", leave_type: str = "病假", start: str = "2026-12-07",
               end: str = "2026-12-07", days: str = "1", arrangement: str | None = None):
    """Fill the open 填写请假单 form (one day of sick leave unless told otherwise)."""
    page.select_option("#f-leave_type", leave_type)
    page.fill("#f-start_date", start)
    page.fill("#f-end_date", end)
    page.fill("#f-days", days)
    page.fill("#f-reason", reason)
    if arrangement is not None:
        page.fill("#f-arrangement", arrangement)


def submit_filled_leave(page):
    """Press 提交 on the filled leave form; the instance page follows, the leave running."""
    page.click("button[value=submit]")
    expect(page.locator("[data-state]")).to_have_attribute("data-state", "running")


def submit_leave(page, base: str, reason: str = "发烧就医。", **fields):
    """The teacher starts 请假申请, fills it in and submits it; the head's 部门负责人审批 follows."""
    open_leave_form(page, base)
    fill_leave(page, reason, **fields)
    submit_filled_leave(page)


def open_approval(page, base: str):
    """Sign in as the head and open 部门负责人审批 from 待办."""
    sign_in(page, base, "h2001")
    page.goto(base + "/tasks")
    page.click("a.item:has-text('部门负责人审批')")
    expect(page.locator("h1")).to_have_text("部门负责人审批")
