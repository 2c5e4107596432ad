"""The two loops together: during 实施 of a program's diagnosis cycle a measurement misses the standard,
the warning opens its handling flow (监测 → 预警 → 改进), the program leader and the department head handle
it, and 诊断 then shows the point with its handled warning."""

from __future__ import annotations

import json

import sqlalchemy as sa

from hall.extensions import db
from hall.processes.models import ProcessInstance
from hall.quality.models import CycleUnit, QualityWarning
from tests.quality.core_factories import ROOT, make_point, make_subject, org_fixture  # noqa: F401 - fixture
from tests.quality.test_cycles import complete, task_of

PERIOD = "2026-2027"


def _deploy_diagnosis():
    from hall.processes import services as processes

    forms = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "forms").glob("diagnosis_*.json")}
    processes.deploy({"diagnosis_cycle.bpmn": (ROOT / "workflows" / "diagnosis_cycle.bpmn").read_bytes()}, forms)


def test_a_warning_raised_during_implement_is_handled_and_shown_in_diagnosis(api, org):
    """A 生师比 of 19 pushed during 实施 raises a yellow warning handled by t1001 and h2001; the 诊断 form lists
    the point as yellow with its warning handled, and the grade closes the unit."""
    from hall.quality.services import ensure_levels

    ensure_levels()
    _deploy_diagnosis()
    subject = make_subject()  # 软件技术专业, led by t1001, in 软件技术教研室 of 信息工程学院 (head h2001)
    make_point()  # 生师比: lower is better, standard 18

    api.login("q4001")
    opened = api.post("cycles", {"level": "program", "period": PERIOD, "period_end": "2026-01-31",
                                 "scope": {"subjects": [subject.id]}})
    assert opened.status_code == 202, opened.get_json()

    complete(api, "t1001", "target", {"targets": [{"text": "生师比控制在 16 以内", "point": "P-SSR",
                                                   "target_value": 16}]})
    complete(api, "h2001", "target_review", {"review_decision": "approve", "review_opinion": "同意"})
    complete(api, "t1001", "standard", {"standard_confirmed": True})
    complete(api, "t1001", "design", {"design_plan": "引进专任教师"})
    complete(api, "t1001", "organise", {"organise_responsibilities": "系主任牵头"})
    task_of(api, "t1001", "implement")  # the unit is in 实施

    # 监测 → 预警: the teaching-affairs system reports 19 students per teacher.
    api.login("q4001")
    pushed = api.post("measurements", {"items": [{"subject": subject.code, "level": "program", "point": "P-SSR",
                                                  "period": PERIOD, "value": 19, "source": "教务系统"}]})
    assert pushed.status_code == 201, pushed.get_json()
    warning = db.session.scalar(sa.select(QualityWarning))
    assert (warning.level, warning.state, warning.subject_id) == ("yellow", "handling", subject.id)

    # → 改进: the handling flow goes to the program leader, then the head of his department.
    api.login("t1001")
    handling = [t for t in api.get("tasks?view=open").get_json()["items"] if t["instance_id"] == warning.instance_id]
    assert [t["name"] for t in handling] == ["分析原因"]
    task = api.get(f"tasks/{handling[0]['id']}").get_json()
    done = api.post(f"tasks/{task['id']}/complete", {"data": {"cause": "两名教师退休", "cause_kind": "资源不足"},
                                                     "version": task["version"]})
    assert done.status_code == 200, done.get_json()
    plan = [t for t in api.get("tasks?view=open").get_json()["items"] if t["instance_id"] == warning.instance_id][0]
    plan = api.get(f"tasks/{plan['id']}").get_json()
    done = api.post(f"tasks/{plan['id']}/complete", {"data": {"measures": "引进两名专任教师", "deadline": "2026-12-31"},
                                                     "version": plan["version"]})
    assert done.status_code == 200, done.get_json()
    api.login("h2001")
    review = [t for t in api.get("tasks?view=open").get_json()["items"] if t["instance_id"] == warning.instance_id][0]
    review = api.get(f"tasks/{review['id']}").get_json()
    done = api.post(f"tasks/{review['id']}/complete",
                    {"data": {"review_decision": "approve", "review_opinion": "措施可行"},
                     "version": review["version"]})
    assert done.status_code == 200, done.get_json()
    db.session.expire_all()
    assert db.session.get(ProcessInstance, warning.instance_id).state == "completed"
    assert db.session.get(QualityWarning, warning.id).state == "handled"

    # Back in the big loop: 实施 ends, 诊断 shows the point missing the standard with its handled warning.
    complete(api, "t1001", "implement", {"implement_progress": "已引进一名教师"})
    task = task_of(api, "t1001", "diagnose")
    points = {p["point"]: p for p in task["data"]["diagnosis_points"]}
    assert points["P-SSR"]["value"] == 19 and points["P-SSR"]["status"] == "yellow"
    assert points["P-SSR"]["warning"] == {"level": "yellow", "state": "handled"}
    complete(api, "t1001", "diagnose", {"diagnosis_text": "生师比仍高于标准值，预警已处置，措施在落实中"})
    complete(api, "h2001", "incentive", {"grade": "合格", "incentive_measures": "限期整改"})
    complete(api, "t1001", "learn", {"learn_text": "学习兄弟院校师资建设经验"})
    complete(api, "t1001", "innovate", {"innovate_text": "设立产业教授岗位"})
    complete(api, "t1001", "improve", {"improvements": [{"text": "生师比降到 17", "point": "P-SSR",
                                                         "target_value": 17}]})
    db.session.expire_all()
    unit = db.session.scalar(sa.select(CycleUnit).where(CycleUnit.subject_id == subject.id))
    assert unit.grade == "合格" and unit.step == "done"
