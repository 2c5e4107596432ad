"""Cycles of the big loop: opening (idempotent, batched, resumable), progress, and one program's whole
round of the diagnosis process driven through the API by the people in its lanes."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hall.accounts.models import User
from hall.db_types import utcnow
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.processes.models import ProcessInstance
from hall.quality import cycles
from hall.quality.models import (
    LEVELS,
    Cycle,
    CycleUnit,
    Level,
    Measurement,
    MonitoringPoint,
    QualityWarning,
    Subject,
    Target,
)
from hall.tasks.models import HumanTask

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2026-2027"


@pytest.fixture
def hall(app, ctx):
    """The demo organisation, the five levels and the diagnosis process deployed."""
    from hall.org.demo import load_demo_organisation
    from hall.processes import services as processes

    load_demo_organisation()
    for sort, (code, name) in enumerate(LEVELS.items()):
        if db.session.get(Level, code) is None:
            db.session.add(Level(code=code, name=name, sort=sort))
    db.session.commit()
    forms = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "forms").glob("diagnosis_*.json")}
    processes.deploy({"diagnosis_cycle.bpmn": (ROOT / "workflows" / "diagnosis_cycle.bpmn").read_bytes()}, forms)


def _id(model, **where) -> int:
    return db.session.scalar(sa.select(model.id).filter_by(**where))


def program(code: str, name: str, unit: str = "xxgc", owner: str = "t1001") -> Subject:
    subject = Subject(level_code="program", code=code, name=name, org_unit_id=_id(OrgUnit, code=unit),
                      responsible_user_id=_id(User, username=owner), attributes={})
    db.session.add(subject)
    db.session.commit()
    return subject


def point(code: str, name: str, direction: str, target: float, standard: float, warning: float) -> MonitoringPoint:
    row = MonitoringPoint(level_code="program", element="人才培养", code=code, name=name, unit="%",
                          direction=direction, target_value=target, standard_value=standard, warning_value=warning)
    db.session.add(row)
    db.session.commit()
    return row


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def open_cycle(api, body: dict, username: str = "q4001"):
    api.login(username)
    return api.post("cycles", body)


def task_of(api, username: str, element: str) -> dict:
    """The one open task of *username*, which must be at *element*; returns its detail."""
    api.login(username)
    items = api.get("tasks?view=open").get_json()["items"]
    assert [t["element_id"] for t in items] == [element], items
    return api.get(f"tasks/{items[0]['id']}").get_json()


def complete(api, username: str, element: str, data: dict) -> dict:
    task = task_of(api, username, element)
    response = api.post(f"tasks/{task['id']}/complete", {"data": data, "version": task["version"]})
    assert response.status_code == 200, response.get_json()
    return task


# -- opening -----------------------------------------------------------------------------------------


def test_opening_starts_one_diagnosis_process_per_subject(api, hall):
    """Opening a cycle answers 202 with an open cycle and starts one process per subject, at 目标 for its owner."""
    subjects = [program("510201", "软件技术专业"), program("510202", "计算机网络技术专业", owner="t1002"),
                program("460301", "电气自动化技术专业", unit="jdgc", owner="t1003")]
    response = open_cycle(api, {"level": "program", "period": PERIOD})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert (body["state"], body["total"], body["opened"]) == ("open", 3, 3)
    assert body["title"] == "专业层面 2026-2027 学年诊改"
    units = db.session.scalars(sa.select(CycleUnit).order_by(CycleUnit.subject_id)).all()
    assert [u.subject_id for u in units] == [s.id for s in subjects]
    owners = db.session.execute(sa.select(HumanTask.element_id, User.username)
                                .join(User, User.id == HumanTask.assignee_id).order_by(HumanTask.instance_id)).all()
    assert owners == [("target", "t1001"), ("target", "t1002"), ("target", "t1003")]


def test_opening_twice_returns_the_same_cycle_without_new_processes(api, hall):
    """A second POST for the same level and period returns the existing cycle and starts nothing."""
    program("510201", "软件技术专业")
    first = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()
    second = open_cycle(api, {"level": "program", "period": PERIOD})
    assert second.status_code == 202
    assert second.get_json()["id"] == first["id"]
    assert (count(Cycle), count(CycleUnit), count(ProcessInstance)) == (1, 1, 1)


def test_interrupted_opening_shows_progress_and_resumes_without_duplicates(api, hall, monkeypatch):
    """A job that fails after its first batch leaves a readable, partly opened cycle; opening again resumes it
    and every subject ends with exactly one process."""
    from hall.processes import services as processes

    for i in range(5):
        program(f"51020{i}", f"专业{i}")
    monkeypatch.setattr(cycles, "BATCH_SIZE", 2)
    real_start = processes.start_instances
    calls = []

    def failing_start(*args, **kwargs):
        calls.append(len(args[2]))
        if len(calls) == 2:  # the second batch
            raise RuntimeError("worker lost")
        return real_start(*args, **kwargs)

    monkeypatch.setattr(processes, "start_instances", failing_start)
    body = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()
    assert (body["state"], body["total"], body["opened"]) == ("failed", 5, 2)
    progress = api.get(f"cycles/{body['id']}/progress").get_json()
    assert (progress["state"], progress["opened"], progress["by_step"]["target"]) == ("failed", 2, 2)

    monkeypatch.setattr(processes, "start_instances", real_start)
    body = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()
    assert (body["state"], body["opened"], body["error"]) == ("open", 5, None)
    assert (count(CycleUnit), count(ProcessInstance)) == (5, 5)


def test_a_large_opening_runs_in_shards_that_start_every_subject_once(api, hall, monkeypatch):
    """Above SHARD_MIN subjects the opening is split into shard jobs by subject id; together they start each
    subject once, and the last one to finish opens the cycle."""
    for i in range(5):
        program(f"51020{i}", f"专业{i}")
    monkeypatch.setattr(cycles, "BATCH_SIZE", 2)
    monkeypatch.setattr(cycles, "SHARD_MIN", 2)
    real_units = cycles.open_units
    seen = []

    def recording_units(cycle_id, batch_size=None, shard=0, shards=1):
        seen.append((shard, shards))
        return real_units(cycle_id, batch_size, shard, shards)

    monkeypatch.setattr(cycles, "open_units", recording_units)
    body = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()
    assert seen == [(0, 2), (1, 2)]
    assert (body["state"], body["total"], body["opened"]) == ("open", 5, 5)
    assert (count(CycleUnit), count(ProcessInstance)) == (5, 5)


def test_a_failed_shard_leaves_the_cycle_failed_until_reopening_finishes_it(api, hall, monkeypatch):
    """When one shard fails the other still opens its subjects, the cycle stays failed with the count so far,
    and opening again starts only the missing subjects."""
    from hall.processes import services as processes

    subjects = [program(f"51020{i}", f"专业{i}") for i in range(5)]
    monkeypatch.setattr(cycles, "SHARD_MIN", 2)
    real_start = processes.start_instances

    def failing_even_shard(key, user, items):
        if items[0]["subject_id"] % 2 == 0:
            raise RuntimeError("worker lost")
        return real_start(key, user, items)

    monkeypatch.setattr(processes, "start_instances", failing_even_shard)
    odd = sum(1 for s in subjects if s.id % 2)
    body = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()
    assert (body["state"], body["opened"]) == ("failed", odd)
    assert "worker lost" in body["error"]

    monkeypatch.setattr(processes, "start_instances", real_start)
    body = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()
    assert (body["state"], body["opened"], body["error"]) == ("open", 5, None)
    assert (count(CycleUnit), count(ProcessInstance)) == (5, 5)


def test_a_diagnosis_process_started_alone_reads_its_draft_targets(api, hall):
    """Started outside a cycle opening (no targets in the start data), the 目标 step is pre-filled from the
    subject's draft targets of the period."""
    from hall.processes import services as processes

    subject = program("510201", "软件技术专业")
    emp = point("P-EMP", "毕业生就业率", "higher", 95, 90, 80)
    db.session.add(Target(subject_id=subject.id, period=PERIOD, text="就业率提高到 96%", point_id=emp.id,
                          target_value=96, state="draft", origin="improvement"))
    db.session.commit()
    office = db.session.scalar(sa.select(User).where(User.username == "q4001"))
    processes.start_instance("diagnosis_cycle", office, {
        "cycle_id": 0, "subject_id": subject.id, "period": PERIOD, "implement_until": "2027-08-31T23:59:59+08:00",
        "deadlines": {}}, subject_id=subject.id, check_startable=False)
    task = task_of(api, "t1001", "target")
    assert task["data"]["targets"] == [{"text": "就业率提高到 96%", "point": "P-EMP", "target_value": 96}]


