"""The shipped flows (请假申请, 用印申请) end to end through the API, each step done by the person in its lane."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hall.db_types import utcnow

LEAVE = {
    "leave_type": "事假",
    "start_date": "2026-12-01",
    "end_date": "2026-12-02",
    "days": 2,
    "reason": "家中有事需要处理",
    "arrangement": "周二第 3、4 节课已与王芳老师调课",
}
SEAL = {
    "purpose": "与合作企业签订校企合作协议",
    "document_name": "校企合作协议书",
    "copies": 2,
    "seal_type": "合同专用章",
    "is_contract": True,
    "contract_text": "甲乙双方共建软件技术实训基地，合作期三年。",
}


def start(api, definition: str, username: str = "t1001", data: dict | None = None) -> dict:
    api.login(username)
    response = api.post("process-instances", {"definition": definition, "data": data or {}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_tasks(api, username: str) -> list[dict]:
    api.login(username)
    return api.get("tasks?view=open").get_json()["items"]


def only_task(api, username: str, element: str) -> dict:
    """The one open task of *username*, which must be at *element*; returns its detail."""
    items = open_tasks(api, username)
    assert [t["element_id"] for t in items] == [element], items
    return api.get(f"tasks/{items[0]['id']}").get_json()


def complete(api, username: str, element: str, data: dict) -> dict:
    task = only_task(api, username, element)
    response = api.post(f"tasks/{task['id']}/complete", {"data": data, "version": task["version"]})
    assert response.status_code == 200, response.get_json()
    return task


def instance(api, instance_id: int, username: str = "t1001") -> dict:
    api.login(username)
    return api.get(f"process-instances/{instance_id}").get_json()


# -- 请假申请 -----------------------------------------------------------------------------------------


def test_leave_definition_is_in_the_catalogue_with_its_properties(api, demo):
    """The leave flow is deployed as 请假申请 under 人事服务 with its expected handling time."""
    api.login("t1001")
    definitions = {d["key"]: d for d in api.get("process-definitions").get_json()}
    leave = definitions["leave_request"]
    assert (leave["name"], leave["category"], leave["expected_days"]) == ("请假申请", "人事服务", 3)
    assert definitions["seal_request"]["category"] == "综合服务"


def test_leave_first_task_is_the_teachers_form(api, demo):
    """Starting a leave gives the teacher the 填写请假单 task with its Chinese form."""
    started = start(api, "leave_request")
    assert started["current_elements"] == ["fill_form"]
    task = only_task(api, "t1001", "fill_form")
    assert task["name"] == "填写请假单" and task["can_act"]
    assert task["form"]["properties"]["leave_type"]["title"] == "请假类型"
    assert task["ui_schema"]["reason"]["ui:widget"] == "textarea"


def test_approval_goes_to_the_head_of_the_teachers_department_only(api, demo):
    """The head of xxgc (h2001) gets the approval; the head of jdgc (h2002) neither sees nor can act on it."""
    start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    task = only_task(api, "h2001", "head_approve")
    assert task["data"]["reason"] == LEAVE["reason"]
    assert open_tasks(api, "h2002") == []
    refused = api.post(f"tasks/{task['id']}/complete", {"data": {"decision": "approve"}, "version": task["version"]})
    assert refused.status_code in (403, 404)


def test_short_leave_completes_after_the_heads_approval(api, demo):
    """Two days of leave: the head approves and the instance completes without an HR task."""
    started = start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    complete(api, "h2001", "head_approve", {"decision": "approve", "opinion": "同意"})
    final = instance(api, started["id"])
    assert final["state"] == "completed"
    assert "end_approved" in final["completed_elements"] and "hr_approve" not in final["completed_elements"]
    assert open_tasks(api, "r3001") == []


def test_long_leave_also_needs_hr_approval(api, demo):
    """Five days of leave: after the head approves, r3001 (人事处) gets a task; completing it ends the flow."""
    started = start(api, "leave_request")
    complete(api, "t1001", "fill_form", {**LEAVE, "days": 5, "end_date": "2026-12-05"})
    complete(api, "h2001", "head_approve", {"decision": "approve"})
    assert instance(api, started["id"])["state"] == "running"
    task = complete(api, "r3001", "hr_approve", {"hr_decision": "approve", "attendance_recorded": True})
    assert task["name"] == "人事处审批" and task["data"]["days"] == 5
    assert instance(api, started["id"])["state"] == "completed"


def test_head_returns_the_leave_to_the_teacher_who_resubmits(api, demo):
    """退回: the teacher gets the form again with the earlier data and the reason, resubmits, the head approves."""
    started = start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    task = only_task(api, "h2001", "head_approve")
    assert task["can_return"]
    returned = api.post(f"tasks/{task['id']}/return", {"reason": "请补充工作安排", "version": task["version"]})
    assert returned.status_code == 200, returned.get_json()

    again = only_task(api, "t1001", "fill_form")
    assert again["id"] != task["id"]
    assert again["data"]["reason"] == LEAVE["reason"] and again["data"]["days"] == LEAVE["days"]
    assert again["data"]["return_reason"] == "请补充工作安排"
    complete(api, "t1001", "fill_form", {**LEAVE, "arrangement": "课程已调至下周三"})
    complete(api, "h2001", "head_approve", {"decision": "approve"})
    final = instance(api, started["id"])
    assert final["state"] == "completed"
    assert [e["kind"] for e in final["history"]].count("returned") == 1


def test_head_rejects_and_the_leave_ends_without_hr(api, demo):
    """不同意: even a long leave ends at the head's rejection, with no HR task."""
    started = start(api, "leave_request")
    complete(api, "t1001", "fill_form", {**LEAVE, "days": 5, "end_date": "2026-12-05"})
    complete(api, "h2001", "head_approve", {"decision": "reject", "opinion": "教学任务紧，不同意"})
    final = instance(api, started["id"])
    assert final["state"] == "completed"
    assert "end_rejected" in final["completed_elements"] and "hr_approve" not in final["completed_elements"]
    assert open_tasks(api, "r3001") == []


