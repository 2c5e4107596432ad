"""The 待办 list on a phone: each row shows its due time, overdue rows are marked, and 按截止时间 sorts the
soonest due first (tasks without a due time last)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.conftest import bpmn_sequence
from tests.web.test_pages import Visit, sign_in


@pytest.fixture
def three_tasks(app, ctx, deploy_bpmn):
    """Three open tasks of t1001, started in this order: due in 3 days, overdue by a day, no due time."""
    from hall.accounts.models import User
    from hall.extensions import db
    from hall.org.demo import load_demo_organisation
    from hall.processes import services as processes

    load_demo_organisation()
    deploy_bpmn(bpmn_sequence("one_step", 1), {}, "one_step.bpmn")
    teacher = db.session.scalar(db.select(User).where(User.username == "t1001"))
    now = datetime.now(UTC)
    ids = {}
    for label, due in [("soon", now + timedelta(days=3)), ("late", now - timedelta(days=1)), ("none", None)]:
        instance = processes.start_instance("one_step", teacher)
        task = next(t for t in processes.instance_tasks(instance) if t.state == "ready")
        task.due_at = due
        ids[label] = task.id
    db.session.commit()
    return ids


def _order(page) -> list[int]:
    return [int(v) for v in page.locator(".list a.item[data-task]").evaluate_all(
        "rows => rows.map(r => r.dataset.task)")]


def test_due_sort_puts_the_soonest_first_and_marks_the_overdue(three_tasks, live_server, phone, screenshots):
    """By default the newest task comes first; 按截止时间 lists overdue, then due in 3 days, then no due
    time; the overdue row carries 已超期 and the rows with a due time show it."""
    visit = Visit(screenshots, "task_list_sorted_by_due")
    page = phone()
    sign_in(page, live_server, "t1001")
    page.goto(live_server + "/tasks")
    expect(page.locator(".list a.item[data-task]")).to_have_count(3)
    assert _order(page) == [three_tasks["none"], three_tasks["late"], three_tasks["soon"]]
    visit.check(page, "tasks-by-arrival")
    page.click("nav.sort >> text=按截止时间")
    expect(page.locator("nav.sort a[aria-current=true]")).to_have_text("按截止时间")
    assert _order(page) == [three_tasks["late"], three_tasks["soon"], three_tasks["none"]]
    late = page.locator(f"a.item[data-task='{three_tasks['late']}']")
    expect(late).to_have_class("item overdue")
    expect(late).to_contain_text("已超期")
    expect(late.locator(".due")).to_contain_text("截止")
    soon = page.locator(f"a.item[data-task='{three_tasks['soon']}']")
    expect(soon).not_to_contain_text("已超期")
    expect(soon.locator(".due")).to_contain_text("截止")
    expect(page.locator(f"a.item[data-task='{three_tasks['none']}'] .due")).to_have_count(0)
    visit.check(page, "tasks-by-due")