def test_progress_counts_by_step_department_and_subject_with_overdue_steps(api, hall):
    """Progress counts units by step and department, lists them page by page, and flags steps past their deadline."""
    program("510201", "软件技术专业")
    program("510202", "计算机网络技术专业", owner="t1002")
    elec = program("460301", "电气自动化技术专业", unit="jdgc", owner="t1003")
    body = open_cycle(api, {"level": "program", "period": PERIOD,
                            "deadlines": {"target": "2020-01-10", "standard": "2099-01-01"}}).get_json()
    assert body["deadlines"]["target"] == "2020-01-10T23:59:59+08:00"
    api.login("t1003")
    task = api.get("tasks?view=open").get_json()["items"][0]
    assert task["due_at"].startswith("2020-01-10T15:59:59")
    api.post(f"tasks/{task['id']}/complete",
             {"data": {"targets": [{"text": "提高就业质量"}]}, "version": task["version"]})

    api.login("q4001")
    progress = api.get(f"cycles/{body['id']}/progress?page_size=2").get_json()
    assert (progress["total"], progress["opened"], progress["state"]) == (3, 3, "open")
    assert progress["by_step"]["target"] == 3 and progress["by_step"]["done"] == 0
    departments = {d["name"]: d for d in progress["by_department"]}
    assert departments["信息工程学院"]["by_step"] == {"target": 2}
    assert departments["机电工程学院"]["total"] == 1
    page = progress["by_subject"]
    assert (page["total"], len(page["items"])) == (3, 2)
    assert [i["subject_code"] for i in page["items"]] == ["460301", "510201"]
    assert page["items"][0]["element"] == "target_review" and page["items"][0]["step_name"] == "目标"
    assert progress["overdue"]["count"] == 3 and all(i["overdue"] for i in progress["overdue"]["items"])
    assert elec.id in {i["subject_id"] for i in progress["overdue"]["items"]}


