"""Process instances through the API: listing and filters, detail, withdraw, urge, suspend/resume, terminate."""

from __future__ import annotations

from datetime import timedelta

from hall.db_types import utcnow
from tests import test_tasks_api as _tasks
from tests.test_tasks_api import complete, first_task, start, task_of

# The signed-in people and the two flows of the task tests, shared as fixtures.
people, solo, headed = _tasks.people, _tasks.solo, _tasks.headed


def listed(client, **params) -> dict:
    response = client.get("process-instances", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def inbox_total(client) -> int:
    return client.get("tasks?view=open").get_json()["total"]


def test_instance_list_filters_and_totals(people, solo, headed):
    """definition, state, starter, since/until and paging each narrow the admin's list, with totals."""
    teacher, other = people("t1001"), people("t1002")
    done = start(teacher, solo)
    start(teacher, solo)
    start(other, headed)
    for _ in range(2):
        (task,) = [t for t in teacher.get("tasks?view=mine").get_json()["items"] if t["instance_id"] == done["id"]]
        assert complete(teacher, task_of(teacher, task["id"])).status_code == 200
    admin = people("admin")
    assert listed(admin)["total"] == 3
    assert listed(admin, definition="solo")["total"] == 2
    completed = listed(admin, state="completed")
    assert completed["total"] == 1 and [i["id"] for i in completed["items"]] == [done["id"]]
    assert listed(admin, starter="t1002")["total"] == 1
    hour = timedelta(hours=1)
    assert listed(admin, since=(utcnow() - hour).isoformat())["total"] == 3
    assert listed(admin, since=(utcnow() + hour).isoformat())["total"] == 0
    assert listed(admin, until=(utcnow() - hour).isoformat())["total"] == 0
    page = listed(admin, page=2, page_size=2)
    assert page["total"] == 3 and len(page["items"]) == 1 and page["page"] == 2


def test_instance_list_of_a_teacher_holds_only_their_own(people, solo):
    """A non-administrator lists only instances they started or took part in."""
    start(people("t1001"), solo)
    mine = start(people("t1002"), solo)
    result = listed(people("t1002"))
    assert result["total"] == 1 and result["items"][0]["id"] == mine["id"]


def test_unknown_instance_is_404(people, solo):
    """Reading an instance id that does not exist is 404 with the uniform body."""
    response = people("admin").get("process-instances/999999")
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_instance_detail_has_history_with_actors_and_data(people, headed):
    """After the head's submit the detail shows who did what with which data, and where it stands."""
    instance = start(people("t1001"), headed, {"reason": "年假"})
    head = people("h2001")
    task = first_task(head, "candidate")
    head.post(f"tasks/{task['id']}/claim")
    assert complete(head, task_of(head, task["id"]), {"opinion": "同意"}).status_code == 200
    detail = people("t1001").get(f"process-instances/{instance['id']}").get_json()
    assert detail["current_elements"] == ["t2"] and detail["state"] == "running"
    by_kind = {e["kind"]: e for e in detail["history"]}
    assert by_kind["started"]["actor"] == "t1001" and by_kind["started"]["data"]["reason"] == "年假"
    assert by_kind["claimed"]["actor"] == "h2001"
    finished = by_kind["task_completed"]
    assert (finished["actor"], finished["actor_name"], finished["data"]) == ("h2001", "李华", {"opinion": "同意"})
    assert [(t["element_id"], t["state"]) for t in detail["tasks"]] == [("t1", "completed"), ("t2", "ready")]


def test_withdraw_before_anyone_acted_terminates(people, headed):
    """The starter withdraws an untouched application: terminated, and the head's task is cancelled."""
    teacher = people("t1001")
    instance = start(teacher, headed)
    response = teacher.post(f"process-instances/{instance['id']}/withdraw")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["state"] == "terminated"
    assert [t["state"] for t in response.get_json()["tasks"]] == ["cancelled"]
    assert listed(people("h2001"), state="running")["total"] == 0
    assert inbox_total(people("h2001")) == 0


def test_withdraw_after_head_acted_is_conflict(people, headed):
    """Once the head has claimed the task, withdrawing is 409 and the instance keeps running."""
    teacher, head = people("t1001"), people("h2001")
    instance = start(teacher, headed)
    head.post(f"tasks/{first_task(head, 'candidate')['id']}/claim")
    response = teacher.post(f"process-instances/{instance['id']}/withdraw")
    assert response.status_code == 409, response.get_json()
    assert teacher.get(f"process-instances/{instance['id']}").get_json()["state"] == "running"


def test_withdraw_while_an_administrator_holds_it_is_conflict(people, headed):
    """An instance the administrator suspended cannot be withdrawn by its starter (409 with the reason); it
    stays suspended."""
    teacher = people("t1001")
    instance = start(teacher, headed)
    assert people("admin").post(f"process-instances/{instance['id']}/suspend").status_code == 200
    response = teacher.post(f"process-instances/{instance['id']}/withdraw")
    assert response.status_code == 409 and response.get_json()["message"] == "此申请已被管理员暂停，暂不能撤销"
    assert teacher.get(f"process-instances/{instance['id']}").get_json()["state"] == "suspended"


def test_urge_once_a_day_by_the_starter(people, headed):
    """催办: the first is 201, a second the same day 429."""
    teacher = people("t1001")
    instance = start(teacher, headed)
    first = teacher.post(f"process-instances/{instance['id']}/urge")
    assert first.status_code == 201 and first.get_json()["kind"] == "urged"
    again = teacher.post(f"process-instances/{instance['id']}/urge")
    assert again.status_code == 429 and again.get_json()["code"] == 429


def test_urge_by_someone_else_is_404(people, headed):
    """Only the starter may urge; to anyone else the instance does not exist, and no event is written."""
    instance = start(people("t1001"), headed)
    assert people("h2001").post(f"process-instances/{instance['id']}/urge").status_code == 404
    history = people("t1001").get(f"process-instances/{instance['id']}").get_json()["history"]
    assert "urged" not in [e["kind"] for e in history]


def test_suspended_instance_tasks_cannot_be_completed_until_resumed(people, solo):
    """Suspend: submits are 409; resume: the same submit succeeds."""
    teacher, admin = people("t1001"), people("admin")
    instance = start(teacher, solo)
    suspended = admin.post(f"process-instances/{instance['id']}/suspend")
    assert suspended.status_code == 200 and suspended.get_json()["state"] == "suspended"
    task = first_task(teacher)
    assert complete(teacher, task).status_code == 409
    assert task_of(teacher, task["id"])["state"] == "ready"
    resumed = admin.post(f"process-instances/{instance['id']}/resume")
    assert resumed.status_code == 200 and resumed.get_json()["state"] == "running"
    assert complete(teacher, task_of(teacher, task["id"])).status_code == 200


def test_suspend_by_non_admin_is_forbidden(people, solo):
    """Only an administrator may suspend; the starter gets 403 and the instance keeps running."""
    teacher = people("t1001")
    instance = start(teacher, solo)
    assert teacher.post(f"process-instances/{instance['id']}/suspend").status_code == 403
    assert teacher.get(f"process-instances/{instance['id']}").get_json()["state"] == "running"


def test_terminate_cancels_open_tasks(people, solo):
    """Terminate by the administrator: the instance ends and its open task is cancelled, out of the inbox."""
    teacher = people("t1001")
    instance = start(teacher, solo)
    task = first_task(teacher)
    response = people("admin").post(f"process-instances/{instance['id']}/terminate", {"reason": "重复申请"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["state"] == "terminated" and body["ended_at"]
    assert task_of(teacher, task["id"])["state"] == "cancelled"
    assert inbox_total(teacher) == 0
    assert complete(teacher, task).status_code == 409


def test_start_answers_with_what_the_detail_reads_back(people, solo, headed, deploy_bpmn):
    """A start answers from the rows it wrote, without reading them back: the answer is the same document
    GET /process-instances/{id} gives, history and tasks included, for a starter's own step, a step offered
    to the department's heads, and a process that ends at once (its completed event)."""
    from tests.conftest import bpmn_sequence

    deploy_bpmn(bpmn_sequence("nothing", 0))
    teacher = people("t1001")
    for key in (solo, headed, "nothing"):
        started = start(teacher, key, {"note": "请假两天"})
        detail = teacher.get(f"process-instances/{started['id']}").get_json()
        assert started == detail
        kinds = [e["kind"] for e in started["history"]]
        assert kinds[0] == "started" and started["history"][0]["data"]["note"] == "请假两天"
        if key == "nothing":
            assert kinds == ["started", "completed"] and started["tasks"] == [] and started["state"] == "completed"
        else:
            assert kinds == ["started", "task_created"] and len(started["tasks"]) == 1
            assert started["tasks"][0]["assignee"] == ("t1001" if key == solo else None)
