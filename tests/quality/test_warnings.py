"""Warnings, the small loop 监测 → 预警 → 改进: raised, escalated, not duplicated, handled, closed."""

import sqlalchemy as sa

from hall.extensions import db
from hall.processes.models import ProcessInstance
from hall.quality import warnings
from hall.quality.models import Measurement, QualityWarning
from hall.tasks.models import HumanTask
from tests.quality.core_factories import (
    count,
    make_point,
    make_subject,
    org_fixture,  # noqa: F401 - the `org` fixture
    user_id,
)


def _push(api, value, period="2025-2026", point="P-SSR", source="教务系统", subject="510201"):
    response = api.post("measurements", {"items": [{"subject": subject, "level": "program", "point": point,
                                                    "period": period, "value": value, "source": source}]})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _warnings():
    db.session.expire_all()
    return db.session.scalars(sa.select(QualityWarning).order_by(QualityWarning.id)).all()


def _my_task(api):
    inbox = api.get("tasks?view=open").get_json()
    assert inbox["total"] == 1, inbox
    return api.get(f"tasks/{inbox['items'][0]['id']}").get_json()


def _complete(api, data):
    task = _my_task(api)
    response = api.post(f"tasks/{task['id']}/complete", {"data": data, "version": task["version"]})
    assert response.status_code == 200, response.get_json()
    return task


def test_value_missing_the_standard_raises_a_yellow_warning(api, org):
    """生师比 19 against a standard of 18 (lower is better) raises one yellow warning with the lines."""
    make_subject(), make_point()
    api.login("q4001")
    assert _push(api, 19)["warnings_raised"] == 1
    (warning,) = _warnings()
    assert (warning.level, warning.value, warning.standard_value, warning.warning_value) == ("yellow", 19, 18, 22)


def test_value_past_the_warning_line_raises_a_red_warning(api, org):
    """生师比 23 passes the warning line 22: red."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 23)
    assert [w.level for w in _warnings()] == ["red"]


def test_value_meeting_the_standard_raises_nothing(api, org):
    """生师比 18 is on the standard line: no warning."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 18)
    assert _warnings() == []


def test_higher_is_better_point_warns_below_the_standard(api, org):
    """研究生学位教师占比 12% against standard 15 and warning 10: yellow; 9%: red."""
    make_subject()
    make_point("P-MASTER", "研究生学位教师占比", direction="higher", target=30, standard=15, warning=10, unit="%")
    make_subject("510202", "计算机网络技术专业", unit="xxgc-wl", responsible="t1002")
    api.login("q4001")
    _push(api, 12, point="P-MASTER")
    _push(api, 9, point="P-MASTER", subject="510202")
    assert [w.level for w in _warnings()] == ["yellow", "red"]


def test_bool_point_warns_on_zero(api, org):
    """A yes/no point with standard 1 raises a yellow warning for 0."""
    make_subject()
    make_point("P-PLAN", "人才培养方案已修订", direction="bool", target=1, standard=1, warning=None)
    api.login("q4001")
    _push(api, 0, point="P-PLAN")
    assert [w.level for w in _warnings()] == ["yellow"]


def test_subject_override_moves_the_standard_line(api, org):
    """With the subject's own standard of 16, a value of 17 (fine by default) raises a warning."""
    subject, point = make_subject(), make_point()
    api.login("q4001")
    api.put(f"monitoring-points/{point.id}/overrides/{subject.id}", {"target_value": 15, "standard_value": 16})
    _push(api, 17)
    (warning,) = _warnings()
    assert (warning.level, warning.standard_value) == ("yellow", 16)


def test_open_yellow_warning_escalates_to_red(api, org):
    """A corrected value past the warning line turns the same warning red; no second warning."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    _push(api, 23)
    (warning,) = _warnings()
    assert (warning.level, warning.value) == ("red", 23)


def test_re_evaluation_never_duplicates(api, org):
    """Evaluating again, and a second source for the same key, keep one warning and one process."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    _push(api, 20, source="人事系统")
    assert warnings.evaluate_warnings()["raised"] == 0
    assert len(_warnings()) == 1
    assert count(ProcessInstance) == 1


def test_latest_source_decides_the_level(api, org):
    """When two sources report a key, the latest measurement is the one evaluated."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 17, source="教务系统")
    _push(api, 19, source="人事系统")
    assert [w.value for w in _warnings()] == [19]


def test_warning_starts_a_handling_process_for_the_responsible_person(api, org):
    """The warning is assigned to the subject's responsible person, whose inbox holds 分析原因."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    (warning,) = _warnings()
    assert warning.assignee_id == user_id("t1001")
    assert warning.state == "handling" and warning.instance_id is not None
    instance = db.session.get(ProcessInstance, warning.instance_id)
    assert instance.subject_id == warning.subject_id
    api.login("t1001")
    task = _my_task(api)
    assert task["name"] == "分析原因"
    assert task["data"]["warning_id"] == warning.id and task["data"]["point_name"] == "生师比"


