"""The logbook's tables (SQLModel).

These classes describe the schema; the schema itself is created and changed only by the Alembic
migrations under ``migrations/``. ``tests/test_db.py`` checks that the two agree.

Times are UTC. JSON columns hold plain lists and dicts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, MetaData, UniqueConstraint, false
from sqlmodel import Field, SQLModel

# Constraint names are derived from this convention so that batch migrations on SQLite (which
# rebuild tables) can find and alter them by name.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (time columns store UTC and read back as UTC)."""
    return datetime.now(timezone.utc)


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Any:
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True),
    )


class Hypothesis(SQLModel, table=True):
    """A logbook entry: one registered claim and how it is to be tested.

    The live columns (title, min_effect, seeds_per_arm, ...) hold the current values, amendments
    applied. ``registered_content`` keeps the canonical content exactly as registered, and
    ``registration_hash`` is the SHA-256 of it; neither changes after registration.
    """

    __tablename__ = "hypothesis"

    id: Optional[int] = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True)
    title: str
    statement: str
    metric: str
    goal: str  # "minimize" or "maximize"
    min_effect: Optional[float] = None  # δ in metric units; None: a legacy "auto" entry, or a draft awaiting its pilot
    # None: δ was given as a number. A dict: {from_pilot, sd_multiple} on a draft, and once registered
    # the resolution (pilot slug and hash, pooled sd, degrees of freedom) that set min_effect.
    min_effect_source: Optional[dict] = _json(nullable=True)
    alpha: float = 0.05
    seeds_per_arm: int
    planned_seeds: list = _json()
    trainer: dict = _json()  # {"name": ...} or {"command": ..., "metrics": {...}, ...}
    baseline_arm: str
    deterministic: bool = False
    tags: list = _json()
    notes: str = ""
    status: str = "draft"  # draft, registered, running, concluded
    verdict: Optional[str] = None  # positive, negative, inconclusive (cached by `verdict`)
    verdict_detail: Optional[dict] = _json(nullable=True)
    source_path: Optional[str] = None
    source_text: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    registered_at: Optional[datetime] = None
    registration_hash: Optional[str] = Field(default=None, index=True)
    registered_content: Optional[dict] = _json(nullable=True)
    # Provenance at registration. in_git_repo False means registration happened outside git.
    in_git_repo: Optional[bool] = None
    repo_root: Optional[str] = None
    git_commit: Optional[str] = None
    git_branch: Optional[str] = None
    git_dirty: Optional[bool] = None
    git_diff: Optional[str] = None
    git_untracked: Optional[list] = _json(nullable=True)
    environment: Optional[dict] = _json(nullable=True)
    # Imported from another tracker after the results existed (not pre-registered); where from.
    retrospective: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    import_source: Optional[dict] = _json(nullable=True)
    # A pre-registered variance study ({"sources": [...], "seeds": n}; seeds drawn at registration
    # are added as "fixed_seed" and "group_seeds") and, on a robustness follow-up, what it varies.
    variance_study: Optional[dict] = _json(nullable=True)
    follows_id: Optional[int] = _fk("hypothesis.id", nullable=True, ondelete="SET NULL")
    robustness: Optional[dict] = _json(nullable=True)


