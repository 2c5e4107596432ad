"""学生请假 end to end through the API, each step done by the person in its lane: the student, the
counsellor (辅导员) of the student's department, the head of the department for more than 3 days, and the
student again to report back (销假)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from hall.db_types import utcnow
from tests.test_flows import complete, instance, only_task, open_tasks, start

STUDENT = "20240101"
COUNSELLOR = "c5001"  # counsellor of 信息工程学院, the department of 林小雨's class
OTHER_COUNSELLOR = "c5002"  # 机电工程学院
HEAD = "h2001"
LEAVE = {
    "leave_type": "病假",
    "start_date": "2026-12-07",
    "end_date": "2026-12-08",
    "days": 2,
    "reason": "发烧，需去医院就诊并在家休息",
    "leave_campus": True,
    "destination": "长沙市岳麓区家中",
    "phone": "13800138000",
    "parent_informed": True,
}
LONG = {**LEAVE, "end_date": "2026-12-11", "days": 5}


def start_leave(api) -> int:
    return start(api, "student_leave", STUDENT)["id"]


def submit(api, username: str, element: str, data: dict):
    """The response to completing *username*'s one open task at *element* with *data*."""
    task = only_task(api, username, element)
    return api.post(f"tasks/{task['id']}/complete", {"data": data, "version": task["version"]})


# -- who may start it --------------------------------------------------------------------------------

def test_students_find_it_under_student_services_and_staff_do_not(api, demo):
    """学生请假 is in a student's catalogue under 学生服务; a teacher neither sees nor can start it."""
    api.login(STUDENT)
    services = {d["key"]: d for d in api.get("services").get_json()}
    assert services["student_leave"]["name"] == "学生请假"
    assert services["student_leave"]["category"] == "学生服务"
    api.login("t1001")
    assert "student_leave" not in {d["key"] for d in api.get("services").get_json()}
    response = api.post("process-instances", {"definition": "student_leave", "data": {}})
    assert response.status_code == 403 and response.get_json()["message"] == "您没有发起此流程的权限"


def test_the_students_first_step_is_the_leave_form(api, demo):
    """Starting gives the student 填写请假单 with its Chinese form; 是否离校 comes preset to no."""
    start_leave(api)
    task = only_task(api, STUDENT, "fill_form")
    assert task["name"] == "填写请假单" and task["can_act"]
    assert task["form"]["properties"]["phone"]["title"] == "请假期间联系电话"
    assert task["form"]["properties"]["leave_campus"]["default"] is False


# -- the paths through it ----------------------------------------------------------------------------

def test_short_leave_goes_to_the_departments_counsellor_then_back_to_the_student(api, demo):
    """Two days: c5001 (信息工程学院) approves; c5002 of another department never sees it; no head's step;
    the student reports back and the instance ends 同意 with the return date kept."""
    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LEAVE)
    assert open_tasks(api, OTHER_COUNSELLOR) == []
    task = complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve", "opinion": "注意休息"})
    assert task["name"] == "辅导员审批" and task["data"]["phone"] == LEAVE["phone"]
    assert instance(api, started, STUDENT)["current_elements"] == ["report_back"]
    assert open_tasks(api, HEAD) == []
    complete(api, STUDENT, "report_back", {"returned_date": "2026-12-09"})
    final = instance(api, started, STUDENT)
    assert final["state"] == "completed" and "end_back" in final["completed_elements"]
    assert "dept_approve" not in final["completed_elements"]
    assert final["outcome"] == {"value": "approve", "label": "同意"}


def test_long_leave_also_needs_the_department_head(api, demo):
    """Five days: after the counsellor, h2001 (head of 信息工程学院) approves, then the student reports back."""
    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LONG)
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve"})
    assert open_tasks(api, "h2002") == []
    task = complete(api, HEAD, "dept_approve", {"dept_decision": "approve"})
    assert task["name"] == "二级学院审批" and task["data"]["days"] == 5
    complete(api, STUDENT, "report_back", {"returned_date": "2026-12-11", "back_remark": "已按时返校"})
    final = instance(api, started, STUDENT)
    assert final["state"] == "completed" and "dept_approve" in final["completed_elements"]
    assert final["outcome"]["label"] == "同意"


