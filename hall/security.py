"""Request hardening: sessions, CSRF, bearer tokens, sign-in rate limits and security headers.

- Sessions: signed cookies, HttpOnly, SameSite=Lax, Secure when configured or served over https. A
  cookie whose signature does not verify is dropped (the request is anonymous) and logged.
- Sign-in: the session is emptied before the new user is stored in it (no fixation) and gets a fresh
  CSRF token. Password failures are rows in `sign_in_attempts`, so every app server sees the same lock.
- CSRF: pages check a hidden `_csrf` field (hall/web/views.py). The JSON API wants the same token in an
  `X-CSRF-Token` header on every state-changing request of a signed-in session; the client gets it in
  the sign-in response or from GET /api/v1/auth/csrf. Requests with a bearer token need none: a browser
  never adds that header on its own.
- Bearer tokens (hall/accounts/tokens.py) authenticate /api/v1 requests only on endpoints that declare
  their scopes with `require_scope`.
- Every response carries a Content-Security-Policy that allows the hall's own assets only.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os
import re
import secrets
import time
from collections import OrderedDict
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, current_app, g, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, SignatureExpired
from werkzeug.middleware.proxy_fix import ProxyFix

from hall.accounts.models import User
from hall.audit import services as audit
from hall.audit.models import SignInAttempt
from hall.db_types import utcnow
from hall.errors import BadRequest, HallError
from hall.extensions import db

CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sign-in itself replaces the session, so a forged sign-in cannot ride on the victim's session.
CSRF_EXEMPT_ENDPOINTS = frozenset({"auth.login"})
SWAGGER_ENDPOINT = "api-docs.openapi_swagger_ui"

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'")
# The browsable API docs: swagger-ui sets inline styles, and flask-smorest's page starts it with one inline
# script, allowed by its hash (computed from the page itself, so a changed template stays allowed).
SWAGGER_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "script-src 'self' {hashes}; frame-ancestors 'none'; object-src 'none'; base-uri 'self'")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


class TooManyAttempts(HallError):
    code = 429


# -- sessions ------------------------------------------------------------------------------------------

class HallSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session that remembers when a cookie was tampered with, and marks the cookie
    Secure on https even when the setting is off.

    A verified cookie is remembered (per secret key, the last VERIFIED_CAPACITY cookies): the same cookie
    on the next request of that person skips the signature check and the decoding, which cost more than
    anything else in a request that does little. Its age is still checked against the session lifetime,
    and every request gets its own copy of the data."""

    VERIFIED_CAPACITY = 4096

    def __init__(self) -> None:
        self._verified: OrderedDict[tuple[str, str], tuple[dict, float]] = OrderedDict()
        self._serializers: dict[str, object] = {}

    def get_signing_serializer(self, app):
        key = app.secret_key
        if not key:
            return None
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = self._serializers[key] = super().get_signing_serializer(app)
        return serializer

    def open_session(self, app, request):
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = app.permanent_session_lifetime.total_seconds()
        cache_key = (app.secret_key, value)
        cached = self._verified.get(cache_key)
        if cached is not None and time.time() - cached[1] <= max_age:
            return self.session_class(copy.deepcopy(cached[0]))
        try:
            data, signed_at = serializer.loads(value, max_age=int(max_age), return_timestamp=True)
        except SignatureExpired:
            self._verified.pop(cache_key, None)
            return self.session_class()
        except BadSignature:
            request.environ["hall.session_tampered"] = True
            return self.session_class()
        self._verified[cache_key] = (copy.deepcopy(data), signed_at.timestamp())
        while len(self._verified) > self.VERIFIED_CAPACITY:
            try:
                self._verified.popitem(last=False)
            except KeyError:  # another thread emptied it first
                break
        return self.session_class(data)

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    if "_csrf" not in session:
        session["_csrf"] = secrets.token_urlsafe(32)
    return session["_csrf"]