def test_leave_form_without_a_reason_is_refused_naming_the_field(api, demo):
    """A leave form missing 事由 answers 422 naming `reason`, and the task stays open."""
    start(api, "leave_request")
    task = only_task(api, "t1001", "fill_form")
    data = {k: v for k, v in LEAVE.items() if k != "reason"}
    response = api.post(f"tasks/{task['id']}/complete", {"data": data, "version": task["version"]})
    assert response.status_code == 422
    body = response.get_json()
    assert "reason" in body["errors"] and "请假事由" in body["errors"]["reason"][0]
    assert only_task(api, "t1001", "fill_form")["id"] == task["id"]


def test_leave_of_zero_days_is_refused(api, demo):
    """天数 must be greater than zero."""
    start(api, "leave_request")
    task = only_task(api, "t1001", "fill_form")
    response = api.post(f"tasks/{task['id']}/complete", {"data": {**LEAVE, "days": 0}, "version": task["version"]})
    assert response.status_code == 422 and "days" in response.get_json()["errors"]


def test_reminder_defaults_to_one_day(api, demo):
    """Without `reminder_after` the reminder timer on the head's approval is due about one day later."""
    from hall.extensions import db
    from hall.processes.models import Timer

    started = start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    due = db.session.scalars(sa.select(Timer.due_at).where(Timer.instance_id == started["id"])).all()
    db.session.rollback()
    assert len(due) == 1
    assert utcnow() + timedelta(hours=23) < due[0] < utcnow() + timedelta(hours=25)