def test_the_department_can_refuse_what_the_counsellor_approved(api, demo):
    """A long leave the head refuses ends 不同意 at 学院未批准, with no 销假 step for the student."""
    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LONG)
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve"})
    complete(api, HEAD, "dept_approve", {"dept_decision": "reject", "dept_opinion": "临近期末考试，请缩短假期"})
    final = instance(api, started, STUDENT)
    assert final["state"] == "completed" and "end_dept_rejected" in final["completed_elements"]
    assert final["outcome"] == {"value": "reject", "label": "不同意"}
    assert open_tasks(api, STUDENT) == []


def test_counsellor_rejects_with_a_reason_and_the_leave_ends(api, demo):
    """不同意 needs an opinion (422 on `opinion` without one); with it the leave ends at 未批准."""
    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LONG)
    refused = submit(api, COUNSELLOR, "counsellor_approve", {"decision": "reject"})
    assert refused.status_code == 422 and "opinion" in refused.get_json()["errors"]
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "reject", "opinion": "事由不充分"})
    final = instance(api, started, STUDENT)
    assert final["state"] == "completed" and "end_rejected" in final["completed_elements"]
    assert open_tasks(api, HEAD) == [] and open_tasks(api, STUDENT) == []


def test_counsellor_returns_it_and_the_student_resubmits(api, demo):
    """退回: the student gets the form again with the earlier answers and the reason, resubmits, and the
    counsellor approves."""
    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LEAVE)
    task = only_task(api, COUNSELLOR, "counsellor_approve")
    assert task["can_return"]
    returned = api.post(f"tasks/{task['id']}/return", {"reason": "请上传医院证明", "version": task["version"]})
    assert returned.status_code == 200, returned.get_json()
    again = only_task(api, STUDENT, "fill_form")
    assert again["data"]["reason"] == LEAVE["reason"] and again["data"]["return_reason"] == "请上传医院证明"
    complete(api, STUDENT, "fill_form", LEAVE)
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve"})
    assert instance(api, started, STUDENT)["current_elements"] == ["report_back"]


# -- what the forms accept ---------------------------------------------------------------------------

def test_leaving_campus_needs_a_destination_and_a_mobile_number(api, demo):
    """离校 without 去向 → 422 on `destination`; a phone that is not a mobile number → 422 on `phone`; the
    task stays open; staying on campus needs no destination."""
    started = start_leave(api)
    no_destination = submit(api, STUDENT, "fill_form", {**LEAVE, "destination": ""})
    assert no_destination.status_code == 422 and "destination" in no_destination.get_json()["errors"]
    bad_phone = submit(api, STUDENT, "fill_form", {**LEAVE, "phone": "12345"})
    assert bad_phone.status_code == 422 and "phone" in bad_phone.get_json()["errors"]
    assert instance(api, started, STUDENT)["current_elements"] == ["fill_form"]
    on_campus = {k: v for k, v in LEAVE.items() if k != "destination"} | {"leave_campus": False}
    assert submit(api, STUDENT, "fill_form", on_campus).status_code == 200


def test_the_days_must_fit_the_dates(api, demo):
    """Five days between 7 and 8 December is refused on `days` with the rule's message."""
    start_leave(api)
    response = submit(api, STUDENT, "fill_form", {**LEAVE, "days": 5})
    assert response.status_code == 422
    assert response.get_json()["errors"]["days"] == ["请假天数不能超过起止日期所跨的天数（2 天）"]


