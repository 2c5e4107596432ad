"""The audit log: sign-ins, failures, sign-outs and refusals are recorded; administrators read and filter it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from hall.audit.models import AuditEvent
from hall.extensions import db


@pytest.fixture
def people(app):
    """The demo college's people (password hall2026)."""
    from hall.org.demo import load_demo_organisation

    with app.app_context():
        load_demo_organisation()


def _kinds(app) -> list[tuple[str, str | None]]:
    with app.app_context():
        return db.session.execute(sa.select(AuditEvent.kind, AuditEvent.actor).order_by(AuditEvent.id)).all()


def _page_csrf(client) -> str:
    client.get("/login")
    with client.session_transaction() as session:
        return session["_csrf"]


def test_api_sign_in_failure_and_sign_out_are_recorded(app, people, api):
    """A wrong password, a sign-in and a sign-out through the API leave three events, in order."""
    assert api.client.post("/api/v1/auth/login", json={"username": "t1001", "password": "x"}).status_code == 401
    api.login("t1001")
    api.post("auth/logout")
    assert _kinds(app) == [("sign_in_failed", "t1001"), ("sign_in", "t1001"), ("sign_out", "t1001")]


def test_event_carries_address_browser_and_path(app, people):
    """A sign-in records where it came from: address, user agent and path."""
    client = app.test_client()
    client.post("/api/v1/auth/login", json={"username": "t1001", "password": "hall2026"},
                headers={"User-Agent": "Mozilla/5.0 企业微信"})
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent))
        assert (event.ip, event.user_agent, event.method, event.path) == (
            "127.0.0.1", "Mozilla/5.0 企业微信", "POST", "/api/v1/auth/login")


def test_page_sign_in_and_sign_out_are_recorded(app, people):
    """Signing in and out through the pages is recorded like the API's."""
    client = app.test_client()
    client.post("/login", data={"_csrf": _page_csrf(client), "username": "h2001", "password": "hall2026"})
    with client.session_transaction() as session:
        token = session["_csrf"]
    client.post("/logout", data={"_csrf": token})
    assert _kinds(app) == [("sign_in", "h2001"), ("sign_out", "h2001")]


def test_permission_denial_is_recorded(app, people, api):
    """A 403 (a teacher reading the audit log) is recorded with who and what."""
    api.login("t1001")
    assert api.get("audit").status_code == 403
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.kind == "permission_denied"))
        assert (event.actor, event.path, event.detail["message"]) == ("t1001", "/api/v1/audit",
                                                                       "只有系统管理员可以查看审计日志")


def test_audit_log_is_for_administrators_only(app, people, api):
    """Administrators read the log; a quality office member does not."""
    api.login("q4001")
    assert api.get("audit").status_code == 403
    api.login("admin")
    body = api.get("audit").get_json()
    assert body["total"] == len(body["items"]) >= 1


def test_audit_log_filters_by_kind_and_actor(app, people, api, make_api):
    """kind= and actor= narrow the list; newest first."""
    other = make_api()
    other.client.post("/api/v1/auth/login", json={"username": "t1001", "password": "x"})
    other.login("t1001")
    other.login("h2001")
    api.login("admin")
    failed = api.get("audit?kind=sign_in_failed").get_json()
    assert [(e["kind"], e["actor"]) for e in failed["items"]] == [("sign_in_failed", "t1001")]
    by_t1001 = api.get("audit?actor=t1001").get_json()["items"]
    assert [e["kind"] for e in by_t1001] == ["sign_out", "sign_in", "sign_in_failed"]


def test_audit_log_filters_by_time(app, people, api):
    """since= is inclusive and until= exclusive; an event outside the range is left out."""
    api.login("t1001")
    with app.app_context():
        db.session.execute(sa.update(AuditEvent).values(at=datetime(2026, 1, 1, 8, tzinfo=UTC)))
        db.session.commit()
    api.login("admin")
    old = api.get("audit", query_string={"since": "2026-01-01T08:00:00+00:00",
                                         "until": "2026-01-01T09:00:00+00:00"}).get_json()
    assert [(e["kind"], e["actor"]) for e in old["items"]] == [("sign_in", "t1001")]
    recent = api.get("audit", query_string={"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
    assert ("sign_in", "t1001") not in [(e["kind"], e["actor"]) for e in recent.get_json()["items"]]


def test_audit_log_pages(app, people, api):
    """page and page_size cut the list; total counts all matching events."""
    for _ in range(3):
        api.login("t1001")
    api.login("admin")
    page = api.get("audit?kind=sign_in&page=2&page_size=2").get_json()
    assert (page["total"], len(page["items"]), page["page"]) == (4, 2, 2)


def test_unknown_kind_is_refused(app, people, api):
    """A kind the log does not know is a 422, not an empty list."""
    api.login("admin")
    assert api.get("audit?kind=nonsense").status_code == 422
