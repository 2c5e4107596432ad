"""CAS 2.0/3.0 sign-on against a real django-cas-server on loopback: sign-in, attributes, refused tickets
and single logout."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import sqlalchemy as sa

from hall.extensions import db
from integrations import cas
from integrations.models import SsoSession

PASSWORD = "cas-pass-2026"


@pytest.fixture(params=["3"])
def cas_config(request, app, monkeypatch, cas_server, hall_url, org_units):
    monkeypatch.setitem(app.config, "CAS_URL", cas_server)
    monkeypatch.setitem(app.config, "CAS_VERSION", request.param)
    return cas_server


def _ticket_for(browser, cas_url: str, service: str) -> str:
    """Sign in at the CAS server for *service* and return the service ticket it redirects with."""
    page = browser.get(f"{cas_url}/login?{urlencode({'service': service})}")
    assert page.status_code == 200
    answer = browser.submit(page, username="zhangsan", password=PASSWORD)
    assert answer.status_code == 302, answer.text[:500]
    location = answer.headers["Location"]
    assert location.startswith(service)
    return parse_qs(urlparse(location).query)["ticket"][0]


def _sign_in(browser, hall_url: str):
    """The full browser sign-in: hall -> CAS login form -> hall callback; returns (callback response, ticket)."""
    start = browser.get(f"{hall_url}/sso/cas/login?next=/tasks")
    assert start.status_code == 302
    login_page = browser.follow(start)
    assert login_page.status_code == 200 and "csrfmiddlewaretoken" in login_page.text
    answer = browser.submit(login_page, username="zhangsan", password=PASSWORD)
    callback = answer.headers["Location"]
    assert callback.startswith(f"{hall_url}/sso/cas/callback?ticket=ST-")
    ticket = parse_qs(urlparse(callback).query)["ticket"][0]
    return browser.get(callback), ticket


def _sessions(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(SsoSession))


@pytest.mark.parametrize("cas_config", ["2", "3"], indirect=True)
def test_full_sign_in_maps_attributes(cas_config, browser, hall_url):
    """CAS 2 and 3: the redirect round trip signs 张三 in with his department's unit and mapped roles."""
    response, _ = _sign_in(browser, hall_url)
    assert response.status_code == 302 and response.headers["Location"].endswith("/tasks")
    me = browser.me(hall_url)
    assert me.status_code == 200
    body = me.json()
    assert (body["username"], body["name"], body["email"]) == ("T9001", "张三", "zhangsan@college.example.edu.cn")
    assert body["roles"] == ["dept_head", "teacher"]
    assert {m["org_unit_id"] for m in body["memberships"]} == {body["org_unit_id"]}
    assert body["org_unit_id"] is not None


def test_login_redirects_to_cas_with_callback_service(cas_config, browser, hall_url):
    """GET /sso/cas/login sends the browser to the CAS login with our callback as service."""
    response = browser.get(f"{hall_url}/sso/cas/login")
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{cas_config}/login"
    assert parse_qs(location.query)["service"] == [f"{hall_url}/sso/cas/callback"]


def test_second_sign_in_updates_user(cas_config, app, make_browser, hall_url):
    """A later sign-in updates the same user rather than creating another one."""
    _sign_in(make_browser(), hall_url)
    with app.app_context():
        from hall.accounts.models import User

        db.session.execute(sa.update(User).where(User.username == "T9001").values(name="旧名字"))
        db.session.commit()
    browser = make_browser()
    _sign_in(browser, hall_url)
    assert browser.me(hall_url).json()["name"] == "张三"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_replayed_ticket_refused(cas_config, app, browser, make_browser, hall_url):
    """A service ticket already validated once is refused the second time and signs no one in."""
    _, ticket = _sign_in(browser, hall_url)
    thief = make_browser()
    response = thief.get(f"{hall_url}/sso/cas/callback?ticket={ticket}")
    assert response.status_code == 401
    assert thief.me(hall_url).status_code == 401
    assert _sessions(app) == 1