def test_reporting_back_before_the_leave_began_is_refused(api, demo):
    """销假 with a return date before the leave's start date → 422 naming the start date; a later one passes."""
    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LEAVE)
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve"})
    early = submit(api, STUDENT, "report_back", {"returned_date": "2026-12-01"})
    assert early.status_code == 422
    assert early.get_json()["errors"]["returned_date"] == ["实际返校日期不能早于请假开始日期（2026-12-07）"]
    assert submit(api, STUDENT, "report_back", {"returned_date": "2026-12-08"}).status_code == 200
    assert instance(api, started, STUDENT)["state"] == "completed"


def test_the_counsellors_reminder_is_due_after_twelve_hours(api, demo):
    """Without `reminder_after` the reminder on the counsellor's approval is due about 12 hours later."""
    from hall.extensions import db
    from hall.processes.models import Timer

    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LEAVE)
    due = db.session.scalars(sa.select(Timer.due_at).where(Timer.instance_id == started)).all()
    db.session.rollback()
    assert len(due) == 1
    assert utcnow() + timedelta(hours=11) < due[0] < utcnow() + timedelta(hours=13)


def test_a_malformed_reminder_falls_back_to_the_default(api, demo):
    """Start data `reminder_after` that is no ISO 8601 duration cannot break the timer: the default 12 hours
    is taken and the leave goes on to the counsellor."""
    from hall.extensions import db
    from hall.processes.models import Timer

    api.login(STUDENT)
    started = api.post("process-instances", {"definition": "student_leave", "data": {"reminder_after": "明天"}})
    assert started.status_code == 201, started.get_json()
    complete(api, STUDENT, "fill_form", LEAVE)
    assert instance(api, started.get_json()["id"], STUDENT)["state"] == "running"
    due = db.session.scalars(sa.select(Timer.due_at).where(Timer.instance_id == started.get_json()["id"])).all()
    db.session.rollback()
    assert len(due) == 1 and utcnow() + timedelta(hours=11) < due[0] < utcnow() + timedelta(hours=13)


def test_the_student_page_offers_it_and_starts_it(api, demo):
    """The 办事 page shows a student 学生请假; its start button opens the student's leave form."""
    api.login(STUDENT)
    html = api.client.get("/services").get_data(as_text=True)
    assert "学生请假" in html and "学生服务" in html
    started = api.client.post("/services/student_leave/start", data={"_csrf": api.csrf})
    assert started.status_code in (302, 303), started.status_code
    page = api.client.get(started.headers["Location"]).get_data(as_text=True)
    assert "填写请假单" in page and "请假期间联系电话" in page


def test_a_student_keeps_their_own_steps(api, demo):
    """转办 and 加签 are staff's tools: a student's 转办, 加签 and delegate list answer 403 with the reason and
    change nothing, and the student's task page offers neither; the counsellor's page offers both."""
    started = start_leave(api)
    task = only_task(api, STUDENT, "fill_form")
    for path, body in (("transfer", {"username": COUNSELLOR}), ("add-signer", {"username": COUNSELLOR})):
        response = api.post(f"tasks/{task['id']}/{path}", body)
        assert response.status_code == 403, (path, response.get_json())
        assert response.get_json()["message"] == "学生的待办须本人办理，不能转办或加签"
    assert api.get(f"tasks/{task['id']}/delegates").status_code == 403
    assert only_task(api, STUDENT, "fill_form")["version"] == task["version"]
    html = api.client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert 'value="transfer"' not in html and 'value="add_signer"' not in html
    complete(api, STUDENT, "fill_form", LEAVE)
    approval = only_task(api, COUNSELLOR, "counsellor_approve")
    html = api.client.get(f"/tasks/{approval['id']}").get_data(as_text=True)
    assert 'value="transfer"' in html and 'value="add_signer"' in html
    assert "counsellor_approve" in instance(api, started, STUDENT)["current_elements"]


