"""Fixtures: an app on a real database (a SQLite file, or PostgreSQL when HALL_TEST_DATABASE_URL is set),
migrated once per session with Alembic and emptied between tests, plus factories for people and flows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from hall import create_app
from hall.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("HALL_TEST_DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    return f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("hall")
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": _database_url(root),
        "INSTANCE_PATH": str(root),
        "ATTACHMENT_DIR": str(root / "attachments"),
        "SECRET_KEY": "test-secret",
        "MAX_ATTACHMENT_BYTES": 256 * 1024,
    })
    with app.app_context():
        from flask_migrate import downgrade, upgrade

        # Start from nothing, then exercise the migrations: upgrade, downgrade one step, upgrade again.
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # drop_all would try to drop the definitions -> versions key, which the migration lacks.
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        downgrade(revision="-1")
        upgrade()
    yield app


def reset_database(app) -> None:
    """Empty every table, and the process caches keyed by row ids (spec registry, signed-in users), since
    ids restart: the one way tests start over, per test (clean_db) or per module."""
    from hall.accounts import cache as user_cache
    from hall.processes import registry

    with app.app_context():
        tables = [t for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                # Definitions and versions point at each other; break the cycle before deleting.
                conn.execute(sa.text("UPDATE process_definitions SET latest_version_id = NULL"))
                for table in tables:
                    conn.execute(table.delete())
        registry.clear()
        user_cache.forget_everything()


@pytest.fixture(autouse=True)
def clean_db(app):
    """Each test starts on empty tables (and empty spec and user caches, since ids restart)."""
    reset_database(app)
    yield


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def demo(app, ctx):
    """The demo organisation and the shipped flows, deployed."""
    from hall.org.demo import load_demo_organisation
    from hall.processes import services

    load_demo_organisation()
    services.deploy_directory(app.config["WORKFLOWS_DIR"], app.config["FORMS_DIR"])


class Api:
    """A signed-in API client: `api.post(path, json)` returns the response; `login` switches people.
    State-changing requests carry the session's CSRF token (from the sign-in response) like a real client."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.csrf: str | None = None

    def login(self, username: str, password: str = "hall2026"):
        self._fresh().post("/api/v1/auth/logout", headers=self._csrf_header())
        response = self._fresh().post("/api/v1/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        self.csrf = response.get_json()["csrf_token"]
        return self

    def _csrf_header(self, headers=None) -> dict:
        headers = dict(headers or {})
        if self.csrf:
            headers.setdefault("X-CSRF-Token", self.csrf)
        return headers

    def _fresh(self):
        # Requests made while a test holds an app context share its `g`, where Flask-Login caches the
        # user; forget it so each client acts as the person its own session cookie says.
        from flask import g, has_app_context

        if has_app_context():
            g.pop("_login_user", None)
        return self.client

    def get(self, path, **kw):
        return self._fresh().get(_p(path), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self._fresh().post(_p(path), json=json, headers=self._csrf_header(headers), **kw)

    def put(self, path, json=None, headers=None, **kw):
        return self._fresh().put(_p(path), json=json, headers=self._csrf_header(headers), **kw)

    def patch(self, path, json=None, headers=None, **kw):
        return self._fresh().patch(_p(path), json=json, headers=self._csrf_header(headers), **kw)

    def delete(self, path, headers=None, **kw):
        return self._fresh().delete(_p(path), headers=self._csrf_header(headers), **kw)


def _p(path: str) -> str:
    return path if path.startswith("/") else "/api/v1/" + path


@pytest.fixture
def api(app):
    return Api(app)


@pytest.fixture
def make_api(app):
    return lambda: Api(app)


def bpmn_sequence(process_id: str, steps: int, loop: bool = False, lane: str | None = None,
                  script: str | None = None, extra_props: str = "") -> bytes:
    """A diagram of `steps` sequential user tasks; with loop=True an exclusive gateway goes back to the
    first task while `again` is true; `script` adds a script task after the last user task."""
    from xml.sax.saxutils import escape

    tasks, flows, prev = [], [], "start"
    for i in range(1, steps + 1):
        tasks.append(f'<bpmn:userTask id="t{i}" name="步骤{i}">{extra_props}</bpmn:userTask>')
        flows.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{prev}" targetRef="t{i}"/>')
        prev = f"t{i}"
    extra = ""
    if script is not None:
        extra += (f'<bpmn:scriptTask id="script1" name="脚本"><bpmn:script>{escape(script)}</bpmn:script>'
                  '</bpmn:scriptTask>')
        flows.append(f'<bpmn:sequenceFlow id="fs" sourceRef="{prev}" targetRef="script1"/>')
        prev = "script1"
    if loop:
        extra += '<bpmn:exclusiveGateway id="gw" default="fend"/>'
        flows.append(f'<bpmn:sequenceFlow id="fg" sourceRef="{prev}" targetRef="gw"/>')
        flows.append('<bpmn:sequenceFlow id="fback" sourceRef="gw" targetRef="t1">'
                     '<bpmn:conditionExpression>again</bpmn:conditionExpression></bpmn:sequenceFlow>')
        flows.append('<bpmn:sequenceFlow id="fend" sourceRef="gw" targetRef="end"/>')
    else:
        flows.append(f'<bpmn:sequenceFlow id="fend" sourceRef="{prev}" targetRef="end"/>')
    lanes = ""
    if lane:
        refs = "".join(f"<bpmn:flowNodeRef>t{i}</bpmn:flowNodeRef>" for i in range(1, steps + 1))
        lanes = f'<bpmn:laneSet id="ls"><bpmn:lane id="lane1" name="{lane}">{refs}</bpmn:lane></bpmn:laneSet>'
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://hall.test">
  <bpmn:process id="{process_id}" name="测试流程{steps}" isExecutable="true">{lanes}
    <bpmn:startEvent id="start"/>{''.join(tasks)}{extra}<bpmn:endEvent id="end"/>{''.join(flows)}
  </bpmn:process>
</bpmn:definitions>'''.encode()


@pytest.fixture
def deploy_bpmn(app, ctx):
    """Deploy diagram bytes (and forms) as the system; returns the version."""
    from hall.processes import services

    def deploy(content: bytes, forms: dict | None = None, name: str = "test.bpmn"):
        version, _ = services.deploy({name: content}, forms or {})
        return version

    return deploy
