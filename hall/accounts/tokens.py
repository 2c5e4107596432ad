"""API tokens for integrations: created by administrators, shown once, stored hashed, scoped, expiring,
revocable.

A token reads `hall_<prefix>_<secret>`. The prefix is not secret: it finds the row. Only the SHA-256 of
the whole token is stored; the secret has 256 bits of randomness, so a plain hash (no salt, no slow
key derivation) is enough and keeps a request's check cheap.

A token acts as the administrator who created it, restricted to its scopes: an endpoint accepts a token
only when it declares a scope with `require_scope`, and every other endpoint answers 403. The creator
stays accountable in every record the token writes (a measurement's `recorded_by` is a person), and a
creator who is deactivated or is no longer an administrator takes the token's power away with them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import g
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hall.accounts.models import User
from hall.db_types import JSONDoc, UTCDateTime, utcnow
from hall.errors import Forbidden, HallError, Invalid
from hall.extensions import db

PREFIX = "hall_"
# Every scope an endpoint may declare; a token asks for a subset.
SCOPES = {
    "measurements:write": "提交监测数据",
}
MAX_DAYS = 366


class ApiToken(db.Model):
    """A bearer token of an integration (教务系统, 学工系统 …)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(100))
    scopes: Mapped[list] = mapped_column(JSONDoc, default=list)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(sa.String(64))

    created_by = relationship(User, lazy="joined")

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= utcnow() else "active"


class TokenRefused(HallError):
    """A bearer token that does not authenticate: forged, unknown, expired or revoked."""

    code = 401

    def __init__(self, reason: str, prefix: str | None = None):
        super().__init__("API 令牌无效、已过期或已撤销")
        self.reason = reason
        self.prefix = prefix


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("只有系统管理员可以管理 API 令牌")


def create_token(user: User, name: str, scopes: list[str], expires_in_days: int) -> tuple[ApiToken, str]:
    """A new token and its secret; the secret is returned this once and never stored."""
    _require_admin(user)
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["请填写令牌名称"]
    unknown = sorted(set(scopes) - SCOPES.keys())
    if not scopes or unknown:
        errors["scopes"] = [f"未知的权限范围：{'、'.join(unknown)}" if unknown else "至少选择一个权限范围"]
    if not 1 <= expires_in_days <= MAX_DAYS:
        errors["expires_in_days"] = [f"有效期应为 1 至 {MAX_DAYS} 天"]
    if errors:
        raise Invalid("令牌信息有误", errors)
    prefix = secrets.token_hex(6)
    secret = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(prefix=prefix, token_hash=_hash(secret), name=name, scopes=sorted(set(scopes)),
                     created_by_id=user.id, expires_at=utcnow() + timedelta(days=expires_in_days))
    db.session.add(token)
    db.session.commit()
    return token, secret


def list_tokens(user: User) -> list[ApiToken]:
    _require_admin(user)
    return db.session.scalars(sa.select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()


def revoke_token(user: User, token_id: int) -> ApiToken:
    """Revoke a token; revoking twice is harmless and keeps the first time."""
    _require_admin(user)
    token = db.session.get(ApiToken, token_id)
    if token is None:
        from hall.errors import NotFound

        raise NotFound("令牌不存在")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token


def verify(raw: str) -> ApiToken:
    """The live token that *raw* names, or TokenRefused saying why not."""
    if not raw.startswith(PREFIX) or raw.count("_") < 2:
        raise TokenRefused("malformed")
    prefix = raw[len(PREFIX):].split("_", 1)[0]
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.prefix == prefix))
    if token is None:
        raise TokenRefused("unknown", prefix)
    if not hmac.compare_digest(token.token_hash, _hash(raw)):
        raise TokenRefused("forged", prefix)
    if token.revoked_at is not None:
        raise TokenRefused("revoked", prefix)
    if token.expires_at <= utcnow():
        raise TokenRefused("expired", prefix)
    creator = token.created_by
    if not creator.active or not creator.is_admin:
        raise TokenRefused("creator_disabled", prefix)
    return token


def mark_used(token: ApiToken, ip: str | None) -> None:
    """Record the use on its own connection, so a request that fails still shows the token was used."""
    with db.engine.begin() as conn:
        conn.execute(sa.update(ApiToken).where(ApiToken.id == token.id)
                     .values(last_used_at=utcnow(), last_used_ip=ip))


def current_token() -> ApiToken | None:
    """The token that authenticated this request, if a token did."""
    return g.get("api_token")


def require_scope(*scopes: str):
    """Let token-authenticated requests in only with every one of *scopes*; sessions pass unchanged
    (their own role checks apply). Endpoints without this decorator refuse tokens altogether."""
    unknown = set(scopes) - SCOPES.keys()
    assert not unknown, f"undeclared scopes {unknown}"

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            token = current_token()
            if token is not None:
                missing = sorted(set(scopes) - set(token.scopes))
                if missing:
                    raise Forbidden(f"此 API 令牌没有权限：{'、'.join(missing)}", {"scopes": missing})
            return view(*args, **kwargs)

        wrapper.required_scopes = frozenset(scopes)
        return wrapper

    return decorate
