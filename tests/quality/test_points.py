"""Levels, subjects (with who sees what), standards, monitoring points, overrides and targets via the API."""

from hall.quality.models import MonitoringPoint, PointOverride, Standard, Subject, Target
from tests.quality.core_factories import (
    count,
    make_point,
    make_subject,
    org_fixture,  # noqa: F401 - the `org` fixture
    unit_id,
)


def test_levels_lists_the_five_levels_in_order(api, org):
    """GET /levels returns the five levels (五横) with Chinese names, college first."""
    api.login("t1001")
    body = api.get("levels").get_json()
    assert [lv["code"] for lv in body] == ["institution", "program", "course", "teacher", "student"]
    assert body[1]["name"] == "专业"


def test_quality_office_creates_a_subject(api, org):
    """The quality office creates a program subject with its unit and responsible person."""
    api.login("q4001")
    response = api.post("subjects", {"level": "program", "code": "510201", "name": "软件技术专业",
                                     "org_unit": unit_id("xxgc-rj"), "responsible": "t1001"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["responsible"] == "t1001"


def test_teacher_may_not_create_a_subject(api, org):
    """A teacher is refused creating subjects and nothing is written."""
    api.login("t1001")
    response = api.post("subjects", {"level": "program", "code": "510201", "name": "软件技术专业"})
    assert response.status_code == 403
    assert count(Subject) == 0


def test_duplicate_subject_code_in_a_level_is_refused(api, org):
    """A second subject with the same level and code gets 422 naming the code."""
    make_subject()
    api.login("q4001")
    response = api.post("subjects", {"level": "专业", "code": "510201", "name": "重复"})
    assert response.status_code == 422
    assert "code" in response.get_json()["errors"]
    assert count(Subject) == 1


def test_subjects_are_visible_by_role(api, org):
    """Quality office sees all; a dept head his department's subtree; a teacher only his own subjects."""
    make_subject("510201", "软件技术专业", unit="xxgc-rj", responsible="t1001")
    make_subject("510202", "计算机网络技术专业", unit="xxgc-wl", responsible="t1002")
    make_subject("460301", "电气自动化技术专业", unit="jdgc-zdh", responsible="t1003")
    seen = {}
    for who in ("q4001", "h2001", "t1001", "20240101"):
        api.login(who)
        seen[who] = sorted(s["code"] for s in api.get("subjects").get_json()["items"])
    assert seen["q4001"] == ["460301", "510201", "510202"]
    assert seen["h2001"] == ["510201", "510202"]
    assert seen["t1001"] == ["510201"]
    assert seen["20240101"] == []


def test_subjects_filter_and_paginate(api, org):
    """Filters level, org_unit (subtree), q, and page_size/page with the total."""
    for n in range(5):
        make_subject(f"5102{n:02d}", f"专业{n}", unit="xxgc-rj")
    make_subject("C001", "程序设计基础", level="course", unit="xxgc-rj")
    api.login("q4001")
    page = api.get("subjects?level=program&page_size=2&page=2").get_json()
    assert page["total"] == 5 and len(page["items"]) == 2 and page["page"] == 2
    by_unit = api.get(f"subjects?org_unit={unit_id('xxgc')}").get_json()
    assert by_unit["total"] == 6
    assert api.get("subjects?q=程序").get_json()["items"][0]["code"] == "C001"


def test_standard_is_created_with_its_items(api, org):
    """A 运行标准 of the program level classified under 质量生成, with items."""
    api.login("q4001")
    response = api.post("standards", {"level": "program", "kind": "operation", "system": "generation",
                                      "code": "S-P-01", "title": "专业建设运行标准",
                                      "items": [{"code": "1", "text": "人才培养方案每年修订"}]})
    assert response.status_code == 201, response.get_json()
    listed = api.get("standards?level=program&kind=operation").get_json()
    assert listed[0]["items"][0]["text"] == "人才培养方案每年修订"


def test_standard_with_unknown_system_is_refused(api, org):
    """A system outside the five (五纵) is refused with 422."""
    api.login("q4001")
    response = api.post("standards", {"level": "program", "kind": "operation", "system": "finance",
                                      "code": "S-P-02", "title": "x"})
    assert response.status_code == 422
    assert count(Standard) == 0


POINT = {"level": "program", "element": "师资队伍", "code": "P-SSR", "name": "生师比", "direction": "lower",
         "target_value": 16, "standard_value": 18, "warning_value": 22}


def test_point_with_lines_in_order_is_created(api, org):
    """A lower-is-better point with target ≤ standard ≤ warning is created."""
    api.login("q4001")
    response = api.post("monitoring-points", POINT)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["standard_value"] == 18


def test_lower_point_with_lines_in_wrong_order_is_refused(api, org):
    """For lower-is-better, a warning line below the standard is refused with a Chinese message."""
    api.login("q4001")
    response = api.post("monitoring-points", {**POINT, "warning_value": 15})
    assert response.status_code == 422
    assert "越低越好" in response.get_json()["message"]
    assert count(MonitoringPoint) == 0


def test_higher_point_with_target_below_standard_is_refused(api, org):
    """For higher-is-better, a target below the standard is refused."""
    api.login("q4001")
    response = api.post("monitoring-points", {**POINT, "direction": "higher", "target_value": 10,
                                              "standard_value": 15, "warning_value": 8})
    assert response.status_code == 422
    assert "目标值 ≥ 标准值 ≥ 预警值" in response.get_json()["message"]


def test_bool_point_lines_must_be_zero_or_one(api, org):
    """A yes/no point with a standard of 2 is refused."""
    api.login("q4001")
    response = api.post("monitoring-points", {**POINT, "direction": "bool", "target_value": 1,
                                              "standard_value": 2, "warning_value": None})
    assert response.status_code == 422
    assert "0 或 1" in response.get_json()["message"]


def test_point_update_keeps_the_order_check(api, org):
    """PUT that would break the order is refused and the stored lines are unchanged."""
    point = make_point()
    api.login("q4001")
    assert api.put(f"monitoring-points/{point.id}", {"standard_value": 25}).status_code == 422
    assert api.get(f"monitoring-points/{point.id}").get_json()["standard_value"] == 18
    assert api.put(f"monitoring-points/{point.id}", {"standard_value": 20}).status_code == 200


def test_override_changes_effective_lines(api, org):
    """A subject's override replaces the default standard; GET effective shows the merge."""
    point, subject = make_point(), make_subject()
    api.login("q4001")
    response = api.put(f"monitoring-points/{point.id}/overrides/{subject.id}", {"standard_value": 17})
    assert response.status_code == 200, response.get_json()
    lines = api.get(f"monitoring-points/{point.id}/effective?subject={subject.id}").get_json()
    assert lines == {"point_id": point.id, "subject_id": subject.id, "direction": "lower", "target_value": 16,
                     "standard_value": 17, "warning_value": 22, "overridden": True}


def test_override_breaking_the_order_is_refused(api, org):
    """An override whose effective standard passes the default warning line is refused, nothing stored."""
    point, subject = make_point(), make_subject()
    api.login("q4001")
    response = api.put(f"monitoring-points/{point.id}/overrides/{subject.id}", {"standard_value": 23})
    assert response.status_code == 422
    assert "越低越好" in response.get_json()["message"]
    assert count(PointOverride) == 0


def test_child_target_breaks_down_the_parent_subjects_target(api, org):
    """A program's target may have the institution's target as parent; an unrelated subject's may not."""
    college = make_subject("C", "学院", level="institution", unit="college", responsible="admin")
    program = make_subject(parent_id=college.id)
    other = make_subject("460301", "电气自动化技术专业", unit="jdgc-zdh", responsible="t1003")
    api.login("q4001")
    top = api.post("targets", {"subject": college.id, "period": "2025-2026", "text": "生师比不高于 18"}).get_json()
    child = api.post("targets", {"subject": program.id, "period": "2025-2026", "text": "生师比降至 16",
                                 "parent": top["id"]})
    assert child.status_code == 201, child.get_json()
    stray = api.post("targets", {"subject": other.id, "period": "2025-2026", "text": "x",
                                 "parent": child.get_json()["id"]})
    assert stray.status_code == 422
    assert "parent" in stray.get_json()["errors"]
    assert count(Target) == 2


def test_target_period_must_be_well_formed(api, org):
    """A period like 2025 is refused with the expected format in the message."""
    subject = make_subject()
    api.login("t1001")
    response = api.post("targets", {"subject": subject.id, "period": "2025", "text": "x"})
    assert response.status_code == 422
    assert "2025-2026" in response.get_json()["errors"]["period"][0]
