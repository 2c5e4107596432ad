"""Many people pressing "submit" on one task at the same moment: one wins, the rest get 409, nothing breaks."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from hall.extensions import db
from hall.processes.models import InstanceEvent, ProcessInstance
from hall.tasks.models import HumanTask
from tests.conftest import bpmn_sequence

CLIENTS = 50


def _start_instance(app, api) -> tuple[dict, dict]:
    """Deploy a three-step flow, start it as t1001 and return the instance and its first task.

    The setup runs in an app context that is closed again, so every request below gets its own session
    and connection, as in a server."""
    from hall.org.demo import load_demo_organisation
    from hall.processes import services

    with app.app_context():
        load_demo_organisation()
        services.deploy({"race.bpmn": bpmn_sequence("race", 3)}, {})
        db.session.remove()
    api.login("t1001")
    started = api.post("process-instances", {"definition": "race", "data": {}})
    assert started.status_code == 201, started.get_json()
    task = api.get("tasks?view=mine").get_json()["items"][0]
    return started.get_json(), task


def _submit_together(app, api, task: dict) -> list[int]:
    """POST the same completion from CLIENTS threads released at once; returns every status code."""
    session_cookie = api.client.get_cookie("session")
    barrier = threading.Barrier(CLIENTS)
    statuses: list[int] = []
    lock = threading.Lock()

    def submit():
        client = app.test_client()
        client.set_cookie("session", session_cookie.value)
        barrier.wait(timeout=60)
        response = client.post(f"/api/v1/tasks/{task['id']}/complete", headers={"X-CSRF-Token": api.csrf},
                               json={"data": {"ok": True}, "version": task["version"]})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=submit) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a submit did not finish"
    return statuses


def test_concurrent_submits_of_one_task_complete_it_once(app, api):
    """50 simultaneous submits of one task: exactly one 200 and 49 conflicts (409), never a 500."""
    _, task = _start_instance(app, api)
    statuses = _submit_together(app, api, task)
    assert sorted(statuses) == [200] + [409] * (CLIENTS - 1), statuses


def test_concurrent_submits_leave_the_instance_intact(app, api):
    """After the race the instance moved exactly one step: version +1, one completion event, one next task."""
    instance, task = _start_instance(app, api)
    with app.app_context():
        version_before = db.session.scalar(sa.select(ProcessInstance.version)
                                           .where(ProcessInstance.id == instance["id"]))
    _submit_together(app, api, task)
    with app.app_context():
        version_after = db.session.scalar(sa.select(ProcessInstance.version)
                                          .where(ProcessInstance.id == instance["id"]))
        completions = db.session.scalar(sa.select(sa.func.count()).select_from(InstanceEvent).where(
            InstanceEvent.instance_id == instance["id"], InstanceEvent.kind == "task_completed"))
        tasks = db.session.execute(sa.select(HumanTask.element_id, HumanTask.state)
                                   .where(HumanTask.instance_id == instance["id"]).order_by(HumanTask.id)).all()
        db.session.remove()
    assert version_after == version_before + 1
    assert completions == 1
    assert [tuple(t) for t in tasks] == [("t1", "completed"), ("t2", "ready")]