def test_a_department_head_sees_only_the_progress_of_his_departments_subjects(api, hall):
    """The head of 信息工程学院 sees its two programs in the progress, not 机电工程学院's."""
    program("510201", "软件技术专业")
    program("510202", "计算机网络技术专业", owner="t1002")
    program("460301", "电气自动化技术专业", unit="jdgc", owner="t1003")
    cycle_id = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()["id"]
    api.login("h2001")
    progress = api.get(f"cycles/{cycle_id}/progress").get_json()
    assert [i["subject_code"] for i in progress["by_subject"]["items"]] == ["510201", "510202"]
    assert progress["by_step"]["target"] == 2


def test_progress_counts_the_open_warnings_of_the_cycles_subjects(api, hall):
    """Open warnings of the cycle's subjects and period are counted by level; handled ones are not."""
    subject = program("510201", "软件技术专业")
    emp = point("P-EMP", "毕业生就业率", "higher", 95, 90, 80)
    loss = point("P-LOSS", "学生流失率", "lower", 2, 5, 10)
    db.session.add_all([
        QualityWarning(point_id=emp.id, subject_id=subject.id, period=PERIOD, level="red", value=70, state="open"),
        QualityWarning(point_id=loss.id, subject_id=subject.id, period=PERIOD, level="yellow", value=6,
                       state="closed"),
    ])
    db.session.commit()
    cycle_id = open_cycle(api, {"level": "program", "period": PERIOD}).get_json()["id"]
    warnings = api.get(f"cycles/{cycle_id}/progress").get_json()["open_warnings"]
    assert warnings == {"yellow": 0, "red": 1, "total": 1}


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, field", [
    ({"level": "faculty", "period": PERIOD}, "level"),
    ({"level": "program", "period": "2026"}, "period"),
    ({"level": "program", "period": "2026-2028"}, "period"),
    ({"level": "program", "period": PERIOD, "deadlines": {"review": "2027-01-01"}}, "deadlines"),
    ({"level": "program", "period": PERIOD, "deadlines": {"target": "明年"}}, "deadlines"),
    ({"level": "program", "period": PERIOD, "period_end": "2027-02-30"}, "period_end"),
    ({"level": "program", "period": PERIOD, "scope": {"subjects": [999999]}}, "scope"),
    ({"level": "program", "period": PERIOD, "scope": {"department": 1}}, "scope"),
])
def test_bad_opening_input_is_422_and_writes_nothing(api, hall, body, field):
    """Unknown level, bad period, deadline, period end or scope: 422 naming the field, and nothing is written."""
    program("510201", "软件技术专业")
    response = open_cycle(api, body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert (count(Cycle), count(CycleUnit), count(ProcessInstance)) == (0, 0, 0)


def test_only_the_quality_office_may_open_a_cycle(api, hall):
    """A teacher or a department head gets 403 and no cycle is written."""
    program("510201", "软件技术专业")
    for username in ("t1001", "h2001"):
        response = open_cycle(api, {"level": "program", "period": PERIOD}, username)
        assert response.status_code == 403, response.get_json()
    assert (count(Cycle), count(ProcessInstance)) == (0, 0)


def test_a_scope_without_subjects_is_refused(api, hall):
    """A department with no program in it is not a cycle: 422 and nothing written."""
    program("510201", "软件技术专业")
    scope = {"org_unit": _id(OrgUnit, code="jjgl")}
    response = open_cycle(api, {"level": "program", "period": PERIOD, "scope": scope})
    assert response.status_code == 422
    assert count(Cycle) == 0


# -- the whole round ---------------------------------------------------------------------------------


def test_a_whole_cycle_for_one_program_closes_the_spiral(api, hall):
    """目标 (returned once, then approved) → … → 改进 by the program leader and the head of its department:
    诊断 shows the measured values against the lines, the grade and texts are kept, the improvements become the
    next period's draft targets, and the next cycle's 目标 is pre-filled with them."""
    subject = program("510201", "软件技术专业")
    emp = point("P-EMP", "毕业生就业率", "higher", 95, 90, 80)
    point("P-LOSS", "学生流失率", "lower", 2, 5, 10)
    point("P-CERT", "双证书获取率", "higher", 90, 80, 60)
    db.session.add_all([
        Measurement(subject_id=subject.id, point_id=emp.id, period=PERIOD, value=85, source="就业系统"),
        Measurement(subject_id=subject.id, point_id=_id(MonitoringPoint, code="P-LOSS"), period=PERIOD, value=1.5,
                    source="学工系统"),
        QualityWarning(point_id=emp.id, subject_id=subject.id, period=PERIOD, level="yellow", value=85,
                       standard_value=90, warning_value=80, state="open"),
    ])
    db.session.commit()
    body = open_cycle(api, {"level": "program", "period": PERIOD, "period_end": "2026-01-31",
                            "scope": {"subjects": [subject.id]}}).get_json()
    assert body["state"] == "open"

    # 目标: drafted by the program leader, returned once by the head of 信息工程学院, then approved.
    task = task_of(api, "t1001", "target")
    assert task["data"]["targets"] == [] and task["data"]["subject_name"] == "软件技术专业"
    complete(api, "t1001", "target", {"targets": [{"text": "就业率达到 95%"}]})
    review = task_of(api, "h2001", "target_review")
    response = api.post(f"tasks/{review['id']}/return",
                        {"reason": "目标需关联质控点并量化", "version": review["version"]})
    assert response.status_code == 200, response.get_json()
    task = task_of(api, "t1001", "target")
    assert task["data"]["return_reason"] == "目标需关联质控点并量化"
    assert task["data"]["targets"] == [{"text": "就业率达到 95%"}]
    complete(api, "t1001", "target", {"targets": [
        {"text": "毕业生就业率达到 95%", "point": "P-EMP", "target_value": 95},
        {"text": "学生流失率控制在 2% 以内", "point": "P-LOSS", "target_value": 2},
    ], "target_summary": "对接学院十四五规划"})
    complete(api, "h2001", "target_review", {"review_decision": "approve", "review_opinion": "同意"})
    assert count(Target, Target.period == PERIOD, Target.state == "approved") == 2

    # 标准, 设计, 组织, 实施 (the period already ended, so 诊断 follows the progress record).
    task = task_of(api, "t1001", "standard")
    lines = {p["point"]: p for p in task["data"]["standard_points"]}
    assert (lines["P-EMP"]["target_value"], lines["P-EMP"]["standard_value"], lines["P-EMP"]["warning_value"]) == \
        (95, 90, 80)
    complete(api, "t1001", "standard", {"standard_confirmed": True})
    complete(api, "t1001", "design", {"design_plan": "实施就业能力提升计划"})
    complete(api, "t1001", "organise", {"organise_responsibilities": "专业负责人牵头，辅导员落实"})
    complete(api, "t1001", "implement", {"implement_progress": "已完成两轮企业宣讲"})

    # 诊断: every point's measured value against its lines, with its warning.
    task = task_of(api, "t1001", "diagnose")
    points = {p["point"]: p for p in task["data"]["diagnosis_points"]}
    assert (points["P-EMP"]["value"], points["P-EMP"]["status"]) == (85, "yellow")
    assert points["P-EMP"]["warning"] == {"level": "yellow", "state": "open"}
    assert (points["P-LOSS"]["value"], points["P-LOSS"]["status"]) == (1.5, "target_met")
    assert (points["P-CERT"]["value"], points["P-CERT"]["status"]) == (None, "no_data")
    complete(api, "t1001", "diagnose", {"diagnosis_text": "就业率未达标准值，需加强就业指导"})

    # 激励 by the reviewer, then 学习, 创新, 改进 by the program leader.
    complete(api, "h2001", "incentive", {"grade": "良好", "incentive_measures": "专业建设经费增加 5 万元"})
    complete(api, "t1001", "learn", {"learn_text": "赴兄弟院校调研就业工作"})
    complete(api, "t1001", "innovate", {"innovate_text": "引入企业导师制"})
    improvements = [{"text": "就业率提高到 96%", "point": "P-EMP", "target_value": 96},
                    {"text": "建设两个校企合作基地"}]
    complete(api, "t1001", "improve", {"improvements": improvements})

    db.session.expire_all()
    unit = db.session.scalar(sa.select(CycleUnit).where(CycleUnit.subject_id == subject.id))
    assert unit.grade == "良好" and unit.step == "done" and unit.completed_at is not None
    assert unit.report["diagnose"]["diagnosis_text"] == "就业率未达标准值，需加强就业指导"
    assert unit.report["target_review"]["review_opinion"] == "同意"
    assert unit.report["improve"]["improvements"] == improvements
    assert db.session.get(ProcessInstance, unit.instance_id).state == "completed"
    drafts = db.session.scalars(sa.select(Target).where(Target.period == "2027-2028").order_by(Target.id)).all()
    assert [(t.text, t.state, t.origin, t.target_value) for t in drafts] == [
        ("就业率提高到 96%", "draft", "improvement", 96), ("建设两个校企合作基地", "draft", "improvement", None)]
    assert drafts[0].point_id == emp.id

    api.login("q4001")
    progress = api.get(f"cycles/{body['id']}/progress").get_json()
    assert progress["by_step"]["done"] == 1
    assert progress["by_subject"]["items"][0]["grade"] == "良好"

    # The next cycle's 目标 starts from this one's improvements.
    assert open_cycle(api, {"level": "program", "period": "2027-2028"}).status_code == 202
    api.login("t1001")
    next_target = [t for t in api.get("tasks?view=open").get_json()["items"] if t["element_id"] == "target"]
    assert len(next_target) == 1
    assert api.get(f"tasks/{next_target[0]['id']}").get_json()["data"]["targets"] == improvements


def test_implement_waits_for_the_period_end_before_diagnosis(api, hall):
    """With the progress recorded but the period still running, the unit waits at 实施; the timer then
    brings 诊断."""
    from hall.processes import services as processes
    from hall.tasks import services as tasks

    subject = program("510201", "软件技术专业")
    owner = db.session.get(User, subject.responsible_user_id)
    head = db.session.scalar(sa.select(User).where(User.username == "h2001"))
    until = (utcnow() + timedelta(seconds=2)).isoformat()
    instance = processes.start_instance(
        "diagnosis_cycle", owner, data={"cycle_id": None, "subject_id": subject.id, "period": PERIOD,
                                        "implement_until": until, "deadlines": {}},
        org_unit_id=subject.org_unit_id, subject_id=subject.id, check_startable=False)
    steps = [(owner, {"targets": [{"text": "目标"}]}), (head, {"review_decision": "approve"}),
             (owner, {"standard_confirmed": True}), (owner, {"design_plan": "方案"}),
             (owner, {"organise_responsibilities": "分工"}), (owner, {"implement_progress": "进展"})]
    for user, data in steps:
        task = db.session.scalar(sa.select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                            HumanTask.state == "ready"))
        tasks.complete_task(task.id, user, data, None)
    assert count(HumanTask, HumanTask.instance_id == instance.id, HumanTask.state == "ready") == 0

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        processes.fire_due_timers()
        open_task = db.session.scalar(sa.select(HumanTask.element_id).where(
            HumanTask.instance_id == instance.id, HumanTask.state == "ready"))
        if open_task:
            break
        time.sleep(0.2)
    assert open_task == "diagnose"


