"""Hardening: CSRF on the JSON API and the pages, new sessions at sign-in, safe redirects, locked sign-in
after repeated failures, tampered cookies, session cookie flags and security headers."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hall.audit.models import AuditEvent, SignInAttempt
from hall.extensions import db
from hall.processes.models import ProcessInstance
from hall.security import CSP
from tests.conftest import bpmn_sequence


@pytest.fixture
def people(app):
    """The demo college's people (password hall2026)."""
    from hall.org.demo import load_demo_organisation

    with app.app_context():
        load_demo_organisation()


@pytest.fixture
def flow(app, people):
    """A one-step process anyone may start."""
    from hall.processes import services

    with app.app_context():
        services.deploy({"simple.bpmn": bpmn_sequence("simple", 1)}, {})


def _events(app, kind: str) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)).all()


def _instances(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(ProcessInstance))


def _page_csrf(client) -> str:
    client.get("/login")
    with client.session_transaction() as session:
        return session["_csrf"]


def _sign_in(client, username="t1001", password="hall2026"):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


# -- CSRF ----------------------------------------------------------------------------------------------

def test_api_post_without_csrf_header_is_refused(app, flow, api):
    """A signed-in session's POST without X-CSRF-Token answers 403, starts nothing, and is logged."""
    api.login("t1001")
    response = api.client.post("/api/v1/process-instances", json={"definition": "simple", "data": {}})
    assert response.status_code == 403
    assert _instances(app) == 0
    assert [(e.actor, e.path) for e in _events(app, "csrf_refused")] == [("t1001", "/api/v1/process-instances")]
    assert api.post("process-instances", {"definition": "simple", "data": {}}).status_code == 201


def test_api_post_with_a_wrong_csrf_header_is_refused(app, flow, api):
    """A made-up X-CSRF-Token is refused like a missing one."""
    api.login("t1001")
    response = api.post("process-instances", {"definition": "simple", "data": {}}, headers={"X-CSRF-Token": "x"})
    assert response.status_code == 403
    assert _instances(app) == 0
    assert len(_events(app, "csrf_refused")) == 1


def test_csrf_endpoint_gives_the_session_token(app, people, api):
    """GET /auth/csrf returns the token of the sign-in response; it works as the header."""
    api.login("t1001")
    assert api.get("auth/csrf").get_json()["csrf_token"] == api.csrf


def test_page_form_post_without_csrf_is_refused_and_logged(app, people):
    """Signing out through the page without the form token is refused (400); the person stays signed in."""
    client = app.test_client()
    _sign_in(client)
    assert client.post("/logout").status_code == 400
    assert client.get("/api/v1/me").status_code == 200
    assert [e.actor for e in _events(app, "csrf_refused")] == ["t1001"]


# The page blueprints whose POSTs are a person's form: every one checks the form token. (The API checks
# its header; /sso takes the sign-on server's back-channel calls, which carry no session.)
PAGE_BLUEPRINTS = {"web", "admin", "quality_web", "messages_web"}


def test_every_page_post_refuses_a_request_without_the_form_token(app, people):
    """Each POST route of the pages answers 400 without `_csrf` before doing anything, signed in as the
    quality office (who may edit monitoring points) and as an administrator."""
    routes = sorted({(rule.endpoint.split(".")[0], rule.rule) for rule in app.url_map.iter_rules()
                     if "POST" in rule.methods and rule.endpoint.split(".")[0] in PAGE_BLUEPRINTS})
    assert ("quality_web", "/quality/points/<int:point_id>/edit") in routes
    assert ("messages_web", "/messages/read-all") in routes
    for username in ("q4001", "admin"):
        client = app.test_client()
        _sign_in(client, username)
        for blueprint, route in routes:
            if blueprint == "admin" and username != "admin":
                continue  # refused by the role gate before anything else (403), see test_route_matrix
            path = re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", route)  # the first of a fixed set of words
            path = re.sub(r"<(?:[a-z]+:)?[a-z_]+>", "1", path)
            assert client.post(path, data={"x": "1"}).status_code == 400, (username, route)


# -- sessions ------------------------------------------------------------------------------------------

