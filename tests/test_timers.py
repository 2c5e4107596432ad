"""Timers: a due time becomes a Timer row, and firing the due ones moves the instance on (or not)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hall.db_types import utcnow
from hall.extensions import db

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://hall.test">"""


def timer_between_tasks(process_id: str = "timed", duration: str = "PT1S") -> bytes:
    """start -> t1 -> intermediate timer (unquoted duration) -> t2 -> end."""
    return f'''{HEADER}
  <bpmn:process id="{process_id}" name="定时流程" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="t1" name="第一步"/>
    <bpmn:intermediateCatchEvent id="wait" name="等待">
      <bpmn:timerEventDefinition id="wait_def">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{duration}</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:userTask id="t2" name="第二步"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="wait"/>
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="t2"/>
    <bpmn:sequenceFlow id="f4" sourceRef="t2" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>'''.encode()


def boundary_timer_on_task(process_id: str = "escalate", duration: str = "PT1S") -> bytes:
    """start -> t1 with an interrupting timer boundary event -> escalated task; t1 done -> end."""
    return f'''{HEADER}
  <bpmn:process id="{process_id}" name="超时升级" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="t1" name="办理"/>
    <bpmn:boundaryEvent id="late" name="超时" attachedToRef="t1" cancelActivity="true">
      <bpmn:timerEventDefinition id="late_def">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{duration}</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="escalated" name="超时处理"/>
    <bpmn:endEvent id="end"/>
    <bpmn:endEvent id="end_late"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="end"/>
    <bpmn:sequenceFlow id="f3" sourceRef="late" targetRef="escalated"/>
    <bpmn:sequenceFlow id="f4" sourceRef="escalated" targetRef="end_late"/>
  </bpmn:process>
</bpmn:definitions>'''.encode()


def poll_timers_until(predicate, deadline_seconds: float = 10.0):
    """Fire due timers repeatedly until *predicate()* holds; fail after the deadline."""
    from hall.processes.services import fire_due_timers

    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        fire_due_timers()
        db.session.expire_all()
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"condition not reached within {deadline_seconds} s")


def _start(key: str):
    from hall.accounts.models import User
    from hall.processes import services

    starter = db.session.scalar(sa.select(User).where(User.username == "admin"))
    return services.start_instance(key, starter, {}), starter


def _open_tasks(instance_id: int):
    from hall.tasks.models import HumanTask

    return db.session.scalars(
        sa.select(HumanTask)
        .where(HumanTask.instance_id == instance_id, HumanTask.state == "ready")
        .order_by(HumanTask.id)
    ).all()


def _timers(instance_id: int):
    from hall.processes.models import Timer

    return db.session.scalars(sa.select(Timer).where(Timer.instance_id == instance_id)).all()


def _complete_first(instance_id: int, user):
    from hall.tasks import services as tasks

    (task,) = _open_tasks(instance_id)
    tasks.complete_task(task.id, user, {}, expected_version=task.version)


def test_intermediate_timer_gets_a_due_row_after_the_first_task(demo, deploy_bpmn):
    """Completing the task before an unquoted PT1S timer writes a Timer row due about one second later."""
    deploy_bpmn(timer_between_tasks())
    instance, admin = _start("timed")
    before = utcnow()
    _complete_first(instance.id, admin)
    (timer,) = _timers(instance.id)
    assert timer.element_id == "wait" and timer.fired_at is None
    assert before + timedelta(milliseconds=500) <= timer.due_at <= utcnow() + timedelta(seconds=2)
    assert _open_tasks(instance.id) == []


def test_due_timer_moves_instance_to_next_task(demo, deploy_bpmn):
    """Polling fire_due_timers advances the instance past the timer to t2 and records timer_fired."""
    from hall.processes.models import InstanceEvent, ProcessInstance

    deploy_bpmn(timer_between_tasks())
    instance, admin = _start("timed")
    _complete_first(instance.id, admin)
    poll_timers_until(lambda: [t.element_id for t in _open_tasks(instance.id)] == ["t2"])
    instance = db.session.get(ProcessInstance, instance.id)
    assert instance.state == "running" and instance.current_elements == ["t2"]
    kinds = db.session.scalars(sa.select(InstanceEvent.kind).where(InstanceEvent.instance_id == instance.id)).all()
    assert "timer_fired" in kinds
    assert all(t.fired_at is not None for t in _timers(instance.id))


