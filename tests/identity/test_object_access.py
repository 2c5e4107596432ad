"""Object-level access (hall/access.py): whose instances, tasks, subjects, warnings and cycles each role sees.

One small college is built once for the module (two departments, a leave of a teacher in each, a
diagnosis cycle over one program of each, a warning on each program); every test only reads or is
refused, so the data stays as built.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa

from hall.extensions import db
from tests.conftest import Api, reset_database

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2026-2027"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LEAVE = {"leave_type": "事假", "start_date": "2026-12-01", "end_date": "2026-12-02", "days": 2,
         "reason": "家中有事需要处理", "arrangement": "已调课"}
# One person per role of the access model (program and course leaders are added to the demo college).
PEOPLE = {"admin": "admin", "quality_office": "q4001", "dept_head": "h2001", "program_leader": "p5001",
          "course_leader": "k5001", "teacher": "t1001", "student": "20240101", "supervisor": "d4002"}


def _ok(response, status=(200, 201, 202)):
    assert response.status_code in status, (response.status_code, response.get_json())
    return response.get_json()


def build_college(app) -> dict:
    """The demo college with every shipped flow, a program and a course leader, two programs (xxgc, jdgc)
    with a warning each, a diagnosis cycle over both, a leave of t1001 (xxgc, still at its form) and of
    t1003 (jdgc, waiting for his head), an attachment, an API token and spare users; returns their ids."""
    from hall.accounts import services as accounts
    from hall.accounts.models import User
    from hall.notifications.models import Message
    from hall.org.demo import load_demo_organisation
    from hall.org.models import OrgUnit
    from hall.processes import services as processes
    from hall.quality import services as quality
    from hall.quality.models import CycleUnit, MonitoringPoint, QualityWarning, Subject
    from hall.tasks.models import HumanTask

    reset_database(app)
    with app.app_context():
        load_demo_organisation()
        processes.deploy_directory(str(ROOT / "workflows"), str(ROOT / "forms"))
        quality.ensure_levels()
        unit = {u.code: u.id for u in db.session.scalars(sa.select(OrgUnit))}
        accounts.create_user("p5001", "程序员", "hall2026", org_unit_id=unit["xxgc-rj"],
                             roles=[("program_leader", unit["xxgc-rj"])], commit=False)
        accounts.create_user("k5001", "陈课", "hall2026", org_unit_id=unit["xxgc-rj"],
                             roles=[("course_leader", unit["xxgc-rj"])], commit=False)
        for username in ("x9001", "x9002"):
            accounts.create_user(username, "临时用户", "hall2026", org_unit_id=unit["xxgc-rj"],
                                 roles=[("teacher", unit["xxgc-rj"])], commit=False)
        db.session.flush()
        user = {u.username: u.id for u in db.session.scalars(sa.select(User))}
        db.session.add_all([
            Subject(level_code="program", code="510201", name="软件技术专业", org_unit_id=unit["xxgc-rj"],
                    responsible_user_id=user["t1001"], attributes={}),
            Subject(level_code="program", code="460301", name="电气自动化技术专业", org_unit_id=unit["jdgc-zdh"],
                    responsible_user_id=user["t1003"], attributes={}),
            MonitoringPoint(level_code="program", element="师资队伍", code="P-SSR", name="生师比", unit="",
                            direction="lower", target_value=16.0, standard_value=18.0, warning_value=22.0),
        ])
        db.session.commit()

    api = Api(app)
    api.login("t1001")
    leave_xxgc = _ok(api.post("process-instances", {"definition": "leave_request", "data": {}}))["id"]
    form_task = api.get("tasks?view=open").get_json()["items"][0]["id"]
    _ok(api.client.post(f"/api/v1/tasks/{form_task}/attachments", data={"file": (io.BytesIO(PDF), "note.pdf")},
                        content_type="multipart/form-data", headers={"X-CSRF-Token": api.csrf}))
    api.login("t1003")
    leave_jdgc = _ok(api.post("process-instances", {"definition": "leave_request", "data": {}}))["id"]
    task = api.get("tasks?view=open").get_json()["items"][0]
    task = api.get(f"tasks/{task['id']}").get_json()
    _ok(api.post(f"tasks/{task['id']}/complete", {"data": LEAVE, "version": task["version"]}))
    api.login("q4001")
    _ok(api.post("measurements", {"items": [
        {"subject": code, "level": "program", "point": "P-SSR", "period": "2025-2026", "value": 19,
         "source": "教务系统"} for code in ("510201", "460301")]}))
    cycle = _ok(api.post("cycles", {"level": "program", "period": PERIOD}))["id"]
    api.login("admin")
    token = _ok(api.post("tokens", {"name": "权限测试", "scopes": ["measurements:write"]}))["id"]

    with app.app_context():
        subject = {s.code: s.id for s in db.session.scalars(sa.select(Subject))}
        warnings = {db.session.get(Subject, w.subject_id).code: w.id
                    for w in db.session.scalars(sa.select(QualityWarning))}
        cycle_units = {db.session.get(Subject, u.subject_id).code: u for u in db.session.scalars(sa.select(CycleUnit))}
        handling = {db.session.get(Subject, w.subject_id).code: w.instance_id
                    for w in db.session.scalars(sa.select(QualityWarning))}
        head_task = db.session.scalar(sa.select(HumanTask.id).where(HumanTask.instance_id == leave_jdgc,
                                                                     HumanTask.state == "ready"))
        from hall.tasks.models import Attachment

        world = {
            "unit": unit, "user": user, "subject": subject, "warning": warnings, "cycle": cycle, "token": token,
            "leave_xxgc": leave_xxgc, "leave_jdgc": leave_jdgc, "form_task": form_task, "head_task": head_task,
            "diagnosis": {code: u.instance_id for code, u in cycle_units.items()},
            "cycle_unit": {code: u.id for code, u in cycle_units.items()},
            "handling": handling,
            "attachment": db.session.scalar(sa.select(sa.func.min(Attachment.id))),
            "message": db.session.scalar(sa.select(sa.func.min(Message.id))),
            "point": db.session.scalar(sa.select(MonitoringPoint.id)),
        }
    assert all(world["handling"].values()) and all(world["diagnosis"].values()), world
    return world


@pytest.fixture(scope="module")
def college(app):
    world = build_college(app)
    yield world
    reset_database(app)


@pytest.fixture(autouse=True)
def clean_db(college):
    """The module's college is built once; the tests here change nothing, so nothing is emptied per test."""
    yield


