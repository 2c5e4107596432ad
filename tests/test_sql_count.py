"""SQL statements per task submit: few (DESIGN §9 budget: at most 10) and independent of the instance's age."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa

from hall.extensions import db
from tests.conftest import bpmn_sequence

BUDGET = 10


@contextlib.contextmanager
def counting(app):
    """Collect the SQL statements the app's engine sends while the block runs."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def _submit(api, app, again: bool = True) -> tuple[dict, list[str]]:
    """Submit the signed-in person's only open task; returns the response body and the statements sent."""
    task = api.get("tasks?view=mine").get_json()["items"][0]
    with counting(app) as statements:
        response = api.post(f"tasks/{task['id']}/complete", {"data": {"again": again}, "version": task["version"]})
    assert response.status_code == 200, response.get_json()
    return response.get_json(), statements


@pytest.fixture
def looping_instance(app, api, uncached_user):
    """A started instance of a one-task loop that t1001 works; each submit with again=True offers it anew.

    Set up in an app context that is closed again, so each API call below gets its own session, as in a
    server (a shared context would keep the signed-in user cached and hide the statements that load it)."""
    from hall.org.demo import load_demo_organisation
    from hall.processes import services

    with app.app_context():
        load_demo_organisation()
        services.deploy({"loop1.bpmn": bpmn_sequence("loop1", 1, loop=True)}, {})
        db.session.remove()
    api.login("t1001")
    started = api.post("process-instances", {"definition": "loop1", "data": {}})
    assert started.status_code == 201, started.get_json()
    return started.get_json()


@pytest.fixture
def uncached_user(app):
    """Every request reads the signed-in user's row, as it does whenever the process's cached copy has expired
    (hall/accounts/cache.py): the counts below are the worst case, and do not depend on timing."""
    cache = app.extensions["hall.user_cache"]
    seconds, cache.seconds = cache.seconds, 0
    yield
    cache.seconds = seconds


def test_submit_stays_within_the_statement_budget(api, app, looping_instance):
    """A task submit over the API sends at most 10 SQL statements, sign-in check and commit included."""
    _, statements = _submit(api, app)
    assert len(statements) <= BUDGET, "\n".join(s[:150].replace("\n", " ") for s in statements)


def test_statement_count_does_not_grow_with_instance_age(api, app, looping_instance):
    """The 100th submit of a looping instance sends exactly as many statements as the 1st."""
    _, first = _submit(api, app)
    for _ in range(98):
        _submit(api, app)
    _, hundredth = _submit(api, app)
    assert len(hundredth) == len(first), "\n".join(hundredth)
