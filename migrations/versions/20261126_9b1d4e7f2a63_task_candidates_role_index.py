"""task_candidates: an index on the role rows again (role, unit, task), for "instances I took part in"

Migration 3f8a2c6d1e47 replaced the (role_code, org_unit_id) index by partial indexes over the claimable
rows, which serve the inbox; the instance list also asks which tasks were ever offered to a person's roles,
claimable or not. Rows that name a person, not a role, stay out of it.

Revision ID: 9b1d4e7f2a63
Revises: 3f8a2c6d1e47
Create Date: 2026-11-26 20:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "9b1d4e7f2a63"
down_revision = "3f8a2c6d1e47"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_task_candidates_role_unit", "task_candidates", ["role_code", "org_unit_id", "task_id"],
                    postgresql_where=sa.text("role_code IS NOT NULL"),
                    sqlite_where=sa.text("role_code IS NOT NULL"))


def downgrade():
    op.drop_index("ix_task_candidates_role_unit", table_name="task_candidates")
