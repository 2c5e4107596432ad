"""process_definitions.enabled: administrators take a process off the catalogue (停用) and put it back

Revision ID: c4e8d2a7b915
Revises: 9b1d4e7f2a63
Create Date: 2026-11-27 04:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c4e8d2a7b915"
down_revision = "9b1d4e7f2a63"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("process_definitions") as batch:
        batch.add_column(sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade():
    with op.batch_alter_table("process_definitions") as batch:
        batch.drop_column("enabled")
