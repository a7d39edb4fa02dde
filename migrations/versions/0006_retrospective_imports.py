"""Entries imported from other trackers: hypothesis.retrospective, hypothesis.import_source, run.source_id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE ADD COLUMN, not a batch rebuild: a rebuild would drop the triggers that keep
    # registered entries immutable (0001).
    op.add_column("hypothesis", sa.Column("retrospective", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("hypothesis", sa.Column("import_source", sa.JSON(), nullable=True))
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_id", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("source_id")
    with op.batch_alter_table("hypothesis", schema=None) as batch_op:
        batch_op.drop_column("import_source")
        batch_op.drop_column("retrospective")