def test_an_overdue_report_back_goes_to_the_counsellor(api, demo):
    """销假 past its due time escalates to the student's counsellor (the step's own escalateTo), not to the
    department head (the hall's default)."""
    from hall.extensions import db
    from hall.notifications.services import check_deadlines
    from hall.tasks.models import HumanTask
    from tests.notifications.helpers import messages

    complete_leave_until_report_back(api)
    back = only_task(api, STUDENT, "report_back")
    db.session.execute(sa.update(HumanTask).where(HumanTask.id == back["id"])
                       .values(due_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    check_deadlines()
    [escalation] = messages(COUNSELLOR, "escalation")
    assert escalation.task_id == back["id"] and "林小雨" in escalation.body and "销假" in escalation.title
    assert messages(HEAD, "escalation") == []


def complete_leave_until_report_back(api) -> int:
    started = start_leave(api)
    complete(api, STUDENT, "fill_form", LEAVE)
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve"})
    return started


# -- nobody writes another step's answers ------------------------------------------------------------

def test_a_submit_cannot_carry_another_steps_answer(api, demo):
    """The student's form sent with the department's decision in it is refused (422 naming the field) and
    changes nothing; a counsellor's refusal then still ends 不同意."""
    started = start_leave(api)
    faked = submit(api, STUDENT, "fill_form", {**LONG, "dept_decision": "approve"})
    assert faked.status_code == 422
    assert faked.get_json()["errors"] == {"dept_decision": ["表单中没有此字段"]}
    assert instance(api, started, STUDENT)["current_elements"] == ["fill_form"]
    complete(api, STUDENT, "fill_form", LONG)
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "reject", "opinion": "事由不充分"})
    assert instance(api, started, STUDENT)["outcome"] == {"value": "reject", "label": "不同意"}


def test_a_start_cannot_preset_a_steps_answer_or_the_starter(api, demo):
    """Start data naming a field a step's form fills (the department's decision, the student's own days) is
    refused (422 naming them) and starts nothing; `starter` in the data is the signed-in person anyway."""
    api.login(STUDENT)
    refused = api.post("process-instances", {"definition": "student_leave",
                                              "data": {"dept_decision": "approve", "days": 1}})
    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"dept_decision", "days"}
    assert api.get(f"process-instances?starter={STUDENT}").get_json()["total"] == 0
    started = api.post("process-instances", {"definition": "student_leave",
                                              "data": {"starter": "c5001", "reminder_after": "PT2H"}})
    assert started.status_code == 201, started.get_json()
    task = only_task(api, STUDENT, "fill_form")
    assert task["data"]["starter"] == STUDENT and task["data"]["reminder_after"] == "PT2H"


def test_report_back_is_due_the_evening_the_leave_ends_or_half_a_day_after_a_late_approval(api, demo):
    """销假 is due at 20:00 Beijing time on the last day of leave; for a leave approved after it ended (sick
    leave applied for afterwards) it is due 12 hours after it arrives instead of being overdue at once."""
    ahead = date.today() + timedelta(days=10)
    start_leave(api)
    complete(api, STUDENT, "fill_form", {**LEAVE, "start_date": str(ahead - timedelta(days=1)), "end_date": str(ahead)})
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve"})
    due = datetime.fromisoformat(only_task(api, STUDENT, "report_back")["due_at"])
    assert due == datetime.fromisoformat(f"{ahead}T20:00:00+08:00"), due

    complete(api, STUDENT, "report_back", {"returned_date": str(ahead)})
    past = date.today() - timedelta(days=3)
    start_leave(api)
    complete(api, STUDENT, "fill_form", {**LEAVE, "start_date": str(past - timedelta(days=1)), "end_date": str(past)})
    complete(api, COUNSELLOR, "counsellor_approve", {"decision": "approve"})
    due = datetime.fromisoformat(only_task(api, STUDENT, "report_back")["due_at"])
    assert utcnow() + timedelta(hours=11) < due < utcnow() + timedelta(hours=13), due
