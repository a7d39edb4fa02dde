"""Variance studies and robustness follow-ups: hypothesis.variance_study, hypothesis.follows_id,
hypothesis.robustness, run.streams.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _hypothesis_triggers() -> list[str]:
    """The triggers on hypothesis (0001 protects registered entries with them): a batch rebuild
    drops the table and with it its triggers, so they are put back afterwards."""
    rows = op.get_bind().exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'hypothesis' ORDER BY name").fetchall()
    return [row[0] for row in rows]


def upgrade() -> None:
    triggers = _hypothesis_triggers()
    with op.batch_alter_table("hypothesis", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variance_study", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("follows_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("robustness", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_hypothesis_follows_id"), ["follows_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_hypothesis_follows_id_hypothesis"), "hypothesis", ["follows_id"], ["id"], ondelete="SET NULL"
        )
    for sql in triggers:
        op.execute(sql)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("streams", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("streams")
    triggers = _hypothesis_triggers()
    with op.batch_alter_table("hypothesis", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_hypothesis_follows_id_hypothesis"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_hypothesis_follows_id"))
        batch_op.drop_column("robustness")
        batch_op.drop_column("follows_id")
        batch_op.drop_column("variance_study")
    for sql in triggers:
        op.execute(sql)
