"""Indexes for `logbook status` and `logbook list` on large logbooks: run (ended_at DESC, id) and run (retry_of).

- ``ix_run_ended_at_desc_id``: the newest finished runs in the order `status` lists them (newest
  end first, ties in queue order); without it "the 50 most recent runs" sorts every run.
- ``ix_run_retry_of``: "the seed's latest attempt" (no run retries it) reads the few retries
  instead of every run of the logbook.
Indexes only: no table is rebuilt, so the hash chain's triggers stay as they are.

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_run_ended_at_desc_id", "run", [sa.text("ended_at DESC"), "id"])
    op.create_index("ix_run_retry_of", "run", ["retry_of"])


def downgrade() -> None:
    op.drop_index("ix_run_retry_of", table_name="run")
    op.drop_index("ix_run_ended_at_desc_id", table_name="run")