@pytest.fixture(scope="module")
def people(app, college):
    """A signed-in client per person, made once."""
    clients = {}

    def client(username: str) -> Api:
        if username not in clients:
            clients[username] = Api(app).login(username)
        return clients[username]

    return client


def _ids(page: dict) -> set[int]:
    return {item["id"] for item in page["items"]}


# -- instances ------------------------------------------------------------------------------------------

def test_a_teacher_sees_her_own_leave(people, college):
    """The starter reads her leave and finds it in her list."""
    teacher = people("t1001")
    assert teacher.get(f"process-instances/{college['leave_xxgc']}").status_code == 200
    assert college["leave_xxgc"] in _ids(teacher.get("process-instances?page_size=100").get_json())


def test_each_persons_instance_list_holds_exactly_the_instances_they_may_open(app, college):
    """The list finds what a person may see as one union of index scans; the detail page asks instance by
    instance (can_see_instance). For one person of every role, and the teachers and heads of both
    departments, the two agree on every instance of the college."""
    from hall.accounts.models import User
    from hall.processes import services as processes
    from hall.processes.models import ProcessInstance

    with app.app_context():
        instances = db.session.scalars(sa.select(ProcessInstance)).all()
        assert len(instances) >= 6
        for username in {*PEOPLE.values(), "t1002", "t1003", "h2002"}:
            user = db.session.scalar(sa.select(User).where(User.username == username))
            listed, total = processes.list_instances(user, page_size=1000)
            may_open = {i.id for i in instances if processes.can_see_instance(i, user)}
            assert {i.id for i in listed} == may_open and total == len(may_open), username
        db.session.remove()