def test_a_terminated_diagnosis_process_marks_its_unit_terminated(api, hall):
    """An administrator terminates a unit's diagnosis process: its starter cannot withdraw it (409), the unit is
    stored as terminated and the progress counts it as such, not at 目标."""
    subject = program("510201", "软件技术专业")
    open_cycle(api, {"level": "program", "period": PERIOD})
    unit = db.session.scalar(sa.select(CycleUnit).where(CycleUnit.subject_id == subject.id))
    api.login("q4001")
    assert api.post(f"process-instances/{unit.instance_id}/withdraw").status_code == 409
    api.login("admin")
    assert api.post(f"process-instances/{unit.instance_id}/terminate").status_code == 200
    db.session.expire_all()
    assert db.session.get(CycleUnit, unit.id).step == "terminated"
    api.login("q4001")
    progress = api.get(f"cycles/{unit.cycle_id}/progress").get_json()
    assert [(s["subject_id"], s["step"]) for s in progress["by_subject"]["items"]] == [(subject.id, "terminated")]


def _deploy_warning_handling():
    from hall.processes import services as processes

    names = ("warning_analyse.json", "warning_plan.json", "warning_review.json", "warning_review.uischema.json")
    forms = {name: json.loads((ROOT / "forms" / name).read_text(encoding="utf-8")) for name in names}
    processes.deploy({"warning_handling.bpmn": (ROOT / "workflows" / "warning_handling.bpmn").read_bytes()}, forms)


