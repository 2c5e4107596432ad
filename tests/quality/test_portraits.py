"""Portraits (画像): one subject's points, lines, states and radar scores; aggregates per org unit and the
drill-down; who may see what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from hall.accounts.models import User
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.processes.models import ProcessDefinition, ProcessInstance, ProcessVersion
from hall.quality import portraits
from hall.quality.models import (
    Cycle,
    CycleUnit,
    Level,
    Measurement,
    MonitoringPoint,
    PointOverride,
    QualityWarning,
    Standard,
    Subject,
    Target,
)
from hall.tasks.models import HumanTask

P1_PERIOD, P2_PERIOD = "2024-2025", "2025-2026"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def build_quality_world() -> SimpleNamespace:
    """The demo organisation plus: two programs (软件技术 in 信息工程学院 with an override, 电气自动化技术 in
    机电工程学院), two courses under 软件技术, three program points measured over two periods, a handled red
    warning with its handling texts, and a cycle whose unit for 软件技术 holds report texts and a grade."""
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()
    users = {u.username: u for u in db.session.scalars(sa.select(User))}
    units = {u.code: u for u in db.session.scalars(sa.select(OrgUnit))}
    for code, name, sort in (("program", "专业", 2), ("course", "课程", 3), ("teacher", "教师", 4)):
        if db.session.get(Level, code) is None:
            db.session.add(Level(code=code, name=name, sort=sort))
    db.session.flush()
    standard = Standard(level_code="program", kind="operation", system="generation", code="STD-P-01",
                        title="专业建设运行标准", items=[{"code": "1", "text": "专业人才培养方案每年修订"}])
    employment = MonitoringPoint(level_code="program", element="人才培养质量", code="PR01", name="毕业生就业率",
                                 unit="%", direction="higher", target_value=95, standard_value=90, warning_value=85)
    ratio = MonitoringPoint(level_code="program", element="师资队伍", code="PR02", name="生师比", unit="",
                            direction="lower", target_value=16, standard_value=18, warning_value=22)
    plan = MonitoringPoint(level_code="program", element="专业建设", code="PR03", name="有专业教学标准", unit="",
                           direction="bool", standard_value=1)
    db.session.add_all([standard, employment, ratio, plan])
    db.session.flush()
    software = Subject(level_code="program", code="510201", name="软件技术", org_unit_id=units["xxgc"].id,
                       responsible_user_id=users["t1001"].id)
    electric = Subject(level_code="program", code="460306", name="电气自动化技术", org_unit_id=units["jdgc"].id,
                       responsible_user_id=users["t1003"].id)
    db.session.add_all([software, electric])
    db.session.flush()
    python = Subject(level_code="course", code="C-PY", name="Python程序设计", org_unit_id=units["xxgc-rj"].id,
                     parent_id=software.id, responsible_user_id=users["t1002"].id)
    web = Subject(level_code="course", code="C-WEB", name="Web前端开发", org_unit_id=units["xxgc-rj"].id,
                  parent_id=software.id)
    db.session.add_all([python, web])
    # 软件技术 aims higher on employment: its own target and standard, the default warning line.
    db.session.add(PointOverride(point_id=employment.id, subject_id=software.id, target_value=98, standard_value=92))
    db.session.flush()

    def measure(subject, point, period, value, source="manual", minutes=0):
        db.session.add(Measurement(subject_id=subject.id, point_id=point.id, period=period, value=value,
                                   source=source, measured_at=T0 + timedelta(minutes=minutes)))

    measure(software, employment, P1_PERIOD, 93)
    measure(software, ratio, P1_PERIOD, 17)
    measure(software, plan, P1_PERIOD, 1)
    # Two sources in one period: the later one (91) is the value.
    measure(software, employment, P2_PERIOD, 88, source="教务", minutes=1)
    measure(software, employment, P2_PERIOD, 91, source="manual", minutes=5)
    measure(software, ratio, P2_PERIOD, 23)
    measure(electric, employment, P2_PERIOD, 95)
    measure(electric, ratio, P2_PERIOD, 19)
    measure(electric, plan, P2_PERIOD, 0)

    definition = ProcessDefinition(key="warning_handling", name="预警处理")
    db.session.add(definition)
    db.session.flush()
    version = ProcessVersion(definition_id=definition.id, number=1, content_hash="x" * 64,
                             bpmn_filename="warning_handling.bpmn", bpmn_xml="<definitions/>",
                             forms={"warning_analyse.json": {"properties": {"cause": {"title": "原因分析"},
                                                                            "plan": {"title": "整改方案"}}}})
    db.session.add(version)
    db.session.flush()
    instance = ProcessInstance(definition_id=definition.id, process_version_id=version.id, state="completed",
                               title="生师比预警处理", workflow={}, subject_id=software.id)
    db.session.add(instance)
    db.session.flush()
    db.session.add(HumanTask(instance_id=instance.id, element_id="analyse", name="分析原因并制定整改方案",
                             state="completed", completed_at=T0 + timedelta(days=2),
                             completed_by_id=users["t1001"].id,
                             submitted={"cause": "招生规模扩大，专任教师补充不及时", "plan": "引进两名专任教师"}))
    warning = QualityWarning(point_id=ratio.id, subject_id=software.id, period=P2_PERIOD, level="red", value=23,
                             standard_value=18, warning_value=22, state="handled", assignee_id=users["t1001"].id,
                             instance_id=instance.id, raised_at=T0, handled_at=T0 + timedelta(days=3))
    db.session.add(warning)
    cycle = Cycle(level_code="program", period=P2_PERIOD, title="专业层面2025-2026学年诊改", state="open")
    db.session.add(cycle)
    db.session.flush()
    unit = CycleUnit(cycle_id=cycle.id, subject_id=software.id, step="improve", grade="良好", report={
        "diagnose": {"diagnosis": "就业率略低于本专业标准，生师比超过预警线"},
        "improve": {"measures": ["扩大校企合作订单班", "引进双师型教师"]},
    })
    other_unit = CycleUnit(cycle_id=cycle.id, subject_id=electric.id, step="diagnose", grade="优秀")
    db.session.add_all([unit, other_unit])
    db.session.add(Target(subject_id=software.id, period=P2_PERIOD, text="毕业生就业率达到98%",
                          point_id=employment.id, target_value=98, cycle_id=cycle.id))
    db.session.commit()
    return SimpleNamespace(software=software.id, electric=electric.id, python=python.id, web=web.id,
                           employment=employment.id, ratio=ratio.id, plan=plan.id, warning=warning.id,
                           cycle=cycle.id, unit=unit.id, other_unit=other_unit.id,
                           xxgc=units["xxgc"].id, jdgc=units["jdgc"].id, xxgc_rj=units["xxgc-rj"].id)


@pytest.fixture
def world(ctx):
    return build_quality_world()


def _point(portrait, code):
    return next(p for p in portrait["points"] if p["code"] == code)


def _portrait(api, user, subject_id):
    response = api.login(user).get(f"subjects/{subject_id}/portrait")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_portrait_lines_take_the_subject_override(api, world):
    """A subject's override replaces the point's default target and standard; unset lines keep the default."""
    portrait = _portrait(api, "q4001", world.software)
    employment, ratio = _point(portrait, "PR01"), _point(portrait, "PR02")
    assert employment["lines"] == {"target": 98, "standard": 92, "warning": 85} and employment["overridden"]
    assert ratio["lines"] == {"target": 16, "standard": 18, "warning": 22} and not ratio["overridden"]
    assert [p["code"] for p in portrait["points"]] == ["PR01", "PR02", "PR03"]
    assert portrait["level"] == {"code": "program", "name": "专业"}


def test_portrait_series_keeps_the_latest_source_per_period(api, world):
    """Two sources for one period: the series holds the later measurement's value, one entry per period."""
    portrait = _portrait(api, "q4001", world.software)
    assert portrait["periods"] == [P1_PERIOD, P2_PERIOD]
    series = _point(portrait, "PR01")["series"]
    assert [(s["period"], s["value"], s["source"]) for s in series] == [(P1_PERIOD, 93, "manual"),
                                                                          (P2_PERIOD, 91, "manual")]


