"""From "runs found in another tracker" to a retrospective logbook entry.

Every reader (MLflow, TensorBoard, W&B, CSV/Parquet) yields ``SourceRun`` objects: the run's id in
its source, the fields an arm or a seed can be read from, its status, the learning curve of the
chosen metric (or one final value), and what the source recorded about how it was made (params,
git commit, host, command). This module does the rest, the same for every source:

- ``gather`` reads the arm and seed of every run, reduces each curve to one value, and checks the
  source is judgeable (at least two arms, each with at least two seeds, one run per seed, the
  metric logged somewhere, the baseline among the arms). Any problem is one InputError line and
  nothing is written.
- ``write_import`` stores the result in one transaction: a new registered entry marked
  ``retrospective`` (or, when the same source was imported before, only the runs it did not have
  yet, added as a dated amendment; a re-import that finds nothing new writes nothing).

An imported entry is registered at import time with the same canonical content and hash as a
native one (``registration_content``), plus ``retrospective: true``, the import source and the
SHA-256 of the imported values, so the hash covers what was imported.

One file (over 400 lines) because every source ends in the same checks and the same single transaction that writes a retrospective entry; the per-source readers are the small modules beside it.
"""

from __future__ import annotations

import math
import re
import socket
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from sqlmodel import Session, select

from logbook.db.engine import Store
from logbook.db.models import Amendment, Arm, Hypothesis, MetricPoint, Run, utcnow
from logbook.db.queries import arms_of, iso
from logbook.entries.chain import link_amendment, link_finished_runs, link_registration
from logbook.entries.registry import canonical_json, config_hash, registration_content, sha256_hex, _unique_slug
from logbook.entries.retro import RETRO_NOTE
from logbook.errors import InputError

KINDS = ("mlflow", "tensorboard", "wandb", "csv")
REDUCE_RE = re.compile(r"^(last|min|max|mean-last-(\d+))$")
NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|inf|-inf)"
POINTS_BATCH = 20_000


@dataclass
class SourceRun:
    """One run as its tracker recorded it."""

    source_id: str
    fields: dict[str, Any]  # what --arm-by / --seed-by may name: params.x, tags.x, columns, placeholders
    status: str | None  # succeeded, failed, cancelled, diverged; None: still running (skipped)
    steps: np.ndarray | None = None  # the chosen metric's curve, in step order
    values: np.ndarray | None = None
    final: float | None = None  # the value when the source has no curve (a table)
    params: dict[str, Any] = field(default_factory=dict)  # the run's recorded configuration
    commit: str | None = None
    host: str | None = None
    command: str | None = None
    started_at: Any = None
    ended_at: Any = None


@dataclass(frozen=True)
class ImportOptions:
    kind: str
    location: str
    experiment: str | None
    arm_by: str
    seed_by: str
    metric: str
    reduce: str
    baseline: str
    delta: float
    lower_is_better: bool
    title: str | None = None
    alpha: float = 0.05
    command: str | None = None
    metric_pattern: str | None = None
    commit: str | None = None
    repo: str | None = None
    curves: bool = True  # store each run's learning curve of the metric (False: last values only)

    def source_key(self) -> dict[str, Any]:
        """What makes two imports "the same source": re-importing it adds only new runs."""
        return {"kind": self.kind, "location": self.location, "experiment": self.experiment, "metric": self.metric,
                "arm_by": self.arm_by, "seed_by": self.seed_by, "reduce": self.reduce}

    def to_dict(self) -> dict[str, Any]:
        return {**self.source_key(), "baseline": self.baseline, "delta": self.delta,
                "lower_is_better": self.lower_is_better, "alpha": self.alpha, "command": self.command,
                "metric_pattern": self.metric_pattern, "commit": self.commit, "repo": self.repo,
                "curves": self.curves}


@dataclass
class ImportedRun:
    source: SourceRun
    arm: str
    seed: int
    value: float | None  # None: the run has no value of the metric; NaN: non-finite (diverged)
    status: str


@dataclass
class Gathered:
    """A judgeable source: its runs by arm, baseline first."""

    runs: list[ImportedRun]
    arms: list[str]
    skipped_unfinished: int = 0

    def seeds(self) -> dict[str, int]:
        return dict(Counter(r.arm for r in self.runs))