def start_session(user: User, method: str = "password") -> str:
    """Sign *user* in on a brand-new session (nothing of the old one survives) and log it; returns the
    new CSRF token. Every sign-in path (password, CAS, OIDC) goes through here."""
    session.clear()
    login_user(user)
    session["_csrf"] = secrets.token_urlsafe(32)
    audit.record("sign_in", user.username, method=method)
    return session["_csrf"]


def end_session() -> None:
    """Sign out and forget everything the session held; log who left."""
    who = current_user.username if current_user.is_authenticated else None
    logout_user()
    session.clear()
    if who:
        audit.record("sign_out", who)


# -- sign-in with a password, rate-limited -------------------------------------------------------------

def _settings() -> tuple[int, int, timedelta, timedelta]:
    cfg = current_app.config
    return (cfg["SIGNIN_MAX_FAILURES"], cfg["SIGNIN_MAX_FAILURES_PER_IP"],
            timedelta(seconds=cfg["SIGNIN_WINDOW_SECONDS"]), timedelta(seconds=cfg["SIGNIN_LOCK_SECONDS"]))


def _locked_until(column, value, limit: int, window: timedelta, lock: timedelta, reset_on_success: bool):
    """When the lock on *value* ends, or None: *limit* failures inside the window lock it until *lock*
    after the latest of them (since the last success when a success resets the count)."""
    now = utcnow()
    since = now - window
    if reset_on_success:
        last_ok = db.session.scalar(sa.select(sa.func.max(SignInAttempt.at))
                                    .where(column == value, SignInAttempt.succeeded.is_(True)))
        if last_ok is not None and last_ok > since:
            since = last_ok
    failures = db.session.scalars(
        sa.select(SignInAttempt.at).where(column == value, SignInAttempt.succeeded.is_(False), SignInAttempt.at > since)
        .order_by(SignInAttempt.at.desc()).limit(limit)).all()
    if len(failures) < limit:
        return None
    until = failures[0] + lock
    return until if until > now else None


def _note_attempt(username: str, succeeded: bool) -> None:
    # Its own connection: the refused request rolls back, the attempt must stay counted.
    with db.engine.begin() as conn:
        conn.execute(sa.insert(SignInAttempt), [{"at": utcnow(), "username": username[:100],
                                                 "ip": audit.client_ip(), "succeeded": succeeded}])


