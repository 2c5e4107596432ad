"""Hall sessions opened through a sign-on provider, so that a provider's single logout can end them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from hall.db_types import UTCDateTime, utcnow
from hall.extensions import db


class SsoSession(db.Model):
    """One sign-in through CAS or OIDC: `key` lives in the browser's session, `external_id` is the CAS
    service ticket (the SessionIndex of a logoutRequest) or the OIDC `sid`; `ended_at` set = signed out."""

    __tablename__ = "sso_sessions"
    __table_args__ = (sa.Index("ix_sso_sessions_provider_external", "provider", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(sa.String(10))
    external_id: Mapped[str | None] = mapped_column(sa.String(256))
    id_token: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
