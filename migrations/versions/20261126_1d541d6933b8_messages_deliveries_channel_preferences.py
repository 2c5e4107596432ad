"""messages, deliveries, channel preferences, notification cursor (notifications)

Revision ID: 1d541d6933b8
Revises: 5b7c1e2d9f30
Create Date: 2026-11-26 09:58:11.220448

"""

import sqlalchemy as sa
from alembic import op

import hall.db_types  # noqa: F401 - custom column types

# revision identifiers, used by Alembic.
revision = "1d541d6933b8"
down_revision = "5b7c1e2d9f30"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification_cursors",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notification_cursors")),
    )
    op.create_table(
        "channel_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("mobile", sa.String(length=32), nullable=True),
        sa.Column("wecom_user_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", hall.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_channel_preferences_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_channel_preferences")),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", hall.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", hall.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("digested_at", hall.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["process_instances.id"],
            name=op.f("fk_messages_instance_id_process_instances"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["human_tasks.id"], name=op.f("fk_messages_task_id_human_tasks"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_messages_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_messages_dedup_key")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_user_read", ["user_id", "read_at", "id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hall.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", hall.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", hall.db_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", hall.db_types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_deliveries_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_deliveries_idempotency_key")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_message_id"), ["message_id"], unique=False)


def downgrade():
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_message_id"))
        batch_op.drop_index("ix_deliveries_due")

    op.drop_table("deliveries")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_user_read")

    op.drop_table("messages")
    op.drop_table("channel_preferences")
    op.drop_table("notification_cursors")