def test_warnings_list_filters_and_respects_visibility(api, org):
    """GET /warnings filters by level; a teacher sees only his own subjects' warnings."""
    make_subject(), make_point()
    make_subject("460301", "电气自动化技术专业", unit="jdgc-zdh", responsible="t1003")
    api.login("q4001")
    _push(api, 19)
    _push(api, 25, subject="460301")
    assert api.get("warnings").get_json()["total"] == 2
    assert [w["level"] for w in api.get("warnings?level=red").get_json()["items"]] == ["red"]
    api.login("t1001")
    mine = api.get("warnings").get_json()
    assert [w["subject_name"] for w in mine["items"]] == ["软件技术专业"]
    api.login("h2002")
    assert [w["subject_name"] for w in api.get("warnings").get_json()["items"]] == ["电气自动化技术专业"]


def test_the_small_loop_from_measurement_to_closed_warning(api, org):
    """Below standard → warning → owner analyses and plans, head returns once then confirms → handled →
    next period's measurement meets the standard → closed."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    (warning,) = _warnings()

    api.login("t1001")
    _complete(api, {"cause": "专任教师退休三人，招聘未到位", "cause_kind": "资源不足"})
    _complete(api, {"measures": "引进两名专任教师", "deadline": "2026-03-01"})
    api.login("h2001")
    review = _my_task(api)
    assert review["name"] == "审核确认"
    returned = api.post(f"tasks/{review['id']}/return", {"reason": "措施不够具体", "version": review["version"]})
    assert returned.status_code == 200, returned.get_json()
    api.login("t1001")
    _complete(api, {"measures": "引进两名专任教师，聘请三名企业兼职教师", "deadline": "2026-03-01"})
    api.login("h2001")
    _complete(api, {"review_decision": "approve", "review_opinion": "同意"})

    db.session.expire_all()
    assert db.session.get(ProcessInstance, warning.instance_id).state == "completed"
    assert _warnings()[0].state == "handled"

    api.login("q4001")
    _push(api, 17, period="2026-2027")
    (closed,) = _warnings()
    assert closed.state == "closed" and closed.closed_at is not None


def test_review_form_opens_with_its_only_choice_chosen(api, org):
    """审核确认 has one choice (同意; a change is asked for with 退回): the page opens with it checked, so the
    reviewer is not made to tick the only option before submitting."""
    import re

    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    api.login("t1001")
    _complete(api, {"cause": "专任教师退休三人，招聘未到位", "cause_kind": "资源不足"})
    _complete(api, {"measures": "引进两名专任教师", "deadline": "2026-03-01"})
    api.login("h2001")
    html = api.client.get(f"/tasks/{_my_task(api)['id']}").get_data(as_text=True)
    assert re.search(r'name="review_decision" value="approve"\s+checked', html), html


def test_handled_warning_stays_handled_while_data_is_still_bad(api, org):
    """A handled warning does not close when the next period is still below the standard."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    db.session.execute(sa.update(QualityWarning).values(state="handled"))
    db.session.commit()
    _push(api, 19.5, period="2026-2027")
    states = {w.period: w.state for w in _warnings()}
    assert states["2025-2026"] == "handled"


def test_open_warning_does_not_close_on_good_data(api, org):
    """A warning not yet handled stays in handling even when the data recovers."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    _push(api, 17, period="2026-2027")
    assert [w.state for w in _warnings()] == ["handling"]


def test_evaluation_is_set_based(app, org):
    """Evaluating many measurements runs a constant number of statements, not one per row."""
    from sqlalchemy import event

    point = make_point()
    subjects = [make_subject(f"S{n:03d}", f"专业{n}", responsible=None) for n in range(30)]
    for n, subject in enumerate(subjects):
        db.session.add(Measurement(subject_id=subject.id, point_id=point.id, period="2025-2026", value=15 + n % 10,
                                   source="x"))
    db.session.commit()
    statements = []
    listener = lambda *a, **k: statements.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        result = warnings.evaluate_warnings(start_processes=False)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert result["raised"] == 18  # values 19..24 are six in every ten
    assert len(statements) <= 5
    assert count(HumanTask) == 0


def test_the_person_warned_cannot_withdraw_the_handling_process(api, org):
    """撤销 on a warning-handling process is a 409 in Chinese that changes nothing; /mine offers no 撤销 for it."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    (warning,) = _warnings()
    api.login("t1001")
    response = api.post(f"process-instances/{warning.instance_id}/withdraw")
    assert response.status_code == 409 and "不能撤销" in response.get_json()["message"]
    (warning,) = _warnings()
    assert warning.state == "handling"
    assert db.session.get(ProcessInstance, warning.instance_id).state == "running"
    assert _my_task(api)["name"] == "分析原因"
    mine = api.get("/mine").get_data(as_text=True)
    assert "预警处置" in mine and "催办" in mine and "撤销" not in mine
    page = api.get(f"/instances/{warning.instance_id}").get_data(as_text=True)
    assert "撤销" not in page


def test_a_terminated_handling_process_returns_its_warning_to_open(api, org):
    """An administrator terminates the handling process: the warning is open again with no process, and the
    next evaluation starts a new handling process for it."""
    make_subject(), make_point()
    api.login("q4001")
    _push(api, 19)
    (warning,) = _warnings()
    first = warning.instance_id
    api.login("admin")
    response = api.post(f"process-instances/{first}/terminate", {"reason": "误报"})
    assert response.status_code == 200, response.get_json()
    (warning,) = _warnings()
    assert warning.state == "open" and warning.instance_id is None
    warnings.evaluate_warnings()
    (warning,) = _warnings()
    assert warning.state == "handling" and warning.instance_id not in (None, first)
    assert db.session.get(ProcessInstance, warning.instance_id).state == "running"