def test_a_teacher_cannot_see_another_teachers_leave(people, college):
    """t1002 gets 404 on t1001's leave, on its task and its attachment, and does not find it in her list."""
    other = people("t1002")
    assert other.get(f"process-instances/{college['leave_xxgc']}").status_code == 404
    assert other.get(f"tasks/{college['form_task']}").status_code == 404
    assert other.get(f"attachments/{college['attachment']}").status_code == 404
    assert college["leave_xxgc"] not in _ids(other.get("process-instances?page_size=100").get_json())


def test_a_teacher_sees_the_diagnosis_of_her_own_program_only(people, college):
    """t1001 owns 510201: she reads its diagnosis instance and gets 404 on jdgc's program's."""
    teacher = people("t1001")
    assert teacher.get(f"process-instances/{college['diagnosis']['510201']}").status_code == 200
    assert teacher.get(f"process-instances/{college['diagnosis']['460301']}").status_code == 404


def test_a_department_head_sees_his_departments_instances(people, college):
    """h2001 heads xxgc: he reads the leave of t1001 (xxgc-rj) although no task of it is his yet."""
    head = people("h2001")
    assert head.get(f"process-instances/{college['leave_xxgc']}").status_code == 200
    listed = _ids(head.get("process-instances?page_size=100").get_json())
    assert {college["leave_xxgc"], college["diagnosis"]["510201"], college["handling"]["510201"]} <= listed


def test_a_department_head_cannot_see_another_departments_instances(people, college):
    """h2001 gets 404 on jdgc's leave, diagnosis and warning handling, and none of them is in his list."""
    head = people("h2001")
    theirs = {college["leave_jdgc"], college["diagnosis"]["460301"], college["handling"]["460301"]}
    for instance_id in theirs:
        assert head.get(f"process-instances/{instance_id}").status_code == 404
    assert not theirs & _ids(head.get("process-instances?page_size=100").get_json())


def test_the_other_head_sees_his_own_department_only(people, college):
    """h2002 heads jdgc: he reads t1003's leave and gets 404 on t1001's."""
    head = people("h2002")
    assert head.get(f"process-instances/{college['leave_jdgc']}").status_code == 200
    assert head.get(f"process-instances/{college['leave_xxgc']}").status_code == 404


def test_the_quality_office_sees_every_units_diagnosis_and_warning_handling(people, college):
    """q4001 reads the diagnosis and warning-handling instances of both departments and lists them all."""
    office = people("q4001")
    every = set(college["diagnosis"].values()) | set(college["handling"].values())
    for instance_id in every:
        assert office.get(f"process-instances/{instance_id}").status_code == 200
    assert every <= _ids(office.get("process-instances?page_size=100").get_json())


def test_the_quality_office_gets_404_on_a_teachers_leave(people, college):
    """Leave details are private: q4001 gets 404 on the leave, its task and its attachment, and no list entry."""
    office = people("q4001")
    for path in (f"process-instances/{college['leave_xxgc']}", f"tasks/{college['form_task']}",
                 f"tasks/{college['head_task']}", f"attachments/{college['attachment']}"):
        assert office.get(path).status_code == 404, path
    listed = _ids(office.get("process-instances?definition=leave_request&page_size=100").get_json())
    assert listed == set()


def test_the_quality_office_sees_warnings_of_every_department(people, college):
    """q4001 lists and reads the warnings of xxgc and jdgc."""
    office = people("q4001")
    assert set(college["warning"].values()) <= _ids(office.get("warnings?page_size=100").get_json())
    for warning_id in college["warning"].values():
        assert office.get(f"warnings/{warning_id}").status_code == 200


