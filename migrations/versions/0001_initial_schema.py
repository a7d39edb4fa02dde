"""Initial schema: entries, arms, runs, metric points, amendments, audits, workers.

Registered content is protected by triggers: once an entry is registered, its registration
(time, hash, canonical content, git provenance) cannot be changed, the entry cannot be deleted,
and amendments can be neither edited nor deleted.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


# Columns fixed at registration; changing any of them afterwards would rewrite history.
REGISTRATION_COLUMNS = (
    "registered_at", "registration_hash", "registered_content", "in_git_repo", "repo_root",
    "git_commit", "git_branch", "git_dirty", "git_diff", "git_untracked",
)

TRIGGERS = {
    "hypothesis_registration_immutable": (
        "CREATE TRIGGER hypothesis_registration_immutable BEFORE UPDATE ON hypothesis "
        "WHEN OLD.registered_at IS NOT NULL AND ("
        + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in REGISTRATION_COLUMNS)
        + ") BEGIN SELECT RAISE(ABORT, 'registered entries are immutable: add an amendment'); END"
    ),
    "hypothesis_registered_undeletable": (
        "CREATE TRIGGER hypothesis_registered_undeletable BEFORE DELETE ON hypothesis "
        "WHEN OLD.registered_at IS NOT NULL "
        "BEGIN SELECT RAISE(ABORT, 'registered entries cannot be deleted'); END"
    ),
    "amendment_append_only_update": (
        "CREATE TRIGGER amendment_append_only_update BEFORE UPDATE ON amendment "
        "BEGIN SELECT RAISE(ABORT, 'amendments are append-only'); END"
    ),
    "amendment_append_only_delete": (
        "CREATE TRIGGER amendment_append_only_delete BEFORE DELETE ON amendment "
        "BEGIN SELECT RAISE(ABORT, 'amendments are append-only'); END"
    ),
}


def upgrade() -> None:
    op.create_table('hypothesis',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(), nullable=False),
    sa.Column('title', sa.String(), nullable=False),
    sa.Column('statement', sa.String(), nullable=False),
    sa.Column('metric', sa.String(), nullable=False),
    sa.Column('goal', sa.String(), nullable=False),
    sa.Column('min_effect', sa.Float(), nullable=True),
    sa.Column('alpha', sa.Float(), nullable=False),
    sa.Column('seeds_per_arm', sa.Integer(), nullable=False),
    sa.Column('planned_seeds', sa.JSON(), nullable=False),
    sa.Column('trainer', sa.JSON(), nullable=False),
    sa.Column('baseline_arm', sa.String(), nullable=False),
    sa.Column('deterministic', sa.Boolean(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('notes', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('verdict', sa.String(), nullable=True),
    sa.Column('verdict_detail', sa.JSON(), nullable=True),
    sa.Column('source_path', sa.String(), nullable=True),
    sa.Column('source_text', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=True),
    sa.Column('registration_hash', sa.String(), nullable=True),
    sa.Column('registered_content', sa.JSON(), nullable=True),
    sa.Column('in_git_repo', sa.Boolean(), nullable=True),
    sa.Column('repo_root', sa.String(), nullable=True),
    sa.Column('git_commit', sa.String(), nullable=True),
    sa.Column('git_branch', sa.String(), nullable=True),
    sa.Column('git_dirty', sa.Boolean(), nullable=True),
    sa.Column('git_diff', sa.String(), nullable=True),
    sa.Column('git_untracked', sa.JSON(), nullable=True),
    sa.Column('environment', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hypothesis'))
    )
    with op.batch_alter_table('hypothesis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hypothesis_registration_hash'), ['registration_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_hypothesis_slug'), ['slug'], unique=True)

    op.create_table('worker',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('pid_start_time', sa.Float(), nullable=True),
    sa.Column('slots', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.Column('stopped_at', sa.DateTime(), nullable=True),
    sa.Column('log_path', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker'))
    )
    op.create_table('amendment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hypothesis_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(), nullable=False),
    sa.Column('old_value', sa.JSON(), nullable=True),
    sa.Column('new_value', sa.JSON(), nullable=True),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['hypothesis_id'], ['hypothesis.id'], name=op.f('fk_amendment_hypothesis_id_hypothesis'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_amendment'))
    )
    with op.batch_alter_table('amendment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_amendment_hypothesis_id'), ['hypothesis_id'], unique=False)

    op.create_table('arm',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hypothesis_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('role', sa.String(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('trainer', sa.JSON(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_hash', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('added_by_amendment', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['hypothesis_id'], ['hypothesis.id'], name=op.f('fk_arm_hypothesis_id_hypothesis'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arm')),
    sa.UniqueConstraint('hypothesis_id', 'name', name='uq_arm_hypothesis_id_name')
    )
    with op.batch_alter_table('arm', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_arm_hypothesis_id'), ['hypothesis_id'], unique=False)

    op.create_table('audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hypothesis_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('n_seeds', sa.Integer(), nullable=False),
    sa.Column('commitment', sa.String(), nullable=False),
    sa.Column('salt', sa.String(), nullable=True),
    sa.Column('seeds', sa.JSON(), nullable=True),
    sa.Column('git_commit', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('outcome', sa.String(), nullable=True),
    sa.Column('original_verdict', sa.JSON(), nullable=True),
    sa.Column('audit_verdict', sa.JSON(), nullable=True),
    sa.Column('concluded_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['hypothesis_id'], ['hypothesis.id'], name=op.f('fk_audit_hypothesis_id_hypothesis'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit'))
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_hypothesis_id'), ['hypothesis_id'], unique=False)

    op.create_table('run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arm_id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('seed_origin', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('rerun_of', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.String(), nullable=True),
    sa.Column('batch_size', sa.Integer(), nullable=True),
    sa.Column('git_commit', sa.String(), nullable=True),
    sa.Column('environment', sa.JSON(), nullable=True),
    sa.Column('determinism', sa.JSON(), nullable=True),
    sa.Column('host', sa.String(), nullable=True),
    sa.Column('device', sa.String(), nullable=True),
    sa.Column('gpu', sa.String(), nullable=True),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('pid_start_time', sa.Float(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('queued_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('wall_time_s', sa.Float(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('error_tail', sa.String(), nullable=True),
    sa.Column('run_dir', sa.String(), nullable=True),
    sa.Column('log_path', sa.String(), nullable=True),
    sa.Column('final_metrics', sa.JSON(), nullable=True),
    sa.Column('predictions_path', sa.String(), nullable=True),
    sa.Column('predictions_sha256', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['arm_id'], ['arm.id'], name=op.f('fk_run_arm_id_arm'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['audit_id'], ['audit.id'], name=op.f('fk_run_audit_id_audit'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], name=op.f('fk_run_worker_id_worker'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run'))
    )
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_arm_id'), ['arm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_audit_id'), ['audit_id'], unique=False)
        batch_op.create_index('ix_run_status_queued_at', ['status', 'queued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_worker_id'), ['worker_id'], unique=False)

    op.create_table('metric_point',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], name=op.f('fk_metric_point_run_id_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_point'))
    )
    with op.batch_alter_table('metric_point', schema=None) as batch_op:
        batch_op.create_index('ix_metric_point_run_name_step', ['run_id', 'name', 'step'], unique=False)


    for sql in TRIGGERS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table('metric_point', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_point_run_name_step')

    op.drop_table('metric_point')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_worker_id'))
        batch_op.drop_index('ix_run_status_queued_at')
        batch_op.drop_index(batch_op.f('ix_run_audit_id'))
        batch_op.drop_index(batch_op.f('ix_run_arm_id'))

    op.drop_table('run')
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_hypothesis_id'))

    op.drop_table('audit')
    with op.batch_alter_table('arm', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_arm_hypothesis_id'))

    op.drop_table('arm')
    with op.batch_alter_table('amendment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_amendment_hypothesis_id'))

    op.drop_table('amendment')
    op.drop_table('worker')
    with op.batch_alter_table('hypothesis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hypothesis_slug'))
        batch_op.drop_index(batch_op.f('ix_hypothesis_registration_hash'))

    op.drop_table('hypothesis')
