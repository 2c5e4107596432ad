"""API tokens: created by administrators, shown once, stored hashed, scoped, expiring, revocable."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hall.accounts.tokens import ApiToken
from hall.audit.models import AuditEvent
from hall.db_types import utcnow
from hall.extensions import db
from hall.quality.models import Measurement


@pytest.fixture
def admin(app, api):
    """The demo college with a subject and a monitoring point to measure; the API client signed in as admin."""
    from hall.org.demo import load_demo_organisation
    from tests.quality.core_factories import make_point, make_subject

    with app.app_context():
        load_demo_organisation()
        make_subject(), make_point()
        db.session.commit()
    return api.login("admin")


ROW = {"subject": "510201", "level": "program", "point": "P-SSR", "period": "2025-2026", "value": 17,
       "source": "教务系统"}


def _create(api, **kw) -> dict:
    body = {"name": "教务系统", "scopes": ["measurements:write"], "expires_in_days": 30, **kw}
    response = api.post("tokens", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _push(app, secret: str, path="/api/v1/measurements", method="post"):
    """A request of an integration: no cookie, only the bearer token."""
    client = app.test_client()
    return getattr(client, method)(path, json={"items": [ROW]}, headers={"Authorization": f"Bearer {secret}"})


def _in_db(app, statement):
    with app.app_context():
        return db.session.execute(statement).all()


def _events(app, kind: str) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)).all()


def _measurements(app) -> int:
    return _in_db(app, sa.select(sa.func.count()).select_from(Measurement))[0][0]


def test_secret_is_shown_once(admin):
    """The creation response carries the secret; the list shows the token without it."""
    created = _create(admin)
    assert created["token"].startswith("hall_" + created["prefix"] + "_")
    listed = admin.get("tokens").get_json()["items"]
    assert [t["prefix"] for t in listed] == [created["prefix"]]
    assert "token" not in listed[0] and created["token"] not in str(listed)


def test_token_is_stored_as_its_hash_only(app, admin):
    """The row holds the SHA-256 of the token and nowhere the secret itself."""
    created = _create(admin)
    (row,) = _in_db(app, sa.select(ApiToken))
    token = row[0]
    assert token.token_hash == hashlib.sha256(created["token"].encode()).hexdigest()
    secret_part = created["token"].rsplit("_", 1)[1]
    assert all(secret_part not in str(getattr(token, c.key)) for c in ApiToken.__table__.columns)


def test_only_administrators_create_tokens(app, api, admin):
    """A teacher asking for a token gets 403, no token is made, and the refusal is logged."""
    api.login("t1001")
    response = api.post("tokens", {"name": "x", "scopes": ["measurements:write"]})
    assert response.status_code == 403
    assert _in_db(app, sa.select(ApiToken.id)) == []
    assert [e.actor for e in _events(app, "permission_denied")] == ["t1001"]


def test_unknown_scope_is_refused(app, admin):
    """A scope no endpoint declares is a 422 naming the field."""
    response = admin.post("tokens", {"name": "x", "scopes": ["everything"]})
    assert response.status_code == 422 and "scopes" in response.get_json()["errors"]


def test_token_records_measurements_as_its_creator(app, admin):
    """A token with measurements:write pushes a batch; the rows are recorded by the creating admin."""
    created = _create(admin)
    response = _push(app, created["token"])
    assert response.status_code == 201, response.get_json()
    assert "Set-Cookie" not in response.headers  # a token request opens no session
    from hall.accounts.models import User

    recorded_by = _in_db(app, sa.select(User.username).join(Measurement, Measurement.recorded_by_id == User.id))
    assert recorded_by == [("admin",)]
    assert [e.detail["token"] for e in _events(app, "token_used")] == [created["prefix"]]


def test_last_use_is_recorded(app, admin):
    """After a use the list shows when and from where the token was last used."""
    created = _create(admin)
    assert admin.get("tokens").get_json()["items"][0]["last_used_at"] is None
    _push(app, created["token"])
    listed = admin.get("tokens").get_json()["items"][0]
    assert listed["last_used_at"] is not None and listed["last_used_ip"] == "127.0.0.1"


def test_token_is_refused_outside_its_scope(app, admin):
    """A token on an endpoint that declares no scope of it (starting a process) is a logged 403."""
    created = _create(admin)
    client = app.test_client()
    response = client.post("/api/v1/process-instances", json={"definition": "leave", "data": {}},
                           headers={"Authorization": f"Bearer {created['token']}"})
    assert response.status_code == 403
    denied = _events(app, "permission_denied")
    assert [(e.actor, e.detail["token"], e.path) for e in denied] == [("admin", created["prefix"],
                                                                        "/api/v1/process-instances")]
    assert _events(app, "token_used") == []


def test_token_cannot_read_what_it_was_not_given(app, admin):
    """A measurements:write token cannot list the tokens (or anything else)."""
    created = _create(admin)
    response = _push(app, created["token"], path="/api/v1/tokens", method="get")
    assert response.status_code == 403


def test_expired_token_is_refused(app, admin):
    """A token past its expiry answers 401, records nothing and is logged with the reason."""
    created = _create(admin)
    with app.app_context():
        db.session.execute(sa.update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert _push(app, created["token"]).status_code == 401
    assert _measurements(app) == 0
    assert [(e.detail["reason"], e.detail["prefix"]) for e in _events(app, "token_refused")] == [
        ("expired", created["prefix"])]


def test_revoked_token_is_refused(app, admin):
    """DELETE revokes a token: its next use answers 401 and changes nothing; both are logged."""
    created = _create(admin)
    revoked = admin.delete(f"tokens/{created['id']}")
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    assert _push(app, created["token"]).status_code == 401
    assert _measurements(app) == 0
    assert [e.detail["prefix"] for e in _events(app, "token_revoked")] == [created["prefix"]]
    assert [e.detail["reason"] for e in _events(app, "token_refused")] == ["revoked"]


def test_forged_token_is_refused(app, admin):
    """The right prefix with a made-up secret answers 401 and is logged as forged."""
    created = _create(admin)
    forged = created["token"][:-4] + ("AAAA" if not created["token"].endswith("AAAA") else "BBBB")
    assert _push(app, forged).status_code == 401
    assert _push(app, "not-a-token").status_code == 401
    assert _measurements(app) == 0
    assert [e.detail["reason"] for e in _events(app, "token_refused")] == ["forged", "malformed"]


def test_token_stops_when_its_creator_is_no_longer_admin(app, admin):
    """Deactivating the creating administrator takes the token's power away (401)."""
    created = _create(admin)
    from hall.accounts.models import User

    with app.app_context():
        db.session.execute(sa.update(User).where(User.username == "admin").values(active=False))
        db.session.commit()
    assert _push(app, created["token"]).status_code == 401
    assert _measurements(app) == 0
