"""Audit events and the sign-in attempts that rate-limit sign-in."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from hall.db_types import JSONDoc, UTCDateTime, utcnow
from hall.extensions import db

# What the hall records; free text would make filtering by kind unreliable.
KINDS = (
    "sign_in", "sign_in_failed", "sign_in_locked", "sign_out", "permission_denied", "csrf_refused",
    "session_tampered", "redirect_refused", "token_used", "token_refused", "token_created", "token_revoked",
    "user_created", "user_updated", "user_password_reset", "process_disabled", "process_enabled",
)


class AuditEvent(db.Model):
    """One security-relevant happening; append-only, written outside the request's transaction."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_kind_at", "kind", "at"),
                      sa.Index("ix_audit_events_actor_at", "actor", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    # The username (or the name typed at a failed sign-in); None when nobody is known.
    actor: Mapped[str | None] = mapped_column(sa.String(100))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(400))
    method: Mapped[str | None] = mapped_column(sa.String(10))
    path: Mapped[str | None] = mapped_column(sa.String(400))
    detail: Mapped[dict] = mapped_column(JSONDoc, default=dict)


class SignInAttempt(db.Model):
    """A password sign-in attempt; failures within a window lock the username (and the address).

    Kept in the database rather than in memory so that several app servers agree on a lock."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (sa.Index("ix_sign_in_attempts_username_at", "username", "at"),
                      sa.Index("ix_sign_in_attempts_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    username: Mapped[str] = mapped_column(sa.String(100))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    succeeded: Mapped[bool] = mapped_column(default=False)
