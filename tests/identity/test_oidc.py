"""OpenID Connect sign-on against real npm oidc-provider instances on loopback: authorization code with
PKCE, state, nonce, issuer and ID-token checks, userinfo and RP-initiated logout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
import sqlalchemy as sa

from hall.extensions import db
from integrations import SignOnRefused, oidc
from integrations.models import SsoSession


@pytest.fixture
def provider(app, monkeypatch, oidc_issuers, hall_url, org_units):
    """The hall configured for the first provider; yields (its issuer, the other provider's issuer)."""
    monkeypatch.setitem(app.config, "OIDC_ISSUER", oidc_issuers[0])
    monkeypatch.setitem(app.config, "OIDC_CLIENT_ID", "hall")
    monkeypatch.setitem(app.config, "OIDC_CLIENT_SECRET", "hall-oidc-secret")
    monkeypatch.setitem(app.config, "OIDC_SCOPES", "openid profile email hall")
    oidc.clear_cache()
    yield oidc_issuers
    oidc.clear_cache()


def _authorize(browser, hall_url: str) -> str:
    """Start the hall's sign-in; returns the provider authorization URL it redirects to."""
    response = browser.get(f"{hall_url}/sso/oidc/login?next=/instances")
    assert response.status_code == 302
    return response.headers["Location"]


def _provider_login(browser, authorization_url: str, hall_url: str) -> str:
    """Sign in at the provider's login page; returns the callback URL it sends the browser back to."""
    page = browser.follow(browser.get(authorization_url))
    assert page.status_code == 200 and "login" in page.text, page.text[:300]
    back = browser.follow(browser.submit(page, login="lisi", password="any"), stop_prefix=hall_url)
    callback = back.headers["Location"]
    assert callback.startswith(f"{hall_url}/sso/oidc/callback?")
    return callback


def _with_query(url: str, **changes) -> str:
    parts = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunparse(parts._replace(query=urlencode(query)))


def _sessions(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(SsoSession))


def test_authorization_request_uses_pkce_state_and_nonce(provider, browser, hall_url):
    """The hall asks for a code with an S256 PKCE challenge, a state and a nonce."""
    query = parse_qs(urlparse(_authorize(browser, hall_url)).query)
    assert query["response_type"] == ["code"] and query["client_id"] == ["hall"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [f"{hall_url}/sso/oidc/callback"]


def test_full_sign_in_with_pkce(provider, browser, hall_url):
    """Code + PKCE round trip signs 李四 in with userinfo claims mapped to user, unit and roles."""
    callback = _provider_login(browser, _authorize(browser, hall_url), hall_url)
    response = browser.get(callback)
    assert response.status_code == 302 and response.headers["Location"].endswith("/instances")
    me = browser.me(hall_url)
    assert me.status_code == 200
    body = me.json()
    assert (body["username"], body["name"]) == ("T9002", "李四")
    assert body["roles"] == ["course_leader", "teacher"]
    assert body["org_unit_id"] is not None


def test_wrong_nonce_refused(provider, app, browser, hall_url, caplog):
    """An ID token carrying another nonce than the one the hall sent is refused, and logged as such."""
    authorization = _with_query(_authorize(browser, hall_url), nonce="n" * 43)
    callback = _provider_login(browser, authorization, hall_url)
    with caplog.at_level("WARNING", logger="hall.sso"):
        response = browser.get(callback)
    assert response.status_code == 401
    assert any("nonce" in r.getMessage() for r in caplog.records), caplog.text
    assert browser.me(hall_url).status_code == 401
    assert _sessions(app) == 0


def test_wrong_state_refused(provider, app, browser, hall_url):
    """A callback whose state is not the session's is refused before the code is redeemed."""
    callback = _provider_login(browser, _authorize(browser, hall_url), hall_url)
    response = browser.get(_with_query(callback, state="s" * 43))
    assert response.status_code == 401
    assert browser.me(hall_url).status_code == 401
    assert _sessions(app) == 0


def test_response_from_another_issuer_refused(provider, app, browser, hall_url, caplog):
    """A code issued by another provider (iss of the other issuer) is refused."""
    mine, other = provider
    authorization = _authorize(browser, hall_url).replace(mine, other, 1)
    callback = _provider_login(browser, authorization, hall_url)
    assert parse_qs(urlparse(callback).query)["iss"] == [other]
    with caplog.at_level("WARNING", logger="hall.sso"):
        response = browser.get(callback)
    assert response.status_code == 401
    assert any("from issuer" in r.getMessage() for r in caplog.records), caplog.text
    assert browser.me(hall_url).status_code == 401
    assert _sessions(app) == 0


def test_callback_replayed_refused(provider, browser, make_browser, hall_url):
    """The same authorization response used twice is refused the second time."""
    callback = _provider_login(browser, _authorize(browser, hall_url), hall_url)
    assert browser.get(callback).status_code == 302
    assert browser.get(callback).status_code == 401


def test_id_token_of_another_issuer_refused(provider, app, hall_url, make_browser, monkeypatch):
    """An ID token signed by the other provider (its issuer, its key) fails validation against ours."""
    mine, other = provider
    monkeypatch.setitem(app.config, "OIDC_ISSUER", other)
    browser = make_browser()
    browser.get(_provider_login(browser, _authorize(browser, hall_url), hall_url))
    with app.app_context():
        foreign = db.session.scalar(sa.select(SsoSession.id_token))
    monkeypatch.setitem(app.config, "OIDC_ISSUER", mine)
    with app.test_request_context(), pytest.raises(SignOnRefused) as refused:
        oidc.validate_id_token(foreign, None)
    assert "ID token refused" in refused.value.reason


def test_logout_is_rp_initiated(provider, browser, hall_url):
    """Signing out ends the hall session and sends the browser to the provider's end_session_endpoint."""
    browser.get(_provider_login(browser, _authorize(browser, hall_url), hall_url))
    token = browser.csrf(f"{hall_url}/")
    response = browser.post(f"{hall_url}/sso/logout", data={"_csrf": token})
    assert response.status_code == 302
    target = urlparse(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider[0]}/session/end"
    assert "id_token_hint" in parse_qs(target.query)
    assert browser.me(hall_url).status_code == 401


def test_logout_without_csrf_refused(provider, browser, hall_url):
    """A sign-out post without the page's CSRF token is refused and the session stays."""
    browser.get(_provider_login(browser, _authorize(browser, hall_url), hall_url))
    assert browser.post(f"{hall_url}/sso/logout").status_code == 400
    assert browser.me(hall_url).status_code == 200
