"""Runs can execute on a Slurm cluster: where each one went (executor, job id, state, node) and
how often Slurm lost it (requeues after TIMEOUT, PREEMPTED or NODE_FAIL).

Revision ID: 0005
Revises: 0010
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("executor", sa.String(), nullable=False, server_default="local"))
        batch_op.add_column(sa.Column("executor_options", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("slurm_job_id", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("slurm_state", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("node", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("slurm_requeues", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        for name in ("slurm_requeues", "node", "slurm_state", "slurm_job_id", "executor_options", "executor"):
            batch_op.drop_column(name)
