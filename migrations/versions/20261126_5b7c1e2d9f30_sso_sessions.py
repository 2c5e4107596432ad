"""sign-on sessions (CAS single logout, OIDC logout)

Revision ID: 5b7c1e2d9f30
Revises: da1d193246f4
Create Date: 2026-11-26 10:00:00

"""
import sqlalchemy as sa
from alembic import op

import hall.db_types  # noqa: F401 - custom column types

# revision identifiers, used by Alembic.
revision = '5b7c1e2d9f30'
down_revision = 'da1d193246f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sso_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=10), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=True),
    sa.Column('id_token', sa.Text(), nullable=True),
    sa.Column('created_at', hall.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', hall.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sso_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sso_sessions')),
    sa.UniqueConstraint('key', name=op.f('uq_sso_sessions_key'))
    )
    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sso_sessions_provider_external', ['provider', 'external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sso_sessions_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sso_sessions_user_id'))
        batch_op.drop_index('ix_sso_sessions_provider_external')
    op.drop_table('sso_sessions')