def test_reminder_fires_without_taking_the_task_away(api, demo):
    """A due reminder records timer_fired, and the head's approval task stays open (non-interrupting)."""
    from hall.extensions import db
    from hall.processes import services
    from hall.processes.models import InstanceEvent

    started = start(api, "leave_request", data={"reminder_after": "PT1S"})
    complete(api, "t1001", "fill_form", LEAVE)
    task = only_task(api, "h2001", "head_approve")

    def fired() -> bool:
        found = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(InstanceEvent)
            .where(InstanceEvent.instance_id == started["id"], InstanceEvent.kind == "timer_fired")
        )
        db.session.rollback()
        return bool(found)

    deadline = time.monotonic() + 15
    while not fired():
        assert time.monotonic() < deadline, "the reminder timer did not fire within 15 s"
        services.fire_due_timers()
        time.sleep(0.1)  # poll interval; the deadline bounds the wait

    still = only_task(api, "h2001", "head_approve")
    assert still["id"] == task["id"] and still["state"] == "ready" and still["can_act"]
    assert instance(api, started["id"])["state"] == "running"
    complete(api, "h2001", "head_approve", {"decision": "approve"})
    assert instance(api, started["id"])["state"] == "completed"


# -- 用印申请 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("first, second", [("o3002", "l3003"), ("l3003", "o3002")])
def test_seal_needs_both_parallel_reviews_before_stamping(api, demo, first, second):
    """党政办 and 法律顾问 review in parallel (either order); only after both does s3004 get the stamping task."""
    reviews = {
        "o3002": ("office_review", {"office_approved": True, "office_opinion": "同意"}),
        "l3003": ("legal_review", {"legal_approved": True, "legal_opinion": "合同条款无异议"}),
    }
    started = start(api, "seal_request")
    complete(api, "t1001", "fill_form", SEAL)
    assert sorted(instance(api, started["id"])["current_elements"]) == ["legal_review", "office_review"]
    assert open_tasks(api, "s3004") == []

    complete(api, first, *reviews[first])
    assert open_tasks(api, "s3004") == []
    only_task(api, second, reviews[second][0])
    complete(api, second, *reviews[second])

    task = complete(api, "s3004", "stamp", {"stamped_copies": 2, "register_no": "YY-2026-001"})
    assert task["name"] == "印章管理员用印" and task["data"]["document_name"] == SEAL["document_name"]
    final = instance(api, started["id"])
    assert final["state"] == "completed"
    assert final["outcome"] == {"value": "stamped", "label": "已用印"}


def test_seal_not_approved_by_a_reviewer_is_not_stamped(api, demo):
    """When one reviewer does not approve, the request ends without a stamping task."""
    started = start(api, "seal_request")
    complete(api, "t1001", "fill_form", SEAL)
    complete(api, "o3002", "office_review", {"office_approved": True})
    complete(api, "l3003", "legal_review", {"legal_approved": False, "legal_opinion": "违约条款需修改"})
    final = instance(api, started["id"])
    assert final["state"] == "completed" and "end_not_approved" in final["completed_elements"]
    assert final["outcome"] == {"value": "not_approved", "label": "审核未通过"}
    assert open_tasks(api, "s3004") == []


def test_seal_copies_must_be_at_least_one(api, demo):
    """份数 0 answers 422 naming `copies`."""
    start(api, "seal_request")
    task = only_task(api, "t1001", "fill_form")
    response = api.post(f"tasks/{task['id']}/complete", {"data": {**SEAL, "copies": 0}, "version": task["version"]})
    assert response.status_code == 422 and "copies" in response.get_json()["errors"]


def test_task_data_survives_a_state_stored_with_reordered_keys(demo):
    """PostgreSQL's JSONB reorders the task map; restoring it must still rebuild each task's data."""
    from hall.extensions import db
    from hall.processes import registry
    from hall.processes.models import ProcessDefinition, ProcessVersion

    definition = db.session.scalar(sa.select(ProcessDefinition).where(ProcessDefinition.key == "leave_request"))
    process = registry.compiled(db.session.get(ProcessVersion, definition.latest_version_id))
    outcome = registry.engine().start(process, {"starter": "t1001", "reminder_after": "PT5M"})
    ready_id = outcome.ready[0].engine_task_id
    state = dict(outcome.state, tasks=dict(reversed(list(outcome.state["tasks"].items()))))
    workflow = registry.engine().load(process, state)
    restored = next(t for t in workflow.get_tasks() if str(t.id) == ready_id)
    assert restored.data["reminder_after"] == "PT5M" and restored.data["starter"] == "t1001"
