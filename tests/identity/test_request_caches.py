"""The per-process caches of a request's fixed work: the verified session cookie and the signed-in user's
row (hall/security.py HallSessionInterface, hall/accounts/cache.py). They save work, never a check."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from hall.accounts import cache as user_cache
from hall.accounts import services as accounts
from hall.accounts.models import User
from hall.extensions import db


def _statements(app, fn):
    seen = []

    def count(*_args):
        seen.append(1)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        result = fn()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return result, len(seen)


def test_cached_user_costs_no_statement_and_is_the_right_person(app, demo, make_api):
    teacher, head = make_api().login("t1001"), make_api().login("h2001")
    assert teacher.get("me").get_json()["username"] == "t1001"
    me, statements = _statements(app, lambda: teacher.get("me"))
    # GET /me reads the memberships (its roles): one statement, none for the user row itself.
    assert me.status_code == 200 and me.get_json()["username"] == "t1001" and statements == 1
    assert head.get("me").get_json()["username"] == "h2001"
    assert teacher.get("me").get_json()["username"] == "t1001"


def test_deactivated_user_is_signed_out_at_once(app, demo, make_api):
    teacher = make_api().login("t1001")
    assert teacher.get("me").status_code == 200  # cached now
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.username == "t1001"))
        accounts.set_user_active(user_id, False)
    response = teacher.get("me")
    assert response.status_code == 401 and response.get_json()["message"] == "请先登录"
    assert teacher.get("tasks").status_code == 401


def test_change_written_elsewhere_is_seen_when_the_entry_expires(app, demo, make_api):
    """A row changed without this process's ORM (another app server, a bulk import) is seen once the entry is
    older than USER_CACHE_SECONDS; until then the cached copy answers."""
    teacher = make_api().login("t1001")
    cache = app.extensions["hall.user_cache"]
    seconds = cache.seconds
    cache.seconds = 0.3
    try:
        assert teacher.get("me").get_json()["name"] == "张伟"
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.update(User).where(User.username == "t1001").values(name="张伟（新）"))
        assert teacher.get("me").get_json()["name"] == "张伟"  # the entry is still fresh
        time.sleep(0.35)
        assert teacher.get("me").get_json()["name"] == "张伟（新）"
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.update(User).where(User.username == "t1001").values(active=False))
        time.sleep(0.35)
        assert teacher.get("me").status_code == 401
    finally:
        cache.seconds = seconds


def test_orm_change_in_this_process_drops_the_entry(app, demo, make_api):
    teacher = make_api().login("t1001")
    assert teacher.get("me").get_json()["email"] != "new@college.example.edu.cn"
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "t1001"))
        user.email = "new@college.example.edu.cn"
        db.session.commit()
    assert teacher.get("me").get_json()["email"] == "new@college.example.edu.cn"


def test_cache_off(app, demo, make_api):
    teacher = make_api().login("t1001")
    cache = app.extensions["hall.user_cache"]
    seconds = cache.seconds
    cache.seconds = 0
    try:
        teacher.get("me")
        _, statements = _statements(app, lambda: teacher.get("me"))
        assert statements == 2  # the user row and the memberships
    finally:
        cache.seconds = seconds
        user_cache.forget_everything()


def test_verified_cookie_still_expires(app, demo, make_api):
    """A remembered cookie is not a longer session: its age is checked against the lifetime every time."""
    teacher = make_api().login("t1001")
    assert teacher.get("me").status_code == 200  # the cookie is verified and remembered
    lifetime = app.permanent_session_lifetime
    app.permanent_session_lifetime = timedelta(seconds=1)
    try:
        time.sleep(2.1)  # the signed timestamp counts whole seconds
        assert teacher.get("me").status_code == 401
    finally:
        app.permanent_session_lifetime = lifetime


def test_verified_cookie_cache_does_not_admit_a_changed_cookie(app, demo, make_api):
    teacher = make_api().login("t1001")
    assert teacher.get("me").status_code == 200
    cookie = teacher.client.get_cookie("session").value
    forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    teacher.client.set_cookie("session", forged)
    assert teacher.get("me").status_code == 401
    teacher.client.set_cookie("session", cookie)
    assert teacher.get("me").status_code == 200
