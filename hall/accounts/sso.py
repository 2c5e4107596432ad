"""Sign-on routes (/sso/...): CAS 2.0/3.0 and OpenID Connect, and the check that ends a hall session its
provider has logged out (CAS single logout)."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlparse

from flask import Blueprint, redirect, request, session, url_for
from flask_login import logout_user

from hall import security
from hall.errors import HallError, NotFound
from integrations import SignOnRefused, cas, cas_enabled, json_setting, oidc, oidc_enabled, provisioning

log = logging.getLogger("hall.sso")

bp = Blueprint("sso", __name__, url_prefix="/sso")

SESSION_KEY = "_sso"


def providers() -> list[dict]:
    """The configured sign-on providers, for the login page's buttons."""
    found = []
    if cas_enabled():
        found.append({"id": "cas", "label": "统一身份认证（CAS）", "url": url_for("sso.cas_login")})
    if oidc_enabled():
        found.append({"id": "oidc", "label": "统一身份认证（OIDC）", "url": url_for("sso.oidc_login")})
    return found


@bp.app_context_processor
def _sso_providers():
    return {"sso_providers": providers}


@bp.before_app_request
def _end_logged_out_sessions():
    """A session opened by sign-on ends once the provider logged it out (single logout)."""
    key = session.get(SESSION_KEY)
    if key and not provisioning.session_alive(key):
        log.info("sign-on session ended by the provider; signing out")
        logout_user()
        session.clear()


def _refused(err: SignOnRefused, provider: str):
    log.warning("sign-on via %s refused from %s: %s", provider, request.remote_addr, err.reason)
    raise HallError(err.message, code=401)


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _sign_in(user, key: str, provider: str, next_url: str | None):
    security.start_session(user, method=provider)  # a brand-new session, a fresh CSRF token, audited
    session[SESSION_KEY] = key
    log.info("sign-on via %s: %s signed in", provider, user.username)
    return redirect(next_url or url_for("web.home"))


# -- CAS ---------------------------------------------------------------------------------------------

def _service_url() -> str:
    return url_for("sso.cas_callback", _external=True)


@bp.get("/cas/login")
def cas_login():
    if not cas_enabled():
        raise NotFound("未配置 CAS 统一身份认证")
    session["sso_next"] = _safe_next(request.args.get("next"))
    return redirect(cas.login_url(_service_url()))


@bp.route("/cas/callback", methods=["GET", "POST"])
def cas_callback():
    if not cas_enabled():
        raise NotFound("未配置 CAS 统一身份认证")
    if request.method == "POST":
        return _cas_single_logout()
    ticket = request.args.get("ticket", "")
    try:
        principal, attributes = cas.validate(ticket, _service_url())
        mapping = json_setting("SSO_ATTRIBUTE_MAP", provisioning.DEFAULT_ATTRIBUTE_MAP)
        user, key = provisioning.open_session(attributes, mapping, "cas", ticket, principal=principal)
    except SignOnRefused as err:
        _refused(err, "cas")
    return _sign_in(user, key, "cas", session.get("sso_next"))


def _cas_single_logout():
    """The CAS server's back-channel logoutRequest: end the session its ticket opened."""
    try:
        ticket = cas.logout_session_index(request.form.get("logoutRequest", ""))
    except SignOnRefused as err:
        log.warning("CAS logoutRequest refused from %s: %s", request.remote_addr, err.reason)
        raise HallError("单点登出请求无效", code=400) from err
    ended = provisioning.end_sessions("cas", ticket)
    log.info("CAS single logout for ticket %s ended %d session(s)", ticket[:12], ended)
    return "", 200


# -- OpenID Connect ----------------------------------------------------------------------------------

@bp.get("/oidc/login")
def oidc_login():
    if not oidc_enabled():
        raise NotFound("未配置 OIDC 统一身份认证")
    try:
        url, pending = oidc.begin(url_for("sso.oidc_callback", _external=True))
    except SignOnRefused as err:
        _refused(err, "oidc")
    pending["next"] = _safe_next(request.args.get("next"))
    session["oidc_pending"] = pending
    return redirect(url)


@bp.get("/oidc/callback")
def oidc_callback():
    if not oidc_enabled():
        raise NotFound("未配置 OIDC 统一身份认证")
    pending = session.pop("oidc_pending", None)  # one use: a replayed callback finds nothing
    try:
        claims, id_token = oidc.finish(request.args.to_dict(), pending)
        mapping = json_setting("OIDC_CLAIM_MAP", provisioning.DEFAULT_CLAIM_MAP)
        user, key = provisioning.open_session(claims, mapping, "oidc", claims.get("sid"), id_token=id_token)
    except SignOnRefused as err:
        _refused(err, "oidc")
    return _sign_in(user, key, "oidc", pending.get("next"))


@bp.post("/logout")
def logout():
    """Sign out of the hall and, for an OIDC sign-in, of the provider too (RP-initiated logout)."""
    sent = request.form.get("_csrf", "")
    if not sent or not hmac.compare_digest(sent, session.get("_csrf", "")):
        log.warning("sign-out without a valid CSRF token from %s", request.remote_addr)
        raise HallError("页面已过期或来源不明，请刷新页面后重试", code=400)
    key = session.get(SESSION_KEY)
    row = provisioning.end_session_key(key) if key else None
    security.end_session()
    after = url_for("web.login", _external=True)
    if row is not None and row.provider == "oidc" and oidc_enabled():
        target = oidc.end_session_url(row.id_token, after)
        if target:
            return redirect(target)
    if row is not None and row.provider == "cas" and cas_enabled():
        return redirect(cas.logout_url(after))
    return redirect(after)