class Arm(SQLModel, table=True):
    """One configuration under test: the baseline or a candidate."""

    __tablename__ = "arm"
    __table_args__ = (UniqueConstraint("hypothesis_id", "name", name="uq_arm_hypothesis_id_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    hypothesis_id: int = _fk("hypothesis.id")
    name: str
    role: str  # baseline or candidate
    position: int = 0
    trainer: dict = _json()
    config: dict = _json()
    config_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    added_by_amendment: bool = False


class Worker(SQLModel, table=True):
    """A worker process that runs queued runs on this host's slots."""

    __tablename__ = "worker"

    id: Optional[int] = Field(default=None, primary_key=True)
    host: str
    pid: int
    pid_start_time: Optional[float] = None  # process start time, so a reused pid is not mistaken
    slots: list = _json()  # e.g. [{"slot": 0, "gpu": "0"}, ...]
    status: str = "running"  # running, stopped, crashed
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    stopped_at: Optional[datetime] = None
    log_path: Optional[str] = None


class Audit(SQLModel, table=True):
    """A rerun of an entry on fresh seeds, committed to (hashed) before any run starts."""

    __tablename__ = "audit"

    id: Optional[int] = Field(default=None, primary_key=True)
    hypothesis_id: int = _fk("hypothesis.id")
    created_at: datetime = Field(default_factory=utcnow)
    n_seeds: int
    commitment: str  # SHA-256 over the seeds and the salt
    salt: Optional[str] = None  # revealed with the seeds when the audit is over
    seeds: Optional[list] = _json(nullable=True)
    git_commit: Optional[str] = None
    worktree: Optional[str] = None  # the checkout of git_commit the audit runs in
    seeds_rule: Optional[str] = None  # how the number of seeds was chosen
    status: str = "running"  # running, concluded
    outcome: Optional[str] = None  # replicated, refuted, inconclusive
    original_verdict: Optional[dict] = _json(nullable=True)
    audit_verdict: Optional[dict] = _json(nullable=True)
    concluded_at: Optional[datetime] = None


class Run(SQLModel, table=True):
    """One seed of one arm: queued, then run once by a worker."""

    __tablename__ = "run"
    __table_args__ = (Index("ix_run_status_queued_at", "status", "queued_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    arm_id: int = _fk("arm.id")
    audit_id: Optional[int] = _fk("audit.id", nullable=True, ondelete="SET NULL")
    seed: int
    seed_origin: str = "planned"  # planned, extra, audit, rerun, variance:<source> (never judged)
    streams: Optional[dict] = _json(nullable=True)  # stream seeds given explicitly (variance studies, held sources)
    status: str = "queued"  # queued, running, succeeded, failed, diverged, crashed, cancelled
    cancel_requested: bool = False  # set by `logbook cancel`; the worker running it stops it
    attempt: int = 1
    retry_of: Optional[int] = Field(default=None, index=True)  # the previous attempt of this seed (requeue adds a row, never resets one)
    rerun_of: Optional[int] = None
    workdir: Optional[str] = None  # where the run executes, when not the entry's repository (audits, reruns)
    batch_id: Optional[str] = None
    batch_size: Optional[int] = None
    git_commit: Optional[str] = None
    environment: Optional[dict] = _json(nullable=True)
    determinism: Optional[dict] = _json(nullable=True)
    host: Optional[str] = None
    device: Optional[str] = None
    gpu: Optional[str] = None
    worker_id: Optional[int] = _fk("worker.id", nullable=True, ondelete="SET NULL")
    pid: Optional[int] = None
    pid_start_time: Optional[float] = None
    heartbeat_at: Optional[datetime] = None
    queued_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    wall_time_s: Optional[float] = None
    exit_code: Optional[int] = None
    error_tail: Optional[str] = None
    run_dir: Optional[str] = None
    log_path: Optional[str] = None
    final_metrics: Optional[dict] = _json(nullable=True)
    predictions_path: Optional[str] = None
    predictions_sha256: Optional[str] = None
    # Where the run executes: "local" (a child of the worker) or "slurm" (an array task).
    executor: str = Field(default="local", sa_column_kwargs={"server_default": "local"})
    executor_options: Optional[dict] = _json(nullable=True)  # the resolved slurm block, for slurm runs
    slurm_job_id: Optional[str] = None  # "<array job id>_<task index>"
    slurm_state: Optional[str] = None  # as sacct last reported it (PENDING, RUNNING, TIMEOUT, ...)
    node: Optional[str] = None
    slurm_requeues: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    source_id: Optional[str] = None  # the run's id in the tracker it was imported from


# The newest finished runs first, ties in queue order: `logbook status`'s recent runs (db/reads.py).
Index("ix_run_ended_at_desc_id", Run.__table__.c.ended_at.desc(), Run.__table__.c.id)


class MetricPoint(SQLModel, table=True):
    """One value of one metric at one step of a run (learning curves)."""

    __tablename__ = "metric_point"
    __table_args__ = (Index("ix_metric_point_run_name_step", "run_id", "name", "step"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(sa_column=Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False))
    name: str
    step: int
    value: Optional[float] = None  # SQLite stores NaN as NULL: NULL means a non-finite value


class Amendment(SQLModel, table=True):
    """A dated change to a registered entry, with its reason. Never edited or deleted."""

    __tablename__ = "amendment"

    id: Optional[int] = Field(default=None, primary_key=True)
    hypothesis_id: int = _fk("hypothesis.id")
    field: str
    old_value: Any = _json(nullable=True)
    new_value: Any = _json(nullable=True)
    reason: str
    created_at: datetime = Field(default_factory=utcnow)


class ConfirmedCommand(SQLModel, table=True):
    """A command or module trainer that was shown to a person and confirmed before its first run
    in this logbook (``logbook.engine.confirm``). Remembered by the digest of the arm's trainer
    spec and config, so a changed command asks again."""

    __tablename__ = "confirmed_command"

    id: Optional[int] = Field(default=None, primary_key=True)
    digest: str = Field(unique=True, index=True)
    kind: str  # command or module
    shown: str  # the command line as it was shown
    confirmed_by: str  # user@host
    confirmed_at: datetime = Field(default_factory=utcnow)


class ChainLink(SQLModel, table=True):
    """One link of an entry's hash chain (``logbook.entries.chain``): the registration, an
    amendment, or a finished run attempt. ``payload`` is the canonical record the link covers
    (kept so that ``verify`` can name the field that differs), ``payload_sha256`` its hash, and
    ``hash`` the SHA-256 over this link's fields and the previous link's hash."""

    __tablename__ = "chain_link"
    __table_args__ = (UniqueConstraint("hypothesis_id", "seq", name="uq_chain_link_hypothesis_id_seq"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    hypothesis_id: int = _fk("hypothesis.id")
    seq: int
    kind: str  # registration, amendment, attempt
    ref_id: int  # the hypothesis, amendment or run the link covers
    payload: dict = _json()
    payload_sha256: str
    prev_hash: Optional[str] = None
    hash: str = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow)