def test_timer_not_yet_due_is_left_alone(demo, deploy_bpmn):
    """fire_due_timers does nothing to a timer whose due time has not come."""
    from hall.processes.services import fire_due_timers

    deploy_bpmn(timer_between_tasks(duration="PT1H"))
    instance, admin = _start("timed")
    _complete_first(instance.id, admin)
    assert fire_due_timers() == 0
    db.session.expire_all()
    assert _open_tasks(instance.id) == [] and _timers(instance.id)[0].fired_at is None


def test_timer_of_terminated_instance_never_fires_into_it(demo, deploy_bpmn):
    """After termination the instance's timer is closed and firing leaves the instance terminated."""
    from hall.processes import services
    from hall.processes.models import InstanceEvent, ProcessInstance

    deploy_bpmn(timer_between_tasks())
    instance, admin = _start("timed")
    _complete_first(instance.id, admin)
    services.terminate_instance(instance.id, admin, "测试终止")
    # Past its due time: the timer would have fired by now if it were still open.
    assert services.fire_due_timers(now=utcnow() + timedelta(minutes=5)) == 0
    db.session.expire_all()
    instance = db.session.get(ProcessInstance, instance.id)
    assert instance.state == "terminated"
    assert _open_tasks(instance.id) == []
    kinds = db.session.scalars(sa.select(InstanceEvent.kind).where(InstanceEvent.instance_id == instance.id)).all()
    assert "timer_fired" not in kinds


def test_timer_row_left_open_on_terminated_instance_is_closed_not_fired(demo, deploy_bpmn):
    """A still-open timer row of a terminated instance is closed by the job without moving the instance."""
    from hall.processes import services
    from hall.processes.models import ProcessInstance, Timer

    deploy_bpmn(timer_between_tasks())
    instance, admin = _start("timed")
    _complete_first(instance.id, admin)
    services.terminate_instance(instance.id, admin)
    # Simulate a row that escaped the termination (e.g. written by a racing request).
    db.session.execute(sa.update(Timer).where(Timer.instance_id == instance.id).values(fired_at=None))
    db.session.commit()
    assert services.fire_due_timers(now=utcnow() + timedelta(minutes=5)) == 0
    db.session.expire_all()
    assert db.session.get(ProcessInstance, instance.id).state == "terminated"
    assert all(t.fired_at is not None for t in _timers(instance.id))
    assert _open_tasks(instance.id) == []


def test_interrupting_boundary_timer_cancels_the_task(demo, deploy_bpmn):
    """An interrupting timer on a user task cancels the HumanTask and offers the escalation task."""
    from hall.tasks.models import HumanTask

    deploy_bpmn(boundary_timer_on_task())
    instance, _ = _start("escalate")
    (original,) = _open_tasks(instance.id)
    assert original.element_id == "t1"
    assert [t.element_id for t in _timers(instance.id)] == ["late"]
    poll_timers_until(lambda: [t.element_id for t in _open_tasks(instance.id)] == ["escalated"])
    assert db.session.get(HumanTask, original.id).state == "cancelled"



BOUNDARY_DUE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://hall.test">
  <bpmn:process id="boundary_due" name="限时办理" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="approve" name="审批"/>
    <bpmn:boundaryEvent id="deadline" attachedToRef="approve" cancelActivity="true">
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT6H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="nudge" attachedToRef="approve" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="end"/><bpmn:endEvent id="late"/><bpmn:endEvent id="nudged"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="end"/>
    <bpmn:sequenceFlow id="f3" sourceRef="deadline" targetRef="late"/>
    <bpmn:sequenceFlow id="f4" sourceRef="nudge" targetRef="nudged"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


def test_a_timer_boundary_event_gives_its_task_a_due_time(api, demo, deploy_bpmn):
    """With no due property, a task's due time is its interrupting timer boundary event (PT6H), not the
    earlier non-interrupting reminder (PT1H)."""
    from datetime import datetime, timedelta

    from hall.db_types import utcnow

    deploy_bpmn(BOUNDARY_DUE)
    api.login("t1001")
    assert api.post("process-instances", {"definition": "boundary_due", "data": {}}).status_code == 201
    (task,) = api.get("tasks?view=mine").get_json()["items"]
    due = datetime.fromisoformat(task["due_at"])
    assert abs(due - (utcnow() + timedelta(hours=6))) < timedelta(minutes=5)
