"""task_candidates.claimable: whether the row's task can be claimed now (ready, nobody assigned), kept by a
trigger on human_tasks, with partial indexes over the claimable rows for the inbox's claimable views

Revision ID: 3f8a2c6d1e47
Revises: 7c3e9a1b5d20
Create Date: 2026-11-26 19:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "3f8a2c6d1e47"
down_revision = "7c3e9a1b5d20"
branch_labels = None
depends_on = None

# Fires only when a task becomes claimable or stops being so (claimed, released, completed, cancelled,
# transferred, blocked by a signer): a submit of an assigned task, the common case, does not fire it.
_CHANGED = ("(OLD.state = 'ready' AND OLD.assignee_id IS NULL) {distinct} "
            "(NEW.state = 'ready' AND NEW.assignee_id IS NULL)")
_SET = ("UPDATE task_candidates SET claimable = (NEW.state = 'ready' AND NEW.assignee_id IS NULL) "
        "WHERE task_id = NEW.id")


def upgrade():
    with op.batch_alter_table("task_candidates") as batch:
        batch.add_column(sa.Column("claimable", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE task_candidates SET claimable = EXISTS (SELECT 1 FROM human_tasks t WHERE t.id = "
               "task_candidates.task_id AND t.state = 'ready' AND t.assignee_id IS NULL)")
    op.drop_index("ix_task_candidates_role_unit", table_name="task_candidates")
    op.create_index("ix_task_candidates_claimable_role", "task_candidates", ["role_code", "org_unit_id", "task_id"],
                    postgresql_where=sa.text("claimable"), sqlite_where=sa.text("claimable = 1"))
    op.create_index("ix_task_candidates_claimable_user", "task_candidates", ["user_id", "task_id"],
                    postgresql_where=sa.text("claimable"), sqlite_where=sa.text("claimable = 1"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION hall_task_claimable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   + _SET + "; RETURN NULL; END $$")
        op.execute("CREATE TRIGGER human_tasks_claimable AFTER UPDATE OF state, assignee_id ON human_tasks "
                   "FOR EACH ROW WHEN (" + _CHANGED.format(distinct="IS DISTINCT FROM") + ") "
                   "EXECUTE FUNCTION hall_task_claimable()")
    else:
        op.execute("CREATE TRIGGER human_tasks_claimable AFTER UPDATE OF state, assignee_id ON human_tasks "
                   "FOR EACH ROW WHEN " + _CHANGED.format(distinct="IS NOT") + " BEGIN " + _SET + "; END")


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS human_tasks_claimable" +
               (" ON human_tasks" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hall_task_claimable()")
    op.drop_index("ix_task_candidates_claimable_user", table_name="task_candidates")
    op.drop_index("ix_task_candidates_claimable_role", table_name="task_candidates")
    op.create_index("ix_task_candidates_role_unit", "task_candidates", ["role_code", "org_unit_id"])
    with op.batch_alter_table("task_candidates") as batch:
        batch.drop_column("claimable")