def parse_reduce(text: str) -> str:
    if not REDUCE_RE.match(text or ""):
        raise InputError(f"--reduce: expected last, min, max or mean-last-K (K a whole number ≥ 1), got {text!r}")
    if text.startswith("mean-last-") and int(text.rsplit("-", 1)[1]) < 1:
        raise InputError(f"--reduce: expected K ≥ 1 in mean-last-K, got {text!r}")
    return text


def reduce_curve(values: np.ndarray, how: str) -> float:
    """One value from a curve in step order. A non-finite value where the reduction looks (any
    point for min, max; the last K for mean-last-K; the last for last) makes the result NaN, so a
    run that diverged is counted as diverged, never rescued by an earlier good point."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan
    if how == "last":
        window = values[-1:]
        return float(window[0]) if np.isfinite(window).all() else math.nan
    if how in ("min", "max"):
        if not np.isfinite(values).all():
            return math.nan
        return float(values.min() if how == "min" else values.max())
    k = int(how.rsplit("-", 1)[1])
    window = values[-k:]
    return float(window.mean()) if np.isfinite(window).all() else math.nan


def _seed_of(raw: Any, run: SourceRun, option: str) -> int:
    try:
        number = float(str(raw).strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise InputError(f"{option}: run {run.source_id}: expected a whole-number seed, got {raw!r}")
    return int(number)


def _field(run: SourceRun, name: str, option: str) -> Any:
    value = run.fields.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        known = ", ".join(sorted(run.fields)[:12]) or "none"
        raise InputError(f"{option}: run {run.source_id} has no {name!r}; expected a field every run records (this run has: {known})")
    return value


def gather(runs: Iterable[SourceRun], options: ImportOptions) -> Gathered:
    """Arms, seeds and values of every finished run; one InputError line for a source that cannot be judged."""
    imported: list[ImportedRun] = []
    skipped = 0
    logged = False
    seen: dict[tuple[str, int], str] = {}
    for run in runs:
        if run.status is None:
            skipped += 1
            continue
        arm = str(_field(run, options.arm_by, "--arm-by")).strip()
        seed = _seed_of(_field(run, options.seed_by, "--seed-by"), run, "--seed-by")
        if (arm, seed) in seen:
            raise InputError(f"--seed-by: arm {arm!r} has seed {seed} in two runs ({seen[(arm, seed)]}, {run.source_id}); "
                             "expected one run per seed")
        seen[(arm, seed)] = run.source_id
        if run.values is not None and len(run.values):
            value: float | None = reduce_curve(run.values, options.reduce)
        elif run.final is not None:
            value = float(run.final)
        else:
            value = None
        logged = logged or value is not None
        status = run.status
        if status == "succeeded" and value is not None and not math.isfinite(value):
            status = "diverged"
        imported.append(ImportedRun(run, arm, seed, value, status))
    where = f"{options.kind} {options.location}" + (f" (experiment {options.experiment})" if options.experiment else "")
    if not imported:
        raise InputError(f"LOCATION: {where}: expected finished runs, found none" + (f" ({skipped} still running)" if skipped else ""))
    if not logged:
        raise InputError(f"--metric: {options.metric!r} was never logged by any of the {len(imported)} runs in {where}")
    counts = Counter(r.arm for r in imported)
    if options.baseline not in counts:
        raise InputError(f"--baseline: expected one of the arms found by {options.arm_by} ({', '.join(sorted(counts))}), got {options.baseline!r}")
    if len(counts) < 2:
        raise InputError(f"--arm-by: {options.arm_by} gives one arm ({options.baseline}); expected a baseline and at least one candidate")
    lonely = sorted(a for a, n in counts.items() if n < 2)
    if lonely:
        raise InputError(f"--seed-by: arm {lonely[0]!r} has one seed; expected at least 2 seeds per arm "
                         f"({len(lonely)} arm(s) with one seed: {', '.join(lonely[:5])})")
    arms = [options.baseline] + sorted(a for a in counts if a != options.baseline)
    order = {name: i for i, name in enumerate(arms)}
    imported.sort(key=lambda r: (order[r.arm], r.seed))
    return Gathered(imported, arms, skipped)


def arm_config(runs: list[ImportedRun], seed_by: str) -> dict[str, Any]:
    """The params every run of one arm shares (the seed left out): the arm's configuration."""
    seed_key = seed_by.split(".", 1)[1] if "." in seed_by else seed_by
    shared: dict[str, Any] | None = None
    for run in runs:
        params = {k: v for k, v in run.source.params.items() if k != seed_key}
        shared = dict(params) if shared is None else {k: v for k, v in shared.items() if params.get(k) == v}
    return dict(sorted((shared or {}).items()))


