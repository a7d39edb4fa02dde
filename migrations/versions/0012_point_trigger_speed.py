"""The metric-point insert trigger, asked the cheap way: a point may be added to a run only while
the run is queued or running.

0008's trigger asked whether the run's status is IN the five finished states; SQLite evaluates
that list for every inserted point, which cost about half of a point's insert time (4–5 µs of
10, benchmarks/results/engine_idle.md). Two comparisons against the active states refuse the same
inserts (a run's status is always one of the active or finished states, ``db/runstatus.py``) at
about half that cost, and refuse a status added later until it is named here.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NAME = "metric_point_finished_insert"
MESSAGE = "the metric points of a finished run are immutable"
ACTIVE_ONLY = (f"CREATE TRIGGER {NAME} BEFORE INSERT ON metric_point "
               "WHEN (SELECT status <> 'running' AND status <> 'queued' FROM run WHERE id = NEW.run_id) "
               f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
FINISHED_LIST = (f"CREATE TRIGGER {NAME} BEFORE INSERT ON metric_point "
                 "WHEN (SELECT status FROM run WHERE id = NEW.run_id) IN "
                 "('succeeded', 'failed', 'diverged', 'crashed', 'cancelled') "
                 f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def upgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {NAME}")
    op.execute(ACTIVE_ONLY)


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {NAME}")
    op.execute(FINISHED_LIST)
