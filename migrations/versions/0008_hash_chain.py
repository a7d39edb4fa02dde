"""Tamper evidence: the per-entry hash chain (chain_link), attempts as rows (run.retry_of), and
triggers that refuse changing or deleting what a chain link covers.

What the triggers refuse (``logbook verify`` also catches each of these when the triggers are
dropped, except the audit rows, which only the triggers protect):
- UPDATE of a finished run (succeeded, failed, diverged, crashed, cancelled): finished attempts
  are immutable; a retry is a new row (``retry_of``).
- DELETE of any run, arm of a registered entry, audit, chain link; UPDATE of a chain link.
- INSERT, UPDATE or DELETE of the metric points of a finished run.
- UPDATE of an arm of a registered entry (amendments add arms, never change them).
- UPDATE of a registered entry's columns that no amendment can change (metric, goal, trainer,
  baseline arm, determinism, slug, source, environment, creation time). The amendable columns
  (title, statement, notes, tags, seeds, planned seeds, δ, α) can only be checked by ``verify``.
- UPDATE of a concluded audit.
Registered entries that exist when this runs are sealed (chained as they stand now).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FINISHED = "('succeeded', 'failed', 'diverged', 'crashed', 'cancelled')"
FIXED_AFTER_REGISTRATION = (
    "slug", "metric", "goal", "trainer", "baseline_arm", "deterministic", "source_path", "source_text",
    "environment", "created_at",
)


def _refuse(name: str, when: str, message: str) -> str:
    return f"CREATE TRIGGER {name} {when} BEGIN SELECT RAISE(ABORT, '{message}'); END"


TRIGGERS = {
    "run_finished_immutable": _refuse(
        "run_finished_immutable", f"BEFORE UPDATE ON run WHEN OLD.status IN {FINISHED}",
        "finished run attempts are immutable: requeue adds a new attempt"),
    "run_undeletable": _refuse("run_undeletable", "BEFORE DELETE ON run", "runs cannot be deleted"),
    "metric_point_finished_insert": _refuse(
        "metric_point_finished_insert",
        f"BEFORE INSERT ON metric_point WHEN (SELECT status FROM run WHERE id = NEW.run_id) IN {FINISHED}",
        "the metric points of a finished run are immutable"),
    "metric_point_finished_update": _refuse(
        "metric_point_finished_update",
        f"BEFORE UPDATE ON metric_point WHEN (SELECT status FROM run WHERE id = OLD.run_id) IN {FINISHED} "
        f"OR (SELECT status FROM run WHERE id = NEW.run_id) IN {FINISHED}",
        "the metric points of a finished run are immutable"),
    "metric_point_finished_delete": _refuse(
        "metric_point_finished_delete",
        f"BEFORE DELETE ON metric_point WHEN (SELECT status FROM run WHERE id = OLD.run_id) IN {FINISHED}",
        "the metric points of a finished run are immutable"),
    "arm_registered_immutable": _refuse(
        "arm_registered_immutable",
        "BEFORE UPDATE ON arm WHEN (SELECT registered_at FROM hypothesis WHERE id = OLD.hypothesis_id) IS NOT NULL",
        "arms of a registered entry are immutable: amend to add an arm"),
    "arm_registered_undeletable": _refuse(
        "arm_registered_undeletable",
        "BEFORE DELETE ON arm WHEN (SELECT registered_at FROM hypothesis WHERE id = OLD.hypothesis_id) IS NOT NULL",
        "arms of a registered entry cannot be deleted"),
    "hypothesis_fixed_columns": _refuse(
        "hypothesis_fixed_columns",
        "BEFORE UPDATE ON hypothesis WHEN OLD.registered_at IS NOT NULL AND ("
        + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FIXED_AFTER_REGISTRATION) + ")",
        "this column of a registered entry cannot change"),
    "chain_link_immutable": _refuse("chain_link_immutable", "BEFORE UPDATE ON chain_link", "chain links are immutable"),
    "chain_link_undeletable": _refuse("chain_link_undeletable", "BEFORE DELETE ON chain_link", "chain links cannot be deleted"),
    "audit_concluded_immutable": _refuse(
        "audit_concluded_immutable", "BEFORE UPDATE ON audit WHEN OLD.status = 'concluded'",
        "a concluded audit is immutable"),
    "audit_undeletable": _refuse("audit_undeletable", "BEFORE DELETE ON audit", "audits cannot be deleted"),
}


def upgrade() -> None:
    op.create_table(
        "chain_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hypothesis_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["hypothesis_id"], ["hypothesis.id"], name=op.f("fk_chain_link_hypothesis_id_hypothesis"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_link")),
        sa.UniqueConstraint("hypothesis_id", "seq", name="uq_chain_link_hypothesis_id_seq"),
    )
    with op.batch_alter_table("chain_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_link_hypothesis_id"), ["hypothesis_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_link_hash"), ["hash"], unique=False)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_of", sa.Integer(), nullable=True))
    for sql in TRIGGERS.values():
        op.execute(sql)
    # Entries registered before the chain existed are chained as they stand at this upgrade.
    from logbook.entries.chain import seal_existing

    seal_existing(op.get_bind())


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("retry_of")
    with op.batch_alter_table("chain_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_link_hash"))
        batch_op.drop_index(batch_op.f("ix_chain_link_hypothesis_id"))
    op.drop_table("chain_link")