def _common(values: Iterable[str | None]) -> str | None:
    distinct = {v for v in values if v}
    return distinct.pop() if len(distinct) == 1 else None


def _repo_with(commit: str | None, repo: str | None) -> str | None:
    """The repository to rerun from: --repo, else the git root of the working directory, if it has the commit."""
    where = Path(repo or ".").resolve()
    top = subprocess.run(["git", "-C", str(where), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False)
    if top.returncode != 0:
        if repo:
            raise InputError(f"--repo: {repo}: expected a git repository")
        return None
    root = top.stdout.strip()
    if commit and subprocess.run(["git", "-C", root, "cat-file", "-e", f"{commit}^{{commit}}"],
                                 capture_output=True, check=False).returncode != 0:
        if repo:
            raise InputError(f"--repo: {repo}: expected a repository that has commit {commit[:12]}")
        return None
    return root


def trainer_for(options: ImportOptions, data: Gathered) -> dict[str, Any]:
    """A command trainer when the import knows how to rerun (--command, or one command every run
    recorded with only its seed and arm config differing); else empty: the entry cannot be rerun."""
    command = options.command or template_command(data, options.seed_by)
    if not command:
        return {}
    pattern = options.metric_pattern or rf"{re.escape(options.metric)}\s*[=:]\s*{NUMBER}"
    return {"command": command, "metrics": {options.metric: pattern}}


def template_command(data: Gathered, seed_by: str) -> str | None:
    """A command template from recorded command lines: the seed (and each arm-config value) as a
    whole word becomes a placeholder; used only if the template gives back every run's command."""
    import shlex

    from trainers.command import build_argv  # the command trainer's own substitution, to check round trips

    configs = {arm: arm_config([r for r in data.runs if r.arm == arm], seed_by) for arm in data.arms}
    template = None
    for run in data.runs:
        if not run.source.command:
            return None
        if template is None:
            words = shlex.split(run.source.command)
            swaps = {str(run.seed): "{seed}", **{str(v): "{" + k + "}" for k, v in configs[run.arm].items()
                                              if isinstance(v, (str, int, float)) and not isinstance(v, bool)}}
            template = " ".join(_quote(swaps.get(w, w)) for w in words)
        try:
            again = build_argv(template, run.seed, Path("RUN_DIR"), configs[run.arm])
        except (KeyError, IndexError, ValueError):
            return None
        if again != shlex.split(run.source.command):
            return None
    return template


def _quote(word: str) -> str:
    """Shell-quote a word unless it is plain (braces allowed, so placeholders stay readable)."""
    import shlex

    return word if re.fullmatch(r"[\w@%+=:,./{}-]+", word) else shlex.quote(word)


def values_digest(data: Gathered) -> str:
    """SHA-256 of the imported values (source id, arm, seed, status, value), hashed with the registration."""
    rows = [[r.source.source_id, r.arm, r.seed, r.status, None if r.value is None or not math.isfinite(r.value) else r.value]
            for r in data.runs]
    return sha256_hex(canonical_json(rows))


def _run_row(arm_id: int, run: ImportedRun, metric: str, origin: str, now: Any) -> Run:
    value = run.value if run.value is not None and math.isfinite(run.value) else None
    source = run.source
    return Run(
        arm_id=arm_id, seed=run.seed, seed_origin=origin, status=run.status, attempt=1,
        git_commit=source.commit, host=source.host, queued_at=source.started_at or now,
        started_at=source.started_at, ended_at=source.ended_at,
        wall_time_s=(source.ended_at - source.started_at).total_seconds() if source.started_at and source.ended_at else None,
        final_metrics={metric: value} if value is not None else {},
        environment={"imported": {"source_id": source.source_id, "params": source.params, "command": source.command}},
        source_id=source.source_id,
        error_tail=None if run.status != "succeeded" or value is not None else f"{metric} was not logged by this run",
    )


def _write_runs(session: Session, arm_ids: dict[str, int], runs: list[ImportedRun], metric: str, origin: str,
                curves: bool = True) -> list[int]:
    """Runs and their curves; points go straight to SQLite with executemany, in batches. Returns the run ids."""
    now = utcnow()
    rows = [(_run_row(arm_ids[r.arm], r, metric, origin, now), r) for r in runs]
    ended = {id(row): row.status for row, _ in rows}
    for row, _ in rows:  # a finished run's points are immutable: write them while it is "running"
        row.status = "running"
    session.add_all([row for row, _ in rows])
    session.flush()
    insert = "INSERT INTO metric_point (run_id, name, step, value) VALUES (?, ?, ?, ?)"
    connection = session.connection()
    batch: list[tuple] = []
    for row, run in rows:
        steps, values = run.source.steps, run.source.values
        run.source.values = run.source.steps = None  # the curve goes to the database; drop it here
        if not curves or steps is None or values is None:
            continue
        finite = np.isfinite(values)
        batch.extend(zip([row.id] * len(steps), [metric] * len(steps), steps.tolist(),
                         values.tolist() if finite.all() else
                         [v if ok else None for v, ok in zip(values.tolist(), finite.tolist())]))
        if len(batch) >= POINTS_BATCH:
            connection.exec_driver_sql(insert, batch)
            batch = []
    if batch:
        connection.exec_driver_sql(insert, batch)
    for row, _ in rows:
        row.status = ended[id(row)]
    session.flush()
    return [row.id for row, _ in rows]


def find_previous(session: Session, options: ImportOptions) -> Hypothesis | None:
    key = options.source_key()
    for entry in session.exec(select(Hypothesis).where(Hypothesis.retrospective == True)).all():  # noqa: E712
        if {k: (entry.import_source or {}).get("options", {}).get(k) for k in key} == key:
            return entry
    return None


def write_import(store: Store, options: ImportOptions, data: Gathered) -> dict[str, Any]:
    """Register a retrospective entry for ``data``, or add the runs a previous import lacked."""
    with store.session(write=True) as session:
        previous = find_previous(session, options)
        if previous is not None:
            return _reimport(session, previous, options, data)
        return _create(session, options, data)


def _create(session: Session, options: ImportOptions, data: Gathered) -> dict[str, Any]:
    commit = options.commit or _common(r.source.commit for r in data.runs)
    repo_root = _repo_with(commit, options.repo) if commit else None
    host = _common(r.source.host for r in data.runs)
    where = options.experiment or options.location
    seeds = data.seeds()
    title = options.title or f"{options.metric}: {', '.join(data.arms[1:])} vs {options.baseline} ({options.kind} {where})"
    goal = "minimize" if options.lower_is_better else "maximize"
    statement = (f"Imported from {options.kind} {where}: some arm by {options.arm_by} "
                 f"{'lowers' if options.lower_is_better else 'raises'} {options.metric} ({options.reduce}) "
                 f"below/above {options.baseline} by at least δ = {options.delta:g}. {RETRO_NOTE}.")
    statement = statement.replace("below/above ", "below " if options.lower_is_better else "above ")
    now = utcnow().replace(microsecond=0)
    import_source = {
        "kind": options.kind, "location": options.location, "experiment": options.experiment,
        "options": options.to_dict(), "imported_at": iso(now), "runs": len(data.runs),
        "skipped_unfinished": data.skipped_unfinished, "host": host,
        "commits": sorted({r.source.commit for r in data.runs if r.source.commit}),
    }
    entry = Hypothesis(
        slug=_unique_slug(session, title), title=title, statement=statement, metric=options.metric, goal=goal,
        min_effect=options.delta, alpha=options.alpha, seeds_per_arm=min(seeds.values()), planned_seeds=[],
        trainer=trainer_for(options, data), baseline_arm=options.baseline, deterministic=False,
        tags=["imported", options.kind], notes="", source_path=options.location, source_text="",
        status="concluded", retrospective=True, import_source=import_source,
        in_git_repo=repo_root is not None, repo_root=repo_root, git_commit=commit, git_branch=None,
        git_dirty=False if commit else None, git_diff=None, git_untracked=[],
        environment={"imported_from": options.kind, "host": host, "importing_host": socket.gethostname()},
        registered_at=None,  # set below with the registered content, in one update (triggers lock it after)
    )
    session.add(entry)
    session.flush()
    arm_rows = []
    for position, name in enumerate(data.arms):
        config = arm_config([r for r in data.runs if r.arm == name], options.seed_by)
        arm_rows.append(Arm(hypothesis_id=entry.id, name=name, role="baseline" if position == 0 else "candidate",
                            position=position, trainer=entry.trainer, config=config, config_hash=config_hash(config)))
    session.add_all(arm_rows)
    session.flush()
    entry.registered_at = now
    content = registration_content(entry, arm_rows)
    content.update({"retrospective": True, "import_source": {k: v for k, v in import_source.items()},
                    "imported_values_sha256": values_digest(data)})
    entry.registered_content = content
    entry.registration_hash = sha256_hex(canonical_json(content))
    session.add(entry)
    session.flush()
    link_registration(session.connection(), entry.id)  # the import is the entry's registration link
    added = _write_runs(session, {a.name: a.id for a in arm_rows}, data.runs, options.metric, "planned", options.curves)
    link_finished_runs(session.connection(), added)
    session.commit()
    return {"id": entry.id, "slug": entry.slug, "created": True, "added_runs": len(added), "amendments": [],
            "arms": seeds, "registration_hash": entry.registration_hash}


def _reimport(session: Session, entry: Hypothesis, options: ImportOptions, data: Gathered) -> dict[str, Any]:
    before = entry.import_source.get("options", {})
    for name, flag in (("baseline", "--baseline"), ("delta", "--delta"), ("lower_is_better", "--lower-is-better")):
        if before.get(name) != getattr(options, name):
            raise InputError(f"{flag}: entry {entry.id} ({entry.slug}) already imports this source with {name} = "
                             f"{before.get(name)!r}; expected the same (change a registered entry with `logbook amend`)")
    known = set(session.exec(select(Run.source_id).join(Arm, Arm.id == Run.arm_id)
                             .where(Arm.hypothesis_id == entry.id)).all())
    new = [r for r in data.runs if r.source.source_id not in known]
    result = {"id": entry.id, "slug": entry.slug, "created": False, "added_runs": 0, "amendments": [],
              "arms": data.seeds(), "registration_hash": entry.registration_hash}
    if not new:
        return result
    arms = {a.name: a for a in arms_of(session, entry.id)}
    amendments = []
    for name in [a for a in data.arms if a not in arms]:
        config = arm_config([r for r in data.runs if r.arm == name], options.seed_by)
        arm = Arm(hypothesis_id=entry.id, name=name, role="candidate", position=len(arms), trainer=entry.trainer,
                  config=config, config_hash=config_hash(config), added_by_amendment=True)
        session.add(arm)
        session.flush()
        arms[name] = arm
        amendments.append(Amendment(hypothesis_id=entry.id, field=f"arms.{name}", old_value=None, new_value=config,
                                    reason=f"re-import of {options.kind} {options.location} found a new arm {name!r}"))
    per_arm = Counter(r.arm for r in new)
    amendments.append(Amendment(
        hypothesis_id=entry.id, field="runs", old_value=len(known), new_value=len(known) + len(new),
        reason=(f"re-import of {options.kind} {options.location} found {len(new)} new runs ("
                + ", ".join(f"{arm}: {n}" for arm, n in sorted(per_arm.items())) + "); counted as seeds added after looking"),
    ))
    session.add_all(amendments)
    session.flush()
    for amendment in amendments:
        link_amendment(session.connection(), entry.id, amendment.id)
    added = _write_runs(session, {n: a.id for n, a in arms.items()}, new, options.metric, "extra", options.curves)
    link_finished_runs(session.connection(), added)
    entry.updated_at = utcnow()
    session.add(entry)
    session.commit()
    result.update(added_runs=len(new), amendments=[a.id for a in amendments])
    return result


def flat(prefix: str, mapping: dict[str, Any] | None) -> dict[str, Any]:
    """``{"a": 1}`` under ``prefix`` "params" -> ``{"params.a": 1}``."""
    return {f"{prefix}.{k}": v for k, v in (mapping or {}).items()}


def group_seeds(data: Gathered) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for run in data.runs:
        out[run.arm].append(run.seed)
    return dict(out)