def test_a_department_head_sees_only_his_departments_warnings(people, college):
    """h2001 lists xxgc's warning only and is refused jdgc's."""
    head = people("h2001")
    assert _ids(head.get("warnings?page_size=100").get_json()) == {college["warning"]["510201"]}
    assert head.get(f"warnings/{college['warning']['460301']}").status_code in (403, 404)


# -- supervisors ----------------------------------------------------------------------------------------

def test_a_supervisor_reads_the_cycle_progress_of_every_unit(people, college):
    """d4002 (督导) reads the cycle and its progress over both programs, and both departments' warnings."""
    supervisor = people("d4002")
    assert supervisor.get(f"cycles/{college['cycle']}").status_code == 200
    progress = supervisor.get(f"cycles/{college['cycle']}/progress").get_json()
    assert progress["by_subject"]["total"] == 2, progress
    assert set(college["warning"].values()) <= _ids(supervisor.get("warnings?page_size=100").get_json())
    assert supervisor.get(f"process-instances/{college['diagnosis']['460301']}").status_code == 200


def test_a_supervisor_cannot_open_a_cycle(app, people, college):
    """POST /cycles by a supervisor is 403 and opens nothing."""
    from hall.quality.models import Cycle

    response = people("d4002").post("cycles", {"level": "program", "period": "2027-2028"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Cycle)) == 1


def test_a_refusal_by_role_is_logged_as_permission_denied(app, people, college):
    """The role gate's 403 is in the audit log with who, which endpoint and the roles it wanted."""
    from hall.audit.models import AuditEvent

    assert people("d4002").get("audit").status_code == 403
    with app.app_context():
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == "permission_denied")
                                   .order_by(AuditEvent.id.desc())).first()
        assert (event.actor, event.path) == ("d4002", "/api/v1/audit")
        assert (event.detail["endpoint"], event.detail["needed"]) == ("audit.list_audit", ["admin"])


def test_a_supervisor_cannot_change_a_monitoring_point(people, college):
    """PUT /monitoring-points/{id} by a supervisor is 403."""
    body = {"level": "program", "element": "师资队伍", "code": "P-SSR", "name": "生师比", "direction": "lower",
            "standard_value": 1}
    assert people("d4002").put(f"monitoring-points/{college['point']}", body).status_code == 403


def test_a_supervisor_gets_404_on_a_teachers_leave(people, college):
    """Supervisors read quality data, not private leave."""
    assert people("d4002").get(f"process-instances/{college['leave_jdgc']}").status_code == 404


# -- students -------------------------------------------------------------------------------------------

def test_a_student_sees_nothing_of_others(people, college):
    """20240101 gets 404 on every instance, task and attachment of others and lists no instance, warning or
    subject."""
    student = people("20240101")
    paths = [f"process-instances/{i}" for i in (college["leave_xxgc"], college["leave_jdgc"],
                                                *college["diagnosis"].values(), *college["handling"].values())]
    paths += [f"tasks/{college['form_task']}", f"tasks/{college['head_task']}", f"attachments/{college['attachment']}",
              f"subjects/{college['subject']['510201']}/portrait",
              f"reports/self-diagnosis/{college['cycle_unit']['510201']}.docx"]
    for path in paths:
        assert student.get(path).status_code == 404, path
    for path in ("process-instances", "warnings", "subjects"):
        assert student.get(path).get_json()["total"] == 0, path
    assert student.get(f"warnings/{college['warning']['510201']}").status_code in (403, 404)
    assert student.get(f"cycles/{college['cycle']}/progress").get_json()["by_subject"]["total"] == 0


def test_a_student_cannot_push_measurements(people, college):
    """POST /measurements by a student is 403."""
    item = {"subject": "510201", "level": "program", "point": "P-SSR", "period": "2025-2026", "value": 1,
            "source": "x"}
    assert people("20240101").post("measurements", {"items": [item]}).status_code == 403