def test_reports_show_a_running_units_real_step_and_what_each_step_submitted(api, hall):
    """A unit at 诊断: the self-diagnosis .docx/.xlsx and the college report say 诊断 (not 目标), print what
    目标 … 实施 submitted with the forms' titles and choice labels, and the warning review as 「同意，处置完成」."""
    import io

    from docx import Document
    from openpyxl import load_workbook

    from hall.quality import warnings

    _deploy_warning_handling()
    subject = program("510201", "软件技术专业")
    emp = point("P-EMP", "毕业生就业率", "higher", 95, 90, 80)
    db.session.add(Measurement(subject_id=subject.id, point_id=emp.id, period=PERIOD, value=85, source="就业系统"))
    db.session.commit()
    warnings.evaluate_warnings()
    complete(api, "t1001", "analyse", {"cause": "就业指导不足", "cause_kind": "资源不足"})
    complete(api, "t1001", "plan", {"measures": "增加就业指导课", "deadline": "2026-03-01"})
    complete(api, "h2001", "review", {"review_decision": "approve", "review_opinion": "可以"})

    cycle = open_cycle(api, {"level": "program", "period": PERIOD, "period_end": "2026-01-31"}).get_json()
    complete(api, "t1001", "target", {"targets": [{"text": "毕业生就业率达到 95%", "point": "P-EMP",
                                                   "target_value": 95}]})
    complete(api, "h2001", "target_review", {"review_decision": "approve", "review_opinion": "同意"})
    complete(api, "t1001", "standard", {"standard_confirmed": True})
    complete(api, "t1001", "design", {"design_plan": "实施就业能力提升计划"})
    complete(api, "t1001", "organise", {"organise_responsibilities": "专业负责人牵头"})
    complete(api, "t1001", "implement", {"implement_progress": "已完成两轮企业宣讲"})
    task_of(api, "t1001", "diagnose")
    unit = db.session.scalar(sa.select(CycleUnit).where(CycleUnit.subject_id == subject.id))

    api.login("q4001")
    response = api.get(f"reports/self-diagnosis/{unit.id}.docx")
    assert response.status_code == 200
    document = Document(io.BytesIO(response.data))
    basics = dict((row.cells[0].text, row.cells[1].text) for row in document.tables[0].rows)
    assert basics["当前步骤"] == "诊断"
    text = "\n".join(p.text for p in document.paragraphs)
    process = text[text.index("六、诊改过程记录"):]
    for line in ("审核结论：通过", "审核意见：同意", "已确认标准与质控点：是", "实施方案：实施就业能力提升计划",
                 "责任分工：专业负责人牵头", "实施进展：已完成两轮企业宣讲"):
        assert line in process, line
    assert "毕业生就业率达到 95%" in process.split("标准")[0]
    assert process.split("\n诊断\n")[1].startswith("（未填写）")
    assert "审核意见：同意，处置完成" in text and "approve" not in text and "原因类别：资源不足" in text

    book = load_workbook(io.BytesIO(api.get(f"reports/self-diagnosis/{unit.id}.xlsx").data))
    assert dict(book["基本情况"].iter_rows(min_row=2, values_only=True))["当前步骤"] == "诊断"
    steps = dict(book["诊改过程"].iter_rows(min_row=2, values_only=True))
    assert "实施进展：已完成两轮企业宣讲" in steps["实施"] and steps["诊断"] == "（未填写）"
    assert "审核意见：同意，处置完成" in list(book["预警"].iter_rows(min_row=2, values_only=True))[0][-1]

    college = Document(io.BytesIO(api.get(f"reports/college.docx?period={PERIOD}").data))
    units = college.tables[-1]
    assert [c.text for c in units.rows[1].cells][4] == "诊断"
    sheet = load_workbook(io.BytesIO(api.get(f"reports/college.xlsx?period={PERIOD}").data))["诊改单元"]
    assert list(sheet.iter_rows(min_row=2, values_only=True))[0][4] == "诊断"
    assert cycle["id"] == unit.cycle_id