def test_ticket_for_another_service_refused(cas_config, app, browser, hall_url):
    """A ticket the CAS server issued for another application is refused by the hall."""
    ticket = _ticket_for(browser, cas_config, "http://other.example.edu.cn/app")
    response = browser.get(f"{hall_url}/sso/cas/callback?ticket={ticket}")
    assert response.status_code == 401
    assert browser.me(hall_url).status_code == 401
    assert _sessions(app) == 0


def test_forged_ticket_refused(cas_config, app, browser, hall_url, caplog):
    """A made-up ticket is refused (401) and logged; nobody is signed in and no user is created."""
    with caplog.at_level("WARNING", logger="hall.sso"):
        response = browser.get(f"{hall_url}/sso/cas/callback?ticket=ST-forged-0123456789")
    assert response.status_code == 401
    assert any("INVALID_TICKET" in r.getMessage() for r in caplog.records), caplog.text
    assert browser.me(hall_url).status_code == 401
    with app.app_context():
        from hall.accounts.models import User

        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_malformed_ticket_refused(cas_config, browser, hall_url):
    """A ticket with characters no CAS server issues is refused before any validation call."""
    response = browser.get(f"{hall_url}/sso/cas/callback?ticket=ST-<script>")
    assert response.status_code == 401


def test_single_logout_ends_hall_session(cas_config, browser, hall_url):
    """Logging out at the CAS server makes it post a logoutRequest that ends the hall session."""
    _sign_in(browser, hall_url)
    assert browser.me(hall_url).status_code == 200
    assert browser.get(f"{cas_config}/logout").status_code == 200
    deadline = time.monotonic() + 15
    while browser.me(hall_url).status_code != 401:
        assert time.monotonic() < deadline, "the hall session outlived the CAS single logout"
        time.sleep(0.1)


def test_single_logout_leaves_other_sessions(cas_config, make_browser, hall_url):
    """Single logout of one ticket does not end another sign-in of the same person."""
    first, second = make_browser(), make_browser()
    _, ticket = _sign_in(first, hall_url)
    _sign_in(second, hall_url)
    logout = ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0">'
              f'<saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">zhangsan</saml:NameID>'
              f'<samlp:SessionIndex>{ticket}</samlp:SessionIndex></samlp:LogoutRequest>')
    assert make_browser().post(f"{hall_url}/sso/cas/callback", data={"logoutRequest": logout}).status_code == 200
    assert first.me(hall_url).status_code == 401
    assert second.me(hall_url).status_code == 200


def test_malformed_logout_request_refused(cas_config, app, browser, hall_url):
    """A logoutRequest that is not a SAML LogoutRequest is answered 400 and ends nothing."""
    _sign_in(browser, hall_url)
    response = browser.post(f"{hall_url}/sso/cas/callback", data={"logoutRequest": "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"})
    assert response.status_code == 400
    assert browser.me(hall_url).status_code == 200


def test_attributes_decoded_as_utf8_whatever_the_header_says():
    """A response declaring ISO-8859-1 but carrying UTF-8 is read as UTF-8 (张三, not mojibake)."""
    body = ('<?xml version="1.0" encoding="ISO-8859-1"?>'
            '<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>'
            '<cas:user>zhangsan</cas:user><cas:attributes><cas:displayName>张三</cas:displayName>'
            '<cas:groups>教师</cas:groups><cas:groups>督导</cas:groups>'
            '<cas:isFromNewLogin>true</cas:isFromNewLogin></cas:attributes>'
            '</cas:authenticationSuccess></cas:serviceResponse>').encode()
    user, attributes = cas.parse_validation(body)
    assert user == "zhangsan"
    assert attributes == {"displayName": "张三", "groups": ["教师", "督导"]}


def test_login_page_shows_a_button_per_configured_provider(app, monkeypatch):
    """The sign-in page offers CAS only once HALL_CAS_URL is set, and passes `next` on."""
    client = app.test_client()
    assert "/sso/cas/login" not in client.get("/login").get_data(as_text=True)
    monkeypatch.setitem(app.config, "CAS_URL", "https://cas.example.edu.cn/cas")
    page = client.get("/login?next=/tasks").get_data(as_text=True)
    assert 'href="/sso/cas/login?next=/tasks"' in page and "统一身份认证（CAS）" in page
