"""What a person's start may name: only processes offered in 办事, only units of their own, only quality
subjects they are responsible for; the hall's own starts are not limited. And what a submit may carry: no
field the hall fills (readOnly)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from hall.errors import Invalid
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.tasks.services import validate_form

FORMS = Path(__file__).resolve().parent.parent / "forms"


def _unit(code: str) -> int:
    return db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == code))


@pytest.mark.parametrize("key", ["diagnosis_cycle", "warning_handling"])
def test_a_process_the_hall_starts_itself_cannot_be_started_by_a_person(api, demo, key):
    """诊改 cycles and warning handling are not in 办事: a student's or teacher's POST is 403 with the reason
    and starts nothing (their data would name another subject's cycle or warning)."""
    for username in ("20240101", "t1001"):
        api.login(username)
        response = api.post("process-instances", {"definition": key, "data": {"subject_id": 1, "cycle_id": 1}})
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["message"] == "此流程由大厅自动发起，不能手动发起"
        assert api.get(f"process-instances?starter={username}").get_json()["total"] == 0


def test_a_leave_starts_only_in_the_applicants_own_unit(api, demo):
    """t1001 (软件技术教研室, 信息工程学院) may not start a leave in 机电工程学院 to have its head approve it
    (422 on org_unit, nothing started, h2002 gets nothing), nor in the college at large, where no head of a
    department is nearest; a unit that does not exist is 422, not a 500; the own unit is accepted."""
    api.login("t1001")
    for unit in (_unit("jdgc"), _unit("college"), _unit("xxgc"), 999_999):
        response = api.post("process-instances", {"definition": "leave_request", "org_unit": unit})
        assert response.status_code == 422 and "org_unit" in response.get_json()["errors"], response.get_json()
    assert api.get("process-instances?starter=t1001").get_json()["total"] == 0
    assert api.post("process-instances", {"definition": "leave_request",
                                          "org_unit": _unit("xxgc-rj")}).status_code == 201
    api.login("h2002")
    assert api.get("tasks?view=open").get_json()["items"] == []


def test_an_administrator_may_start_in_any_unit_that_exists(api, demo):
    """The administrator's start in 机电工程学院 is accepted; in a unit that does not exist it is 422."""
    api.login("admin")
    assert api.post("process-instances", {"definition": "leave_request", "org_unit": _unit("jdgc")}).status_code == 201
    missing = api.post("process-instances", {"definition": "leave_request", "org_unit": 999_999})
    assert missing.status_code == 422 and missing.get_json()["errors"] == {"org_unit": ["部门不存在"]}


def test_a_subject_is_named_only_by_its_responsible_person(api, demo):
    """A teacher naming a quality subject they are not responsible for (here: one that does not exist) is
    refused with 422 on `subject`."""
    api.login("t1001")
    response = api.post("process-instances", {"definition": "leave_request", "subject": 424242})
    assert response.status_code == 422 and "subject" in response.get_json()["errors"]


def test_fields_the_hall_fills_cannot_be_submitted():
    """The 诊断 form's measured values (readOnly) sent with a submit are refused on that field; the text the
    person writes is accepted alone."""
    schema = json.loads((FORMS / "diagnosis_diagnose.json").read_text(encoding="utf-8"))
    with pytest.raises(Invalid) as refused:
        validate_form(schema, {"diagnosis_text": "达成情况良好", "diagnosis_points": [{"name": "x", "value": 99}]})
    assert refused.value.errors == {"diagnosis_points": ["此字段由系统填写，不能修改"]}
    validate_form(schema, {"diagnosis_text": "达成情况良好"})
