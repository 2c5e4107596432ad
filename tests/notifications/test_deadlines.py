"""Reminders before the due time, escalation after it, the per-process settings and the daily digest."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from hall.db_types import utcnow
from hall.extensions import db
from tests.notifications.conftest import process_with_properties
from tests.notifications.helpers import DUE_IN_HOURS, choose, dispatch, head_task_flow, messages, start


def _set_due(task_id: int, due):
    from hall.tasks.models import HumanTask

    db.session.execute(sa.update(HumanTask).where(HumanTask.id == task_id).values(due_at=due))
    db.session.commit()


def _deadlines():
    from hall.notifications.tasks import deadlines_job

    return deadlines_job.delay().get()


def test_task_due_from_the_diagram_reaches_the_list(demo, deploy_bpmn, api):
    """dueInHours on the task gives it a due time, returned by GET /tasks?sort=due."""
    head_task_flow(deploy_bpmn, hours=5)
    start()
    api.login("h2001")
    [item] = api.get("tasks?sort=due").get_json()["items"]
    assert item["due_at"] is not None


def test_reminder_before_the_due_time_goes_to_the_holder_once(demo, deploy_bpmn):
    """Within remindBeforeHours of the due time the holder gets one reminder, however often the job runs."""
    head_task_flow(deploy_bpmn, hours=5)  # the default reminder window is 24 h
    _, task_id = start()
    _deadlines()
    _deadlines()
    [reminder] = messages("h2001", "reminder")
    assert (reminder.task_id, reminder.title) == (task_id, "即将到期：步骤1")


def test_no_reminder_while_the_due_time_is_far(demo, deploy_bpmn):
    """A task due in three days is left alone by a 24-hour reminder window."""
    head_task_flow(deploy_bpmn, hours=72)
    start()
    _deadlines()
    assert messages("h2001", "reminder") == []


def test_overdue_task_escalates_to_the_assignees_department_head(demo, deploy_bpmn, api):
    """A task of teacher 张伟 past its due time escalates to 李华, head of his department (one level up)."""
    from tests.conftest import bpmn_sequence

    deploy_bpmn(bpmn_sequence("own_task", 1, lane="applicant"))
    _, task_id = start("own_task")
    _set_due(task_id, utcnow() - timedelta(minutes=1))
    _deadlines()
    _deadlines()
    [escalation] = messages("h2001", "escalation")
    assert escalation.task_id == task_id
    assert "张伟" in escalation.body and "超期" in escalation.body


def test_process_property_escalate_to_names_another_role(demo, deploy_bpmn):
    """escalateTo=quality_office on the process sends the escalation to the quality office instead."""
    deploy_bpmn(process_with_properties("esc_flow", {"escalateTo": "quality_office"}, lane="applicant"))
    _, task_id = start("esc_flow")
    _set_due(task_id, utcnow() - timedelta(minutes=1))
    _deadlines()
    assert messages("h2001", "escalation") == []
    assert [m.task_id for m in messages("q4001", "escalation")] == [task_id]


def test_overdue_task_is_not_escalated_to_the_people_holding_it(demo, deploy_bpmn):
    """A dept_head-lane task held by 李华 himself goes past him: with no head above, nobody is told."""
    head_task_flow(deploy_bpmn)
    _, task_id = start()
    _set_due(task_id, utcnow() - timedelta(minutes=1))
    _deadlines()
    assert messages("h2001", "escalation") == []


def test_process_property_remind_before_hours_widens_the_window(demo, deploy_bpmn):
    """remindBeforeHours=100 on the process reminds about a task due in three days."""
    xml = process_with_properties("remind_flow", {"remindBeforeHours": "100"}, lane="dept_head",
                                  extra_props=DUE_IN_HOURS.format(hours=72))
    deploy_bpmn(xml)
    start("remind_flow")
    _deadlines()
    assert len(messages("h2001", "reminder")) == 1


def test_digest_users_get_one_summary_a_day(demo, deploy_bpmn, smtp_server):
    """A digest user gets no mail per event but one mail a day that lists them all."""
    choose("h2001", ["mail"], digest=True)
    head_task_flow(deploy_bpmn)
    start()
    start()
    dispatch()
    assert smtp_server.mails == []
    from hall.notifications.tasks import digest_job

    digest_job.delay()
    digest_job.delay()
    [digest] = messages("h2001", "digest")
    assert digest.body.count("新待办：步骤1") == 2
    [mail] = smtp_server.mails
    assert mail["Subject"].startswith("每日汇总：2 条新消息")