def sign_in_with_password(username: str, password: str) -> User:
    """The user whose password this is, unless the name or the address is locked by recent failures.

    While locked, even the right password is refused (429) and the attempt is not counted, so the lock
    ends on time however often someone keeps trying."""
    from hall.accounts import services as accounts

    username = (username or "").strip()
    per_user, per_ip, window, lock = _settings()
    ip = audit.client_ip()
    until = _locked_until(SignInAttempt.username, username, per_user, window, lock, reset_on_success=True)
    if until is None and ip:
        until = _locked_until(SignInAttempt.ip, ip, per_ip, window, lock, reset_on_success=False)
    if until is not None:
        minutes = max(1, -(-int((until - utcnow()).total_seconds()) // 60))
        audit.record("sign_in_locked", username, until=until.isoformat())
        raise TooManyAttempts(f"登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试")
    try:
        user = accounts.authenticate(username, password)
    except HallError:
        _note_attempt(username, False)
        audit.record("sign_in_failed", username)
        raise
    _note_attempt(username, True)
    return user


# -- per request ----------------------------------------------------------------------------------------

def _refuse(code: int, message: str):
    g.audit_logged = True  # the specific event is written; the generic 403 hook stays quiet
    status = {401: "Unauthorized", 403: "Forbidden"}[code]
    return jsonify({"code": code, "status": status, "message": message}), code


def _view_scopes() -> frozenset | None:
    """The scopes the endpoint of this request declares with require_scope, None when it accepts no token."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        view = getattr(view_class, request.method.lower(), None)
    return getattr(view, "required_scopes", None)


def _bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    return raw.strip() if scheme.lower() == "bearer" else None


def _authenticate_token(raw: str):
    from hall.accounts import tokens

    try:
        token = tokens.verify(raw)
    except tokens.TokenRefused as err:
        db.session.rollback()
        audit.record("token_refused", None, reason=err.reason, prefix=err.prefix)
        return _refuse(401, err.message)
    scopes = _view_scopes()
    if request.endpoint is not None and (scopes is None or not scopes <= set(token.scopes)):
        audit.record("permission_denied", token.created_by.username, token=token.prefix,
                     needed=sorted(scopes or []), granted=token.scopes)
        return _refuse(403, "此 API 令牌无权访问该接口")
    g.api_token = token
    g._login_user = token.created_by  # Flask-Login's per-request user: acts as the creator, not a session
    tokens.mark_used(token, audit.client_ip())
    audit.record("token_used", token.created_by.username, token=token.prefix, scopes=token.scopes)
    return None


def _holds_nul() -> bool:
    """Whether the path, the query or a form field holds a NUL character, which PostgreSQL stores in no text
    (JSON bodies are checked as they are read: hall/jsontext.py). Multipart bodies (uploads) are left to
    their views, which read them after the sign-in and role checks: parsing an upload here, before those,
    would let anyone make the server spool 20 MB to disk."""
    if b"%00" in request.query_string or "\x00" in request.path:
        return True
    if request.mimetype == "application/x-www-form-urlencoded":
        return any("\x00" in value for values in request.form.listvalues() for value in values)
    return False


def _before_request():
    g.pop("api_token", None)
    if _holds_nul():
        raise BadRequest("请求中含有空字符（\\0），无法处理")
    if request.environ.get("hall.session_tampered"):
        audit.record("session_tampered", None)
    if not request.path.startswith("/api/"):
        return None
    raw = _bearer_token()
    if raw is not None:
        return _authenticate_token(raw)
    if (request.method in UNSAFE_METHODS and "_user_id" in session and current_app.config.get("CSRF_ENABLED", True)
            and request.endpoint not in CSRF_EXEMPT_ENDPOINTS):
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, session.get("_csrf", "")):
            audit.record("csrf_refused", current_user.username if current_user.is_authenticated else None,
                         header=bool(sent))
            return _refuse(403, "缺少或无效的 CSRF 令牌，请刷新页面后重试")
    return None


def _after_request(response):
    if response.status_code == 403 and not g.get("audit_logged"):
        body = response.get_json(silent=True) if response.is_json else None
        actor = current_user.username if current_user.is_authenticated else None
        token = g.get("api_token")
        audit.record("permission_denied", actor, message=(body or {}).get("message"),
                     **({"token": token.prefix} if token is not None else {}))
    _security_headers(response)
    return response


def _security_headers(response) -> None:
    headers = response.headers
    if request.endpoint == SWAGGER_ENDPOINT:
        hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
                          for m in INLINE_SCRIPT.findall(response.get_data()))
        headers["Content-Security-Policy"] = SWAGGER_CSP.format(hashes=hashes)
    else:
        headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def _teardown(_exc=None):
    # Tests share one `g` across requests when they hold an app context; a token's user must not leak.
    if g.pop("api_token", None) is not None:
        g.pop("_login_user", None)


def trust_proxies(app: Flask) -> None:
    """Behind HALL_PROXY_COUNT reverse proxies, take the client's address, scheme and host from their
    X-Forwarded-* headers (werkzeug's ProxyFix): the audit log and the sign-in lock per address then see the
    client, not the proxy. With 0 (the default) no header is believed, so a client cannot forge its address."""
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)


def init_app(app: Flask) -> None:
    """Install the session interface and the per-request hooks; read the sign-in limits."""
    for name, default in (("SIGNIN_MAX_FAILURES", 5), ("SIGNIN_MAX_FAILURES_PER_IP", 30),
                          ("SIGNIN_WINDOW_SECONDS", 900), ("SIGNIN_LOCK_SECONDS", 900)):
        app.config.setdefault(name, int(os.environ.get(f"HALL_{name}", default)))
    app.session_interface = HallSessionInterface()
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.teardown_request(_teardown)