def test_sign_in_starts_a_new_session(app, people):
    """Whatever the session held before sign-in is gone after it, and the CSRF token is new."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
        session["_csrf"] = "known-to-attacker"
    token = _sign_in(client).get_json()["csrf_token"]
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_csrf"] == token != "known-to-attacker"


def test_tampered_session_cookie_is_signed_out(app, people):
    """A session cookie whose content was changed is ignored (401) and the tampering is logged."""
    client = app.test_client()
    _sign_in(client)
    timestamp, signature = client.get_cookie("session").value.rsplit(".", 2)[-2:]
    # Claim to be user 1 (the admin) under the timestamp and signature of someone else's session.
    forged = base64.urlsafe_b64encode(b'{"_user_id":"1","_fresh":true}').rstrip(b"=").decode()
    other = app.test_client()
    other.set_cookie("session", f"{forged}.{timestamp}.{signature}")
    assert other.get("/api/v1/me").status_code == 401
    assert [e.path for e in _events(app, "session_tampered")] == ["/api/v1/me"]


def test_session_cookie_is_httponly_and_samesite(app, people):
    """The session cookie is HttpOnly and SameSite=Lax; not Secure over plain http by default."""
    cookie = _sign_in(app.test_client()).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_over_https(app, people):
    """Served over https the session cookie is marked Secure."""
    client = app.test_client()
    response = client.post("/api/v1/auth/login", json={"username": "t1001", "password": "hall2026"},
                           base_url="https://hall.example")
    assert "Secure" in response.headers["Set-Cookie"]


# -- redirects -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example", "https://evil.example/",
                                    "javascript:alert(1)", "/\t/evil.example", "evil.example"])
def test_open_redirect_after_sign_in_is_ignored(app, people, target):
    """A next= pointing off the site sends the person home instead, and the attempt is logged."""
    client = app.test_client()
    response = client.post("/login", query_string={"next": target},
                           data={"_csrf": _page_csrf(client), "username": "t1001", "password": "hall2026"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert [e.detail["target"] for e in _events(app, "redirect_refused")] == [target]


def test_same_site_next_is_followed(app, people):
    """A plain path on the hall is where sign-in leads."""
    client = app.test_client()
    response = client.post("/login?next=/tasks", data={"_csrf": _page_csrf(client), "username": "t1001",
                                                       "password": "hall2026"})
    assert response.headers["Location"] == "/tasks"


# -- sign-in rate limit ----------------------------------------------------------------------------------

def _fail(client, times: int, username="t1001"):
    return [_sign_in(client, username, "wrong").status_code for _ in range(times)]


def test_sixth_sign_in_after_five_failures_is_locked_even_with_the_right_password(app, people):
    """Five wrong passwords lock the name: the right one then answers 429 with a Chinese message."""
    client = app.test_client()
    assert _fail(client, 5) == [401] * 5
    locked = _sign_in(client)
    assert locked.status_code == 429
    assert "锁定" in locked.get_json()["message"]
    assert client.get("/api/v1/me").status_code == 401
    assert len(_events(app, "sign_in_failed")) == 5 and len(_events(app, "sign_in_locked")) == 1


def test_lock_ends_when_its_time_is_up(app, people):
    """Once the lock time has passed since the last failure, the right password signs in again."""
    client = app.test_client()
    _fail(client, 5)
    assert _sign_in(client).status_code == 429
    with app.app_context():
        # Move the clock: every recorded attempt happened one lock period (and a second) earlier.
        shift = timedelta(seconds=app.config["SIGNIN_LOCK_SECONDS"] + 1)
        for attempt in db.session.scalars(sa.select(SignInAttempt)):
            attempt.at = attempt.at - shift
        db.session.commit()
    assert _sign_in(client).status_code == 200


def test_lock_is_per_username(app, people):
    """Failures for one name do not lock another person out."""
    client = app.test_client()
    _fail(client, 5)
    assert _sign_in(client, "h2001").status_code == 200


def test_success_resets_the_failure_count(app, people):
    """Four failures, a success, four more failures: not locked."""
    client = app.test_client()
    _fail(client, 4)
    assert _sign_in(client).status_code == 200
    _fail(client, 4)
    assert _sign_in(client).status_code == 200


def test_page_sign_in_is_locked_too(app, people):
    """The sign-in page shares the lock: after five failures it answers 429 with the message."""
    client = app.test_client()
    _fail(client, 5)
    response = client.post("/login", data={"_csrf": _page_csrf(client), "username": "t1001", "password": "hall2026"})
    assert response.status_code == 429
    assert "锁定" in response.get_data(as_text=True)


def test_many_failures_from_one_address_lock_it(app, people):
    """Failures spread over many names from one address lock that address."""
    client = app.test_client()
    limit = app.config["SIGNIN_MAX_FAILURES_PER_IP"]
    for n in range(limit):
        assert _sign_in(client, f"nobody{n}", "wrong").status_code == 401
    assert _sign_in(client).status_code == 429


def test_behind_a_proxy_the_lock_and_the_log_use_the_forwarded_address(app, people, monkeypatch):
    """With HALL_PROXY_COUNT=1 (one nginx in front), failures are counted per client address the proxy
    forwards: one client's failures lock that client, not everyone behind the proxy, and the audit log names
    the client. Without it, the header is not believed: a client cannot escape the lock by forging it."""
    from hall import security

    limit = app.config["SIGNIN_MAX_FAILURES_PER_IP"]
    # The app without trusted proxies (the default): a forged header per attempt changes nothing.
    direct = app.test_client()
    for n in range(limit):
        forged = {"X-Forwarded-For": f"10.0.0.{n}"}
        assert direct.post("/api/v1/auth/login", json={"username": f"nobody{n}", "password": "wrong"},
                           headers=forged).status_code == 401
    assert direct.post("/api/v1/auth/login", json={"username": "t1001", "password": "hall2026"},
                       headers={"X-Forwarded-For": "10.0.0.200"}).status_code == 429
    assert {e.ip for e in _events(app, "sign_in_failed")} == {"127.0.0.1"}

    # Behind one proxy (as create_app sets it up when HALL_PROXY_COUNT=1).
    monkeypatch.setitem(app.config, "PROXY_COUNT", 1)
    monkeypatch.setattr(app, "wsgi_app", app.wsgi_app)  # restored after the test
    security.trust_proxies(app)
    client = app.test_client()
    for n in range(limit):
        response = client.post("/api/v1/auth/login", json={"username": f"other{n}", "password": "wrong"},
                               headers={"X-Forwarded-For": "10.1.2.3"})
        assert response.status_code == 401
    locked = client.post("/api/v1/auth/login", json={"username": "t1001", "password": "hall2026"},
                         headers={"X-Forwarded-For": "10.1.2.3"})
    assert locked.status_code == 429
    other = app.test_client().post("/api/v1/auth/login", json={"username": "t1001", "password": "hall2026"},
                                   headers={"X-Forwarded-For": "10.9.9.9"})
    assert other.status_code == 200
    assert {e.ip for e in _events(app, "sign_in_failed")} == {"127.0.0.1", "10.1.2.3"}
    assert [e.ip for e in _events(app, "sign_in")] == ["10.9.9.9"]


# -- security headers ------------------------------------------------------------------------------------

HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin"}


def test_security_headers_on_a_page(app):
    """The sign-in page carries the CSP that allows only the hall's own assets, and the other headers."""
    response = app.test_client().get("/login")
    assert response.status_code == 200
    assert {k: response.headers.get(k) for k in HEADERS} == HEADERS
    assert "default-src 'self'" in CSP and "frame-ancestors 'none'" in CSP