def test_portrait_states_follow_each_direction(api, world):
    """higher under the overridden standard is yellow, lower past the warning line is red, bool yes is met,
    and a period without a value is 未测."""
    portrait = _portrait(api, "q4001", world.software)
    states = {p["code"]: [s["state_name"] for s in p["series"]] for p in portrait["points"]}
    assert states == {"PR01": ["达标", "黄色预警"], "PR02": ["达标", "红色预警"], "PR03": ["达标", "未测"]}


def test_portrait_radar_scores_of_the_latest_period(api, world):
    """Radar scores interpolate between the lines (warning 30, standard 60, target 100); no value → None."""
    portrait = _portrait(api, "q4001", world.software)
    scores = {r["code"]: r["score"] for r in portrait["radar"]}
    # 91 between warning 85 (30) and standard 92 (60): 30 + 30·6/7; 23 is 1 past warning 22 on a lower point
    # whose warning→standard segment is 4 wide: 30 − 30/4.
    assert scores == {"PR01": 55.7, "PR02": 22.5, "PR03": None}
    assert portrait["latest_period"] == P2_PERIOD


def test_normalised_score_formula():
    """The documented examples: anchors, interpolation, extension past the ends, clamping, mirror, bool."""
    score = portraits.normalised_score
    higher = [score("higher", v, 90, 70, 60) for v in (70, 80, 90, 65, 50, 100, 55)]
    assert higher == [60.0, 80.0, 100.0, 45.0, 0.0, 100.0, 15.0]
    assert [score("lower", v, 16, 18, 22) for v in (18, 17, 22, 16, 30)] == [60.0, 80.0, 30.0, 100.0, 0.0]
    assert score("bool", 1, None, 1, None) == 100.0 and score("bool", 0, None, 1, None) == 0.0
    assert score("higher", 80, None, 70, None) == 100.0 and score("higher", 60, None, 70, None) == 0.0
    assert score("higher", None, 90, 70, 60) is None and score("higher", 5, None, None, None) is None


