"""channel_preferences: verified addresses and a pending verification code, so that notifications go only
to an e-mail address or WeCom account its owner has confirmed with a code sent there

Revision ID: 7d3f9b2c4a18
Revises: 4e2b8c1f7a95
Create Date: 2026-11-27 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7d3f9b2c4a18"
down_revision = "4e2b8c1f7a95"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("channel_preferences") as batch:
        batch.add_column(sa.Column("verified_email", sa.String(200)))
        batch.add_column(sa.Column("verified_wecom_user_id", sa.String(64)))
        batch.add_column(sa.Column("verification", sa.JSON()))
    # Addresses saved before verification existed keep working: their owners chose them.
    op.execute("UPDATE channel_preferences SET verified_email = email, verified_wecom_user_id = wecom_user_id")


def downgrade():
    with op.batch_alter_table("channel_preferences") as batch:
        batch.drop_column("verification")
        batch.drop_column("verified_wecom_user_id")
        batch.drop_column("verified_email")
