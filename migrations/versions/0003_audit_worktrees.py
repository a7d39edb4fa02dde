"""Audits and reruns execute in a checkout of a past commit: run.workdir, audit.worktree, audit.seeds_rule.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workdir", sa.String(), nullable=True))
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worktree", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("seeds_rule", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_column("seeds_rule")
        batch_op.drop_column("worktree")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("workdir")
