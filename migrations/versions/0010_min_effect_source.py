"""Where δ comes from: hypothesis.min_effect_source (a pilot request on a draft, its resolution once registered).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hypothesis", schema=None) as batch_op:
        batch_op.add_column(sa.Column("min_effect_source", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hypothesis", schema=None) as batch_op:
        batch_op.drop_column("min_effect_source")
