"""Commands shown and confirmed before their first run in a logbook: confirmed_command.

Revision ID: 0009
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

revision = "0009"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "confirmed_command",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("shown", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("confirmed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confirmed_command")),
    )
    with op.batch_alter_table("confirmed_command", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_confirmed_command_digest"), ["digest"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("confirmed_command", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_confirmed_command_digest"))
    op.drop_table("confirmed_command")
