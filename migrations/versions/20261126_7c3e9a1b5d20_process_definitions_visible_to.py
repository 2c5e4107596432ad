"""process_definitions.visible_to: roles that read every instance of a process (process property visibleTo)

Revision ID: 7c3e9a1b5d20
Revises: 1d541d6933b8
Create Date: 2026-11-26 10:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7c3e9a1b5d20"
down_revision = "1d541d6933b8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("process_definitions") as batch:
        batch.add_column(sa.Column("visible_to", sa.JSON(), nullable=False, server_default="[]"))


def downgrade():
    with op.batch_alter_table("process_definitions") as batch:
        batch.drop_column("visible_to")
