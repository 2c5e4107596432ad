"""The inbox's claimable views read only the candidate rows' `claimable` flag (a trigger on human_tasks keeps
it). Here every way a task changes hands is walked through, and after each step the flag is checked row
by row against the task it belongs to, and every person's views (totals, pages, both sorts) against a list
worked out the slow way from the tasks and the candidate rows, without the flag."""

from __future__ import annotations

import sqlalchemy as sa

from hall.accounts.models import User
from hall.extensions import db
from hall.tasks import services as task_services
from hall.tasks.models import HumanTask, TaskCandidate
from tests.conftest import Api, bpmn_sequence

PEOPLE = ("t1001", "t1002", "h2001", "h2002", "r3001")


def _flags_agree_with_tasks() -> None:
    rows = db.session.execute(
        sa.select(TaskCandidate.id, TaskCandidate.claimable, HumanTask.state, HumanTask.assignee_id)
        .join(HumanTask, HumanTask.id == TaskCandidate.task_id)).all()
    wrong = [row for row in rows if row.claimable != (row.state == "ready" and row.assignee_id is None)]
    assert not wrong, wrong


def _expected(user: User, view: str, sort: str) -> list[int]:
    """A view's task ids in list order, from the tasks and candidate rows, ignoring the flag."""
    tasks = db.session.scalars(sa.select(HumanTask).where(HumanTask.state == "ready")).all()
    mine = [t for t in tasks if t.assignee_id == user.id]
    offered = [t for t in tasks if t.assignee_id is None and task_services.is_candidate(t, user)]
    chosen = {"mine": mine, "candidate": offered, "open": mine + offered}[view]
    if sort == "due":
        return [t.id for t in sorted(chosen, key=lambda t: (t.due_at is None, t.due_at, -t.id))]
    return sorted((t.id for t in chosen), reverse=True)


def _check(app, clients: dict[str, Api]) -> None:
    with app.app_context():
        _flags_agree_with_tasks()
        for username, client in clients.items():
            user = db.session.scalar(sa.select(User).where(User.username == username))
            for view in ("open", "mine", "candidate"):
                for sort in ("created", "due"):
                    expected = _expected(user, view, sort)
                    listed = []
                    for page in (1, 2, 3):
                        answer = client.get("tasks", query_string={"view": view, "sort": sort, "page": page,
                                                                   "page_size": 2}).get_json()
                        assert answer["total"] == len(expected), (username, view, answer)
                        listed += [item["id"] for item in answer["items"]]
                    assert listed == expected[:6], (username, view, sort, listed, expected)
        db.session.remove()


def test_claimable_flag_and_claimable_views_follow_every_change_of_hands(app, demo, deploy_bpmn):
    deploy_bpmn(bpmn_sequence("headed", 2, lane="dept_head"), name="headed.bpmn")
    deploy_bpmn(bpmn_sequence("solo", 1), name="solo.bpmn")
    clients = {username: Api(app).login(username) for username in (*PEOPLE, "admin")}
    teacher, head, admin = clients["t1001"], clients["h2001"], clients["admin"]
    instances = [teacher.post("process-instances", {"definition": "headed", "data": {}}).get_json()["id"]
                 for _ in range(4)]
    teacher.post("process-instances", {"definition": "solo", "data": {}})
    clients.pop("admin")
    _check(app, clients)  # four tasks offered to the head of xxgc, one of the teacher's own

    offered = sorted(item["id"] for item in head.get("tasks?view=candidate").get_json()["items"])
    assert len(offered) == 4
    assert head.post(f"tasks/{offered[0]}/claim").status_code == 200
    _check(app, clients)
    assert head.post(f"tasks/{offered[0]}/release").status_code == 200
    _check(app, clients)

    # Claimed and completed: the next step is offered again, a new claimable row.
    assert head.post(f"tasks/{offered[1]}/claim").status_code == 200
    version = head.get(f"tasks/{offered[1]}").get_json()["version"]
    assert head.post(f"tasks/{offered[1]}/complete", {"data": {}, "version": version}).status_code == 200
    _check(app, clients)

    # Completed straight from the pool, without claiming first.
    version = head.get(f"tasks/{offered[2]}").get_json()["version"]
    assert head.post(f"tasks/{offered[2]}/complete", {"data": {}, "version": version}).status_code == 200
    _check(app, clients)

    # 转办 from the pool to a teacher; 加签 on another task.
    assert head.post(f"tasks/{offered[3]}/transfer", {"username": "t1002"}).status_code == 200
    _check(app, clients)
    pool = sorted(item["id"] for item in head.get("tasks?view=candidate").get_json()["items"])
    assert head.post(f"tasks/{pool[0]}/add-signer", {"username": "r3001"}).status_code == 201
    _check(app, clients)

    # An administrator ends an instance whose task is still in the pool: the task is cancelled.
    with app.app_context():
        waiting = db.session.scalar(sa.select(HumanTask.instance_id).where(
            HumanTask.assignee_id.is_(None), HumanTask.state == "ready"))
        db.session.remove()
    assert waiting in instances
    assert admin.post(f"process-instances/{waiting}/terminate", {"reason": "测试"}).status_code == 200
    _check(app, clients)
