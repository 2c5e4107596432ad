"""POST /measurements: a validated, all-or-nothing, idempotent batch with revisions kept."""

import sqlalchemy as sa

from hall.extensions import db
from hall.quality.models import Cycle, Measurement, MeasurementRevision
from tests.quality.core_factories import (
    count,
    make_point,
    make_subject,
    org_fixture,  # noqa: F401 - the `org` fixture
    user_id,
)


def _row(**kw):
    return {"subject": "510201", "level": "program", "point": "P-SSR", "period": "2025-2026", "value": 17,
            "source": "教务系统", **kw}


def test_batch_is_recorded_with_who_recorded_it(api, org):
    """Two rows (subject by code and by id) are created and carry recorded_by."""
    subject = make_subject()
    make_point()
    make_point("P-MASTER", "研究生学位教师占比", direction="higher", target=30, standard=15, warning=10)
    api.login("q4001")
    response = api.post("measurements", {"items": [_row(), _row(subject=subject.id, point="P-MASTER", value=20)]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == 2
    recorded = db.session.scalars(sa.select(Measurement.recorded_by_id)).all()
    assert recorded == [user_id("q4001")] * 2


def test_same_value_again_changes_nothing(api, org):
    """Pushing the same key and value twice leaves one row and no revision."""
    make_subject(), make_point()
    api.login("q4001")
    api.post("measurements", {"items": [_row()]})
    again = api.post("measurements", {"items": [_row()]}).get_json()
    assert again["unchanged"] == 1 and again["created"] == 0
    assert count(Measurement) == 1 and count(MeasurementRevision) == 0


def test_changed_value_updates_and_keeps_a_revision(api, org):
    """A different value for the same key replaces it; the old value is kept as a revision."""
    make_subject(), make_point()
    api.login("q4001")
    api.post("measurements", {"items": [_row(value=17)]})
    result = api.post("measurements", {"items": [_row(value=16.5)]}).get_json()
    assert result["updated"] == 1
    assert db.session.scalar(sa.select(Measurement.value)) == 16.5
    assert db.session.scalars(sa.select(MeasurementRevision.value)).all() == [17]


def test_other_source_is_a_separate_measurement(api, org):
    """The same subject, point and period from another source is its own row."""
    make_subject(), make_point()
    api.login("q4001")
    api.post("measurements", {"items": [_row(), _row(source="人事系统", value=17.5)]})
    assert count(Measurement) == 2


def test_one_bad_row_writes_nothing(api, org):
    """A batch with an unknown point in row 2 is refused whole with a row error; no row is written."""
    make_subject(), make_point()
    api.login("q4001")
    response = api.post("measurements", {"items": [_row(), _row(point="NOPE")]})
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"row": 2, "column": "point", "message": "质控点“NOPE”不存在"}]
    assert count(Measurement) == 0


def test_each_bad_field_is_reported_per_row(api, org):
    """Unknown subject, non-numeric value, bad period and a duplicate row each get their own error."""
    make_subject(), make_point()
    api.login("q4001")
    response = api.post("measurements", {"items": [
        _row(), _row(subject="999999"), _row(value="很多", period="2025-2027"), _row(),
    ]})
    assert response.status_code == 422
    errors = {(e["row"], e["column"]) for e in response.get_json()["errors"]}
    assert errors == {(2, "subject"), (3, "value"), (3, "period"), (4, "subject")}
    assert "与第 1 行重复" in response.get_json()["errors"][-1]["message"]
    assert count(Measurement) == 0


def test_period_must_match_the_cycle(api, org):
    """With a cycle given, a period other than the cycle's is refused."""
    make_subject(), make_point()
    cycle = Cycle(level_code="program", period="2025-2026", title="专业层面 2025-2026 学年")
    db.session.add(cycle)
    db.session.commit()
    api.login("q4001")
    response = api.post("measurements", {"cycle": cycle.id, "items": [_row(period="2024-2025")]})
    assert response.status_code == 422
    assert "不在本次诊改周期" in response.get_json()["errors"][0]["message"]
    assert api.post("measurements", {"cycle": cycle.id, "items": [_row()]}).status_code == 201


def test_bool_point_takes_only_zero_or_one(api, org):
    """A yes/no point refuses the value 2."""
    make_subject()
    make_point("P-PLAN", "人才培养方案已修订", direction="bool", target=1, standard=1, warning=None)
    api.login("q4001")
    response = api.post("measurements", {"items": [_row(point="P-PLAN", value=2)]})
    assert response.status_code == 422
    assert count(Measurement) == 0


def test_teacher_may_not_push_measurements(api, org):
    """Only the quality office, administrators (and later API clients) push measurements."""
    make_subject(), make_point()
    api.login("t1001")
    assert api.post("measurements", {"items": [_row()]}).status_code == 403
    assert count(Measurement) == 0
