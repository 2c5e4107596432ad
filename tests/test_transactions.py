"""How requests end their transactions (hall/transactions.py): read-only ones commit on PostgreSQL, so psycopg
keeps its prepared statements; anything that wrote is still rolled back when the request does not commit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hall import transactions
from hall.extensions import db
from hall.processes.models import ProcessDefinition


def _postgres(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


def test_a_request_that_only_read_ends_with_commit(app, demo):
    with app.test_request_context():
        db.session.execute(sa.select(ProcessDefinition.id)).all()
        transactions._end_read_only(None)
        assert not db.session().in_transaction()  # committed
        db.session.remove()


def test_a_request_that_wrote_is_left_to_roll_back(app, demo):
    with app.test_request_context():
        db.session.execute(sa.update(ProcessDefinition).values(name="改过"))
        transactions._end_read_only(None)
        assert db.session().in_transaction()
        db.session.remove()  # what Flask-SQLAlchemy does at the end of the request: roll back
    with app.app_context():
        assert "改过" not in db.session.scalars(sa.select(ProcessDefinition.name)).all()


def test_a_request_that_failed_or_left_changes_is_left_to_roll_back(app, demo):
    with app.test_request_context():
        db.session.execute(sa.select(ProcessDefinition.id)).all()
        transactions._end_read_only(RuntimeError("the view failed"))
        assert db.session().in_transaction()
        db.session.remove()
    with app.test_request_context():
        definition = db.session.scalars(sa.select(ProcessDefinition)).first()
        definition.name = "未保存"
        transactions._end_read_only(None)
        assert db.session().in_transaction()
        db.session.remove()
    with app.app_context():
        assert "未保存" not in db.session.scalars(sa.select(ProcessDefinition.name)).all()


def test_prepared_statements_survive_read_requests(app, api):
    """The same read, repeated over requests, is prepared once per connection and stays prepared (before,
    each request's closing ROLLBACK made psycopg forget it). Each request here has its own app context and
    session, as in a server. SQLite: the requests work as before."""
    from hall.org.demo import load_demo_organisation

    with app.app_context():
        load_demo_organisation()
        db.session.remove()
    api.login("t1001")
    # Enough for every pooled connection to run the inbox's statements more than psycopg's threshold (5).
    for _ in range(40):
        assert api.get("tasks?view=mine").status_code == 200
    if not _postgres(app):
        return
    with app.app_context():
        prepared = db.session.execute(sa.text("SELECT statement FROM pg_prepared_statements")).scalars().all()
        db.session.remove()
    assert any("FROM human_tasks" in statement for statement in prepared), prepared


def _started(app, api, key: str) -> dict:
    """The demo people and a two-step process *key*, started by t1001: their open task, as the API lists it."""
    from hall.org.demo import load_demo_organisation
    from hall.processes import services as processes
    from tests.conftest import bpmn_sequence

    with app.app_context():
        load_demo_organisation()
        processes.deploy({f"{key}.bpmn": bpmn_sequence(key, 2)}, {})
        db.session.remove()
    api.login("t1001")
    assert api.post("process-instances", {"definition": key, "data": {}}).status_code == 201
    return api.get("tasks?view=mine").get_json()["items"][0]


def test_a_submit_leaves_the_session_without_its_autocommit_connection(app, api):
    """After complete_task the caller's next writes are in a plain transaction again: a job that submits a
    task and then writes two rows must not have them committed one by one."""
    from hall.accounts.models import User
    from hall.tasks import services as tasks

    task = _started(app, api, "after_submit")
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.username == "t1001")).one()
        db.session.commit()  # as a job starts: nothing read in the transaction yet
        tasks.complete_task(task["id"], user, {"ok": True}, task["version"])
        assert not db.session().in_transaction()
        db.session.execute(sa.update(ProcessDefinition).values(name="未提交"))
        assert getattr(db.session.connection().connection.dbapi_connection, "autocommit", False) is False
        db.session.rollback()
        assert "未提交" not in db.session.scalars(sa.select(ProcessDefinition.name)).all()
        db.session.remove()


def test_a_submit_uses_a_pooled_autocommit_connection_and_gives_it_back(app, api):
    """On PostgreSQL a submit that comes first in its request reads and writes on a pooled connection of its
    own in autocommit mode (hall.rawsql.direct), never the session's; afterwards the connection is back in
    the pool in its usual mode, with no write mark left on it, and the completion is visible to others."""
    from hall.accounts.models import User
    from hall.tasks import services as tasks
    from hall.tasks.models import HumanTask

    task = _started(app, api, "direct_submit")
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.username == "t1001")).one()
        db.session.commit()
        pool = db.engine.pool
        checked_out = pool.checkedout()
        seen = []

        def note(conn, *_args):
            seen.append(conn)

        sa.event.listen(db.engine, "before_cursor_execute", note)
        try:
            tasks.complete_task(task["id"], user, {"ok": True}, task["version"])
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", note)
        assert transactions._connection_in_use(db.session()) is None
        assert pool.checkedout() == checked_out
        if _postgres(app):
            # The read and the write (the session may read the person's memberships in between).
            direct = [conn for conn in seen if not isinstance(conn, sa.engine.Connection)]
            assert len(direct) == 2 and seen[0] is direct[0] and seen[-1] is direct[1], seen
            with db.engine.connect() as conn:  # the pooled connection just given back
                assert conn.connection.dbapi_connection.autocommit is False
                assert transactions.WROTE not in conn.info
        db.session.remove()
    with app.app_context():
        assert db.session.get(HumanTask, task["id"]).state == "completed"
        db.session.remove()


def test_a_submit_after_the_database_dropped_its_connections_fails_once_then_works(app, api):
    """PostgreSQL restarted (here: every connection of the app cut by the server): the first submit gets an
    error and writes nothing, the pool drops its stale connections, the next submit completes the task
    once. SQLite has no server connection to lose."""
    import psycopg

    if not _postgres(app):
        pytest.skip("PostgreSQL only: an embedded SQLite database has no server connection to lose")
    task = _started(app, api, "cut_off")
    with app.app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    assert cut >= 1
    with pytest.raises(psycopg.OperationalError):  # a 500 in production; the tests let errors through
        api.post(f"tasks/{task['id']}/complete", {"data": {"ok": True}, "version": task["version"]})
    again = api.post(f"tasks/{task['id']}/complete", {"data": {"ok": True}, "version": task["version"]})
    assert again.status_code == 200, again.get_json()
    assert api.get(f"tasks/{task['id']}").get_json()["state"] == "completed"
    history = api.get(f"process-instances/{task['instance_id']}").get_json()["history"]
    assert [event["kind"] for event in history].count("task_completed") == 1