def test_a_target_with_an_unknown_point_or_an_impossible_value_is_refused(api, hall):
    """目标 naming point NOPE-1, or 就业率 −5000 %, is a 422 with the message on the item's field; nothing moves."""
    program("510201", "软件技术专业")
    point("P-EMP", "毕业生就业率", "higher", 95, 90, 80)
    open_cycle(api, {"level": "program", "period": PERIOD})
    task = task_of(api, "t1001", "target")
    response = api.post(f"tasks/{task['id']}/complete", {"version": task["version"], "data": {"targets": [
        {"text": "毕业生就业率达到 95%", "point": "P-EMP", "target_value": 95},
        {"text": "乱填", "point": "NOPE-1", "target_value": -5000},
        {"text": "就业率", "point": "P-EMP", "target_value": -5000}]}})
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert errors == {"targets.1.point": ["质控点代码“NOPE-1”不存在"],
                      "targets.2.target_value": ["百分比质控点的目标值应在 0 到 100 之间"]}
    assert task_of(api, "t1001", "target")["version"] == task["version"]
    assert count(Target) == 0


def test_the_target_page_shows_the_unknown_point_message_next_to_the_field(api, hall):
    """On the 目标 page an unknown point code comes back with 422 and its message beside the code field."""
    program("510201", "软件技术专业")
    open_cycle(api, {"level": "program", "period": PERIOD})
    task = task_of(api, "t1001", "target")
    page = api.get(f"/tasks/{task['id']}").get_data(as_text=True)
    csrf = page.split('name="_csrf" value="')[1].split('"')[0]
    response = api.client.post(f"/tasks/{task['id']}", data={
        "_csrf": csrf, "version": task["version"], "action": "submit",
        "targets.0.text": "乱填", "targets.0.point": "NOPE-1", "targets.0.target_value": "-5000"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    field = html[html.index('name="targets.0.point"'):]
    assert "质控点代码“NOPE-1”不存在" in field[:field.index('name="targets.0.target_value"')]
