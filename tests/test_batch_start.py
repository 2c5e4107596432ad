"""Batch starts (processes.start_instances): the same rows as one start each, in a constant number of statements."""

from __future__ import annotations

import sqlalchemy as sa

from hall.accounts.models import User
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.processes import services
from hall.processes.models import InstanceEvent, ProcessInstance, Timer
from hall.tasks.models import HumanTask, TaskCandidate
from tests.conftest import bpmn_sequence
from tests.test_sql_count import counting


def _setup(lane: str = "dept_head"):
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()
    services.deploy({"batch1.bpmn": bpmn_sequence("batch1", 2, lane=lane)}, {})
    starter = db.session.scalar(sa.select(User).where(User.username == "t1001"))
    unit = db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == "xxgc-rj"))
    return starter, unit


def _rows(instance_id: int) -> tuple:
    """What an instance's start wrote, without ids and times."""
    instance = db.session.get(ProcessInstance, instance_id)
    tasks = db.session.scalars(sa.select(HumanTask).where(HumanTask.instance_id == instance_id)).all()
    candidates = db.session.execute(sa.select(TaskCandidate.user_id, TaskCandidate.role_code, TaskCandidate.org_unit_id)
                                    .where(TaskCandidate.task_id.in_([t.id for t in tasks]))).all()
    events = db.session.execute(sa.select(InstanceEvent.kind, InstanceEvent.element_id, InstanceEvent.actor_id)
                                .where(InstanceEvent.instance_id == instance_id).order_by(InstanceEvent.id)).all()
    return ((instance.state, instance.title, instance.starter_id, instance.org_unit_id, instance.subject_id,
             instance.current_elements, instance.version),
            [(t.element_id, t.lane, t.assignee_id, t.state, t.kind) for t in tasks], candidates, events)


def test_a_batch_start_writes_what_single_starts_write(ctx):
    """Each instance of a batch has the same row, tasks, candidates and history as one started alone."""
    starter, unit = _setup()
    single = services.start_instance("batch1", starter, {"n": 1}, org_unit_id=unit, subject_id=7, title="甲",
                                     check_startable=False)
    batch = services.start_instances("batch1", starter, [
        dict(data={"n": 1}, org_unit_id=unit, subject_id=7, title="甲"),
        dict(data={"n": 2}, org_unit_id=unit, subject_id=8, title="乙"),
    ])
    db.session.commit()
    assert _rows(batch[0]) == _rows(single.id)
    assert _rows(batch[1])[1] == _rows(single.id)[1]
    data = db.session.scalar(sa.select(InstanceEvent.data).where(InstanceEvent.instance_id == batch[1],
                                                                 InstanceEvent.kind == "started"))
    assert data == {"n": 2, "starter": "t1001", "starter_name": starter.name}


def test_a_batch_start_sends_the_same_statements_for_2_or_20_instances(app, ctx):
    """Starting 20 instances at once reads as much as starting 2, and on PostgreSQL sends as many statements
    (one INSERT … RETURNING per table; SQLite's driver gets those rows one by one within the same call)."""
    starter, unit = _setup()
    counts = []
    for size in (2, 20):
        items = [dict(data={"n": n}, org_unit_id=unit) for n in range(size)]
        _ = starter.username, starter.name  # loaded again after the last commit, outside the count
        with counting(app) as statements:
            ids = services.start_instances("batch1", starter, items)
        db.session.commit()
        assert len(ids) == size
        counts.append(statements)
    reads = [[s for s in statements if s.lstrip().upper().startswith("SELECT")] for statements in counts]
    assert len(reads[0]) == len(reads[1]), reads
    if db.engine.dialect.name == "postgresql":
        assert len(counts[0]) == len(counts[1]), counts


def test_a_batch_start_records_timers_and_ended_instances(ctx):
    """A started instance waiting on a timer gets its timer row; one that ends at once is completed with its event."""
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()
    timer = '''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://hall.test">
  <bpmn:process id="wait1" name="等待" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>
      <bpmn:timeDuration>"P1D"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>'''.encode()
    services.deploy({"wait1.bpmn": timer}, {})
    services.deploy({"none1.bpmn": bpmn_sequence("none1", 0)}, {})
    starter = db.session.scalar(sa.select(User).where(User.username == "t1001"))
    waiting = services.start_instances("wait1", starter, [dict(data={}), dict(data={})])
    ended = services.start_instances("none1", starter, [dict(data={})])
    db.session.commit()
    assert sorted(db.session.scalars(sa.select(Timer.instance_id))) == sorted(waiting)
    assert db.session.get(ProcessInstance, ended[0]).state == "completed"
    kinds = db.session.scalars(sa.select(InstanceEvent.kind).where(InstanceEvent.instance_id == ended[0])
                               .order_by(InstanceEvent.id)).all()
    assert kinds == ["started", "completed"]