def test_security_headers_on_an_api_response(app):
    """An API answer (even a refusal) carries the same headers."""
    response = app.test_client().get("/api/v1/me")
    assert response.status_code == 401
    assert {k: response.headers.get(k) for k in HEADERS} == HEADERS


INLINE_CODE = re.compile(r'<script(?![^>]*\b(?:src=|type="application/json"))[^>]*>|<style|\sstyle=|\son[a-z]+=')


def test_pages_have_no_inline_scripts_or_styles(app, people):
    """The strict CSP would block inline code: the pages have none."""
    client = app.test_client()
    _sign_in(client)
    for path in ("/login", "/", "/services", "/tasks", "/mine"):
        html = client.get(path).get_data(as_text=True)
        # Scripts load from files; JSON data blocks are not code and are allowed.
        inline = re.search(INLINE_CODE, html)
        assert not inline, (path, inline)


def test_api_docs_allow_their_own_inline_script_by_hash(app):
    """The swagger page's one inline script is allowed by its hash, not by 'unsafe-inline'."""
    response = app.test_client().get("/api/v1/docs")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    script = re.search(rb"<script>(.*?)</script>", response.get_data(), re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert f"'sha256-{digest}'" in script_src and "unsafe-inline" not in script_src
    assert "frame-ancestors 'none'" in policy