def test_state_sql_agrees_with_state_of(ctx):
    """The SQL CASE used by aggregates gives the same state as the Python rule for every direction."""
    cases = [("higher", 91, 92, 85), ("higher", 84, 92, 85), ("higher", 92, 92, 85), ("higher", 10, None, None),
             ("lower", 23, 18, 22), ("lower", 19, 18, 22), ("lower", 18, 18, 22), ("lower", 19, None, 22),
             ("bool", 1, 1, None), ("bool", 0, 1, None), ("bool", 0, 1, 0.5), ("bool", 0, None, None)]
    for direction, value, standard, warning in cases:
        expr = portraits.state_sql(sa.literal(direction), sa.cast(sa.literal(float(value)), sa.Float),
                                   sa.cast(sa.literal(standard, sa.Float), sa.Float),
                                   sa.cast(sa.literal(warning, sa.Float), sa.Float))
        assert db.session.scalar(sa.select(expr)) == portraits.state_of(direction, value, standard, warning), \
            (direction, value, standard, warning)


def test_portrait_lists_warnings_and_children(api, world):
    """The portrait carries the subject's warnings and its child subjects for the drill-down."""
    portrait = _portrait(api, "q4001", world.software)
    assert [(w["point_code"], w["level"], w["value"], w["state"]) for w in portrait["warnings"]] == [
        ("PR02", "red", 23, "handled")]
    assert [(c["code"], c["name"], c["level"]) for c in portrait["children"]] == [
        ("C-PY", "Python程序设计", "course"), ("C-WEB", "Web前端开发", "course")]
    assert portrait["subject"]["responsible"]["name"] == "张伟"


