"""Messages of the message centre, their deliveries over the outside channels, and per-user channel choices."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hall.db_types import UTCDateTime, utcnow
from hall.extensions import db

CHANNELS = ("mail", "wecom", "dingtalk", "wecom_app")
DELIVERY_STATES = ("pending", "sending", "sent", "failed")


class Message(db.Model):
    """One message in a user's message centre; `dedup_key` makes every producer idempotent."""

    __tablename__ = "messages"
    __table_args__ = (sa.Index("ix_messages_user_read", "user_id", "read_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # task_created, urged, transferred, signer_added, returned, completed, reminder, escalation, digest
    kind: Mapped[str] = mapped_column(sa.String(30))
    title: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey("process_instances.id", ondelete="SET NULL"))
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("human_tasks.id", ondelete="SET NULL"))
    dedup_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when a daily digest has summarised this message (digest users get no per-message delivery).
    digested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(db.Model):
    """A message sent over one channel. `idempotency_key` is unique and is handed to the channel, so a
    retried send after a crash can be recognised by the receiver; the claim lease lets a dead worker's
    claim expire without ever running two sends of one delivery at the same time."""

    __tablename__ = "deliveries"
    __table_args__ = (sa.Index("ix_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    address: Mapped[str | None] = mapped_column(sa.String(200))
    idempotency_key: Mapped[str] = mapped_column(sa.String(100), unique=True)
    state: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    message = relationship("Message")


class ChannelPreference(db.Model):
    """A user's choice of outside channels and their addresses there (the in-hall message is always on)."""

    __tablename__ = "channel_preferences"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    channels: Mapped[list] = mapped_column(sa.JSON, default=list)
    # One summary a day instead of a message per event.
    digest: Mapped[bool] = mapped_column(default=False)
    email: Mapped[str | None] = mapped_column(sa.String(200))
    mobile: Mapped[str | None] = mapped_column(sa.String(32))  # @-mention in the robot groups
    wecom_user_id: Mapped[str | None] = mapped_column(sa.String(64))  # WeCom application messages
    # An address is used once its owner typed the code the hall sent there (the account's own e-mail needs
    # none): nobody can have the hall send their messages to somebody else.
    verified_email: Mapped[str | None] = mapped_column(sa.String(200))
    verified_wecom_user_id: Mapped[str | None] = mapped_column(sa.String(64))
    # The codes waiting to be typed: {channel: {address, hash, expires_at, attempts}}.
    verification: Mapped[dict | None] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationCursor(db.Model):
    """The outbox cursor: the last instance event the notifier has turned into messages."""

    __tablename__ = "notification_cursors"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
