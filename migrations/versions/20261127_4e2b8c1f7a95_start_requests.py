"""start_requests: the one-time token of a start form, so that a second POST of it opens the instance the
first one started instead of starting another

Revision ID: 4e2b8c1f7a95
Revises: c4e8d2a7b915
Create Date: 2026-11-27 04:10:00
"""

import sqlalchemy as sa
from alembic import op

from hall.db_types import UTCDateTime

revision = "4e2b8c1f7a95"
down_revision = "c4e8d2a7b915"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "start_requests",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("process_instances.id", ondelete="CASCADE")),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("start_requests")