def test_aggregate_per_department_and_point(api, world):
    """College-wide programs: one per department, per point mean/min/max and subjects per state."""
    response = api.login("q4001").get(f"portraits?level=program&period={P2_PERIOD}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    units = {u["code"]: u for u in body["units"]}
    assert units["xxgc"]["by_level"] == {"program": 1} and units["jdgc"]["by_level"] == {"program": 1}
    assert units["xxgc"]["warnings"] == {"yellow": 0, "red": 1, "open": 0} and units["rsc"]["subjects"] == 0
    assert body["levels"] == [{"code": "program", "name": "专业", "subjects": 2}]
    points = {p["code"]: p for p in body["points"]}
    assert (points["PR01"]["mean"], points["PR01"]["min"], points["PR01"]["max"]) == (93, 91, 95)
    assert points["PR01"]["states"] == {"met": 1, "yellow": 1, "red": 0, "unmeasured": 0}
    assert points["PR02"]["states"] == {"met": 0, "yellow": 1, "red": 1, "unmeasured": 0}
    assert points["PR03"]["states"] == {"met": 0, "yellow": 1, "red": 0, "unmeasured": 1}


def test_aggregate_defaults_to_the_latest_period(api, world):
    """Without a period the aggregate uses the latest measured one."""
    body = api.login("q4001").get("portraits?level=program").get_json()
    assert body["period"] == P2_PERIOD


def test_drill_down_department_to_programs(api, world):
    """A department's aggregate lists its offices and, at program level, its programs with state counts."""
    body = api.login("q4001").get(f"portraits?org_unit={world.xxgc}&period={P2_PERIOD}").get_json()
    assert body["org_unit"]["code"] == "xxgc"
    assert {u["code"]: u["subjects"] for u in body["units"]}["xxgc-rj"] == 2
    assert {lv["code"]: lv["subjects"] for lv in body["levels"]} == {"course": 2, "program": 1}
    programs = api.get(f"portraits?org_unit={world.xxgc}&level=program&period={P2_PERIOD}").get_json()
    assert [(s["code"], s["states"], s["children"]) for s in programs["subjects"]["items"]] == [
        ("510201", {"met": 0, "yellow": 1, "red": 1}, 2)]


def test_drill_down_program_to_courses(api, world):
    """parent= aggregates over a program's children: its courses."""
    body = api.login("q4001").get(f"portraits?parent={world.software}").get_json()
    assert body["parent"]["name"] == "软件技术"
    assert [s["code"] for s in body["subjects"]["items"]] == ["C-PY", "C-WEB"]
    assert body["subjects"]["total"] == 2


@pytest.mark.parametrize("user, visible", [
    ("q4001", True), ("admin", True), ("d4002", True), ("h2001", True), ("t1001", True),
    ("h2002", False), ("t1002", False), ("20240101", False),
])
def test_portrait_access(api, world, user, visible):
    """All-seeing roles, the head of its department and its responsible person see a program; others get 404."""
    response = api.login(user).get(f"subjects/{world.software}/portrait")
    assert response.status_code == (200 if visible else 404)


def test_responsible_person_sees_own_course_only(api, world):
    """A course's responsible teacher sees that course but not its program nor another program."""
    api.login("t1002")
    assert api.get(f"subjects/{world.python}/portrait").status_code == 200
    assert api.get(f"subjects/{world.electric}/portrait").status_code == 404


def test_dept_head_aggregate_scope(api, world):
    """A department head's aggregate defaults to his department; another department is 404."""
    api.login("h2001")
    body = api.get("portraits").get_json()
    assert body["org_unit"]["code"] == "xxgc"
    assert api.get(f"portraits?org_unit={world.jdgc}").status_code == 404
    assert api.get(f"portraits?org_unit={world.xxgc_rj}").status_code == 200


def test_aggregate_refused_without_a_scope(api, world):
    """A teacher with no aggregate view gets 403 for the default scope and 404 for a unit."""
    api.login("t1002")
    assert api.get("portraits").status_code == 403
    assert api.get(f"portraits?org_unit={world.xxgc}").status_code == 404


def test_unknown_subject_and_bad_level(api, world):
    """An unknown subject is 404; an unknown level filter is 422."""
    api.login("q4001")
    assert api.get("subjects/999999/portrait").status_code == 404
    assert api.get("portraits?level=galaxy").status_code == 422


def test_portrait_requires_login(api, world):
    """Anonymous callers get 401."""
    assert api.get(f"subjects/{world.software}/portrait").status_code == 401
