"""The demo college (hall/quality/demo.py): idempotent, in the promised sizes, with warnings and a cycle.

The tests only read what one load() wrote, so the module loads once (a few seconds) rather than per test:
`clean_db` is overridden here to empty the tables once for the module instead of before every test.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hall.accounts.models import User
from hall.extensions import db
from hall.quality import cycles, demo
from hall.quality.models import LEVELS, Cycle, QualityWarning, Subject
from tests.conftest import reset_database


@pytest.fixture(scope="module")
def clean_db(app):
    """Empty tables once for this module (conftest's clean_db does it per test)."""
    reset_database(app)
    yield


@pytest.fixture(scope="module")
def counts_after_load(app, clean_db):
    """The demo college loaded once for the module; the counts load() returned."""
    with app.app_context():
        counts = demo.load()
        db.session.remove()
    return counts


@pytest.fixture
def loaded(counts_after_load, ctx):
    return counts_after_load


def test_loading_twice_changes_no_count(loaded):
    """A second load() finds everything in place and adds nothing."""
    assert demo.load() == loaded


def test_sizes_are_the_promised_ones(loaded):
    """About 10 programs, 60 courses, 150 teachers, 3,000 students and 20+ points over all five levels."""
    subjects = loaded["subjects"]
    assert subjects["institution"] == 1
    assert 8 <= subjects["program"] <= 12
    assert 50 <= subjects["course"] <= 70
    assert 130 <= subjects["teacher"] <= 170
    assert 2800 <= subjects["student"] <= 3200
    assert sum(loaded["points"].values()) >= 20
    assert set(loaded["points"]) == set(LEVELS)


def test_program_leaders_are_demo_logins(loaded):
    """Every program's responsible person signs in with the demo password; 软件技术 is led by t1001."""
    leaders = db.session.execute(sa.select(Subject.name, User).join(User, User.id == Subject.responsible_user_id)
                                 .where(Subject.level_code == "program")).all()
    assert len(leaders) == loaded["subjects"]["program"]
    assert all(user.check_password("hall2026") for _name, user in leaders)
    assert dict((name, user.username) for name, user in leaders)["软件技术"] == "t1001"


def test_this_years_warnings_have_handling_processes(loaded):
    """2025-2026 warnings exist and each active one has its handling process."""
    rows = db.session.execute(sa.select(QualityWarning.state, QualityWarning.instance_id)
                              .where(QualityWarning.period == demo.CYCLE_PERIOD)).all()
    assert len(rows) >= 10
    assert all(instance for state, instance in rows if state in ("open", "handling"))
    assert any(state == "handling" for state, _ in rows)


def test_program_cycle_has_units_at_three_or_more_steps(loaded):
    """The program level's 2025-2026 cycle is open, every program has a unit, at ≥ 3 different steps."""
    cycle = db.session.scalar(sa.select(Cycle).where(Cycle.level_code == "program", Cycle.period == demo.CYCLE_PERIOD))
    assert cycle is not None and cycle.state == "open"
    office = db.session.scalar(sa.select(User).where(User.username == "q4001"))
    progress = cycles.cycle_progress(cycle.id, office)
    assert progress["opened"] == loaded["subjects"]["program"]
    assert len([step for step, count in progress["by_step"].items() if count]) >= 3
    steps = {item["subject_name"]: (item["step"], item["grade"]) for item in progress["by_subject"]["items"]}
    assert steps["软件技术"] == ("diagnose", None)
    assert steps["大数据与会计"] == ("done", "良好")
