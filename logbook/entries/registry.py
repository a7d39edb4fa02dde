"""Creating, registering and amending logbook entries.

A new entry is a *draft*. Registering it locks it: the git state and the environment are recorded,
the planned seeds are drawn from the operating system's entropy (so nobody can have tuned against
them), and the canonical registered content is hashed (SHA-256). After that the entry changes only
through dated amendments; the registered content and its hash never change (the database enforces
this with triggers as well).

What the registration hash covers, as canonical JSON (keys sorted, no spaces, UTF-8, no NaN):
``schema``, ``title``, ``hypothesis``, ``metric``, ``goal``, ``min_effect``, ``alpha``, ``seeds``,
``planned_seeds``, ``trainer``, ``arms`` (name, role, config, in file order), ``baseline``, ``tags``, ``deterministic``, ``notes``, ``git`` (in_repo, commit, branch, dirty,
diff_sha256, untracked) and ``registered_at`` (ISO 8601, UTC); and ``min_effect_source`` when δ
was derived from a pilot (its slug and registration hash, sd multiple, pooled sd, degrees of freedom);
and, only when the entry has them, ``variance_study`` (sources, seeds, trainer_varies,
verdict_varies, verdict_holds if declared, fixed_seed, group_seeds) and ``robustness`` (a
follow-up's link to the entry it tests and its settings).

One file (about 400 lines) because drafts, registration and amendments share one rule: what the registered content is and how it is hashed; splitting them would put that rule in two places.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from logbook.db.engine import Store
from logbook.db.models import Amendment, Arm, Hypothesis, Run, utcnow
from logbook.db.paths import own_paths
from logbook.db.queries import (
    amendment_dict, amendments_of, arm_dict, arms_of, iso, resolve_entry, run_counts, withdrawal,
)
from logbook.entries.chain import canonical_json, integrity_fields, link_amendment, link_registration, sha256_hex
from logbook.entries.file import EntrySpec, parse_text, validate
from logbook.entries.pilot import resolve_pilot_delta
from logbook.errors import InputError
from logbook.entries.provenance import GitInfo, capture_environment, capture_git, describe_tree
from logbook.entries.retro import RETRO_NOTE, rerun_gaps

REGISTRATION_SCHEMA = "logbook.registration/1"
AMENDABLE = ("title", "hypothesis", "notes", "tags", "seeds", "min_effect", "alpha")
SEED_BITS = 31  # seeds fit every framework's seed argument


def config_hash(config: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(config))


def slugify(title: str, max_len: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return (slug[:max_len].rstrip("-")) or "entry"


def draw_seeds(n: int, exclude: set[int] = frozenset()) -> list[int]:
    """``n`` distinct seeds from the OS's entropy, none in ``exclude``."""
    seeds: list[int] = []
    taken = set(exclude)
    while len(seeds) < n:
        seed = secrets.randbits(SEED_BITS)
        if seed not in taken:
            taken.add(seed)
            seeds.append(seed)
    return seeds


def _unique_slug(session: Session, title: str) -> str:
    base = slugify(title)
    existing = set(session.exec(select(Hypothesis.slug).where(Hypothesis.slug.startswith(base))).all())
    if base not in existing:
        return base
    n = 2
    while f"{base}-{n}" in existing:
        n += 1
    return f"{base}-{n}"


def create_draft(store: Store, spec: EntrySpec) -> Hypothesis:
    """Add a validated hypothesis as a draft entry with its arms, in one transaction. A variance
    study not yet checked against its trainer (``logbook new`` checks before opening the store;
    the app's new entry does not) is checked here."""
    study = spec.variance_study
    if study and "trainer_varies" not in study:
        from logbook.entries.variance_study import check_study

        study = check_study(study, spec.trainer.to_dict(), spec.source_path or "variance_study")
    with store.session(write=True) as session:
        entry = Hypothesis(
            slug=_unique_slug(session, spec.title),
            title=spec.title,
            statement=spec.hypothesis,
            metric=spec.metric,
            goal=spec.goal,
            min_effect=spec.min_effect,
            min_effect_source=spec.min_effect_pilot,
            alpha=spec.alpha,
            seeds_per_arm=spec.seeds,
            planned_seeds=[],
            trainer=spec.trainer.to_dict(),
            baseline_arm=spec.baseline,
            deterministic=spec.deterministic,
            tags=list(spec.tags),
            notes=spec.notes,
            source_path=spec.source_path,
            source_text=spec.source_text,
            variance_study=study,
        )
        session.add(entry)
        session.flush()
        for position, arm in enumerate(spec.arms):
            session.add(
                Arm(
                    hypothesis_id=entry.id, name=arm.name, role=arm.role, position=position,
                    trainer=spec.trainer.to_dict(), config=arm.config, config_hash=config_hash(arm.config),
                )
            )
        session.commit()
        session.refresh(entry)
        return entry


def registration_content(entry: Hypothesis, arms: list[Arm]) -> dict[str, Any]:
    """The canonical registered content of an entry: what the registration hash covers."""
    return {
        "schema": REGISTRATION_SCHEMA,
        "title": entry.title,
        "hypothesis": entry.statement,
        "metric": entry.metric,
        "goal": entry.goal,
        "min_effect": entry.min_effect,
        "alpha": entry.alpha,
        "seeds": entry.seeds_per_arm,
        "planned_seeds": list(entry.planned_seeds),
        "trainer": entry.trainer,
        "arms": [{"name": a.name, "role": a.role, "config": a.config} for a in arms],
        "baseline": entry.baseline_arm,
        "tags": list(entry.tags),
        "deterministic": entry.deterministic,
        "notes": entry.notes,
        "git": {
            "in_repo": entry.in_git_repo,
            "commit": entry.git_commit,
            "branch": entry.git_branch,
            "dirty": entry.git_dirty,
            "diff_sha256": sha256_hex(entry.git_diff) if entry.git_diff else None,
            "untracked": list(entry.git_untracked or []),
        },
        "registered_at": iso(entry.registered_at),
        # Present only when used, so entries without them hash exactly as before.
        **({"variance_study": entry.variance_study} if entry.variance_study else {}),
        **({"robustness": entry.robustness} if entry.robustness else {}),
    } | ({"min_effect_source": entry.min_effect_source} if entry.min_effect_source else {})


def with_study_seeds(study: dict[str, Any], exclude: set[int]) -> dict[str, Any]:
    """A variance study with its seeds drawn: one fixed seed (the value of every stream held
    still) and, per source and for the all-sources group, ``seeds`` fresh seeds."""
    groups = [*study["sources"], "all"]
    drawn = draw_seeds(1 + len(groups) * study["seeds"], exclude=exclude)
    n = study["seeds"]
    return {**study, "fixed_seed": drawn[0],
            "group_seeds": {g: drawn[1 + i * n: 1 + (i + 1) * n] for i, g in enumerate(groups)}}


def register(store: Store, ref: str, *, cwd: str | Path = ".", git: GitInfo | None = None) -> Hypothesis:
    """Lock a draft: record provenance, draw the planned seeds and hash the registered content."""
    git = capture_git(cwd, exclude=own_paths(store.path)) if git is None else git
    environment = capture_environment(gpus=False)
    with store.session(write=True) as session:
        entry = resolve_entry(session, ref)
        if entry.registered_at is not None:
            raise InputError(f"ENTRY: {entry.slug} is already registered (at {iso(entry.registered_at)}); expected a draft")
        arms = arms_of(session, entry.id)
        _resolve_min_effect(session, entry)
        entry.planned_seeds = draw_seeds(entry.seeds_per_arm)
        if entry.variance_study:
            entry.variance_study = with_study_seeds(entry.variance_study, exclude=set(entry.planned_seeds))
        entry.in_git_repo = git.in_repo
        entry.repo_root = git.root
        entry.git_commit = git.commit
        entry.git_branch = git.branch
        entry.git_dirty = git.dirty
        entry.git_diff = git.diff or None
        entry.git_untracked = list(git.untracked)
        entry.environment = environment
        entry.registered_at = utcnow().replace(microsecond=0)
        content = registration_content(entry, arms)
        entry.registered_content = content
        entry.registration_hash = sha256_hex(canonical_json(content))
        entry.status = "registered"
        entry.updated_at = utcnow()
        session.add(entry)
        session.flush()
        link_registration(session.connection(), entry.id)  # the first link, in the same transaction
        session.commit()
        session.refresh(entry)
        return entry


def _resolve_min_effect(session: Session, entry: Hypothesis) -> None:
    """Fix δ before the entry is locked: a pilot request becomes a number and its recorded source."""
    source = entry.min_effect_source
    if source is not None and "pooled_sd" not in source:
        entry.min_effect, entry.min_effect_source = resolve_pilot_delta(session, source, entry.metric, label="ENTRY")
    elif entry.min_effect is None:
        raise InputError(
            f"ENTRY: {entry.slug} has δ = auto, which is no longer registered (a δ derived from the data being "
            "judged is circular); expected a draft with δ in metric units: add the file again with min_effect set"
        )


def require_registered(entry: Hypothesis) -> None:
    """Refuse a draft where only a registered entry makes sense (running it, above all)."""
    if entry.registered_at is None:
        raise InputError(f"ENTRY: {entry.slug} is a draft; expected a registered entry (run `logbook register {entry.slug}`)")


def registered_diff(store: Store, ref: str) -> dict[str, Any]:
    """The uncommitted changes recorded when ENTRY was registered: the patch against its commit
    (appliable with ``git apply``), and the untracked files, which are listed but not recorded."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        if entry.registered_at is None:
            raise InputError(f"ENTRY: {entry.slug} is a draft; expected a registered entry (nothing recorded yet)")
        return {
            "entry": entry.slug, "commit": entry.git_commit, "diff": entry.git_diff or "",
            "untracked": list(entry.git_untracked or []),
            "tree": describe_tree(entry.git_dirty, entry.git_diff, entry.git_untracked),
        }


def verify_registration(entry: Hypothesis) -> bool | None:
    """Whether the stored registered content still hashes to the registration hash (None if a draft)."""
    if entry.registration_hash is None or entry.registered_content is None:
        return None
    return sha256_hex(canonical_json(entry.registered_content)) == entry.registration_hash


def _current_file_view(entry: Hypothesis, arms: list[Arm]) -> dict[str, Any]:
    """The entry's live values in hypothesis-file form, so amendments reuse the file's validation."""
    return {
        "title": entry.title,
        "hypothesis": entry.statement,
        "metric": entry.metric,
        "goal": entry.goal,
        # A legacy "auto" δ is not re-checked here: only the amended field's new value is.
        "min_effect": 0.0 if entry.min_effect is None else entry.min_effect,
        "alpha": entry.alpha,
        "seeds": entry.seeds_per_arm,
        "trainer": entry.trainer,
        "arms": {a.name: a.config for a in arms},
        "baseline": entry.baseline_arm,
        "tags": list(entry.tags),
        "deterministic": entry.deterministic,
        "notes": entry.notes,
    }


def _parse_value(raw: str) -> Any:
    """An amendment value: YAML flow syntax, so 0.02, [a, b] and {k: v} all work."""
    return parse_text(raw, "yaml", "--value") if raw.strip() else ""


# A valid entry that an amended field is put into, so the field is checked by the file's own rules
# alone (an entry registered before a rule existed does not block amendments of its other fields).
AMENDMENT_BASE = {
    "title": "t", "hypothesis": "h", "metric": "m", "goal": "minimize", "min_effect": 0.0, "seeds": 5,
    "trainer": "t", "arms": {"a": {}, "b": {}},
}


def _validate_new_arm(data: dict[str, Any], field: str) -> None:
    """A new arm is checked against the entry's trainer and arms; only its own problems count."""
    try:
        validate(data, label="--value")
    except InputError as exc:
        mine = [line for line in exc.lines if line.startswith(f"--value: {field}") or "trainer.command" in line]
        if mine:
            raise InputError(mine[0], mine) from exc


def amend(store: Store, ref: str, field: str, raw_value: str, reason: str) -> Amendment:
    """Append a dated amendment to a registered entry and apply it to the live values.

    Fields: title, hypothesis, notes, tags, seeds (more only: new planned seeds are drawn),
    min_effect, alpha, and ``arms.NAME`` to add a candidate arm (existing arms never change,
    since runs were made with them).
    """
    if not reason or not reason.strip():
        raise InputError("--reason: expected a non-empty reason for the amendment")
    arm_field = field.startswith("arms.")
    if field not in AMENDABLE and not arm_field:
        raise InputError(f"--field: expected one of {', '.join(AMENDABLE)} or arms.NAME, got {field!r}")
    value = _parse_value(raw_value)
    with store.session(write=True) as session:
        entry = resolve_entry(session, ref)
        if entry.registered_at is None:
            raise InputError(f"ENTRY: {entry.slug} is a draft; expected a registered entry (drafts are changed by registering a new file)")
        arms = arms_of(session, entry.id)
        if arm_field:
            name = field[len("arms."):]
            data = _current_file_view(entry, arms)
            if name in data["arms"]:
                raise InputError(f"--field: arm {name!r} exists and its runs used its config; expected a new arm name")
            _validate_new_arm({**data, "arms": {**data["arms"], name: value}}, field)
            spec = None
        else:
            spec = validate({**AMENDMENT_BASE, field: value}, label="--value")
        if spec is not None and field == "min_effect" and spec.min_effect is None:
            raise InputError("--value: min_effect: expected a number in metric units (δ from a pilot is derived only at registration)")
        old: Any
        if arm_field:
            old, new = None, value
            session.add(
                Arm(
                    hypothesis_id=entry.id, name=name, role="candidate", position=len(arms), trainer=entry.trainer,
                    config=value or {}, config_hash=config_hash(value or {}), added_by_amendment=True,
                )
            )
        elif field == "seeds":
            if spec.seeds < entry.seeds_per_arm:
                raise InputError(
                    f"--value: seeds: expected at least {entry.seeds_per_arm} (registered seeds cannot be dropped)"
                )
            old, new = entry.seeds_per_arm, spec.seeds
            extra = draw_seeds(spec.seeds - entry.seeds_per_arm, exclude=set(entry.planned_seeds))
            entry.planned_seeds = list(entry.planned_seeds) + extra
            entry.seeds_per_arm = spec.seeds
        else:
            column = {"hypothesis": "statement"}.get(field, field)
            new = {
                "title": spec.title, "hypothesis": spec.hypothesis, "notes": spec.notes, "tags": list(spec.tags),
                "min_effect": spec.min_effect, "alpha": spec.alpha,
            }[field]
            old = getattr(entry, column)
            if old == new:
                raise InputError(f"--value: {field}: expected a value different from the current {old!r}")
            setattr(entry, column, new)
            if field == "min_effect":
                entry.min_effect_source = None  # the live δ is now the amended number
        return record_amendment(session, entry, field, old, new, reason)


def record_amendment(session: Session, entry: Hypothesis, field: str, old: Any, new: Any, reason: str) -> Amendment:
    """Append a dated amendment of ``entry`` and link it into the entry's hash chain, committed in
    one transaction: the one way any amendment (a changed field, an added arm, a withdrawal) is
    written."""
    amendment = Amendment(hypothesis_id=entry.id, field=field, old_value=old, new_value=new, reason=reason.strip())
    entry.updated_at = utcnow()
    session.add(entry)
    session.add(amendment)
    session.flush()
    link_amendment(session.connection(), entry.id, amendment.id)
    session.commit()
    session.refresh(amendment)
    return amendment


def _min_effect_source(entry: Hypothesis) -> str:
    if entry.min_effect_source:
        return "pilot"
    return "default" if entry.min_effect is None else "given"


def entry_detail(store: Store, ref: str) -> dict[str, Any]:
    """Everything `logbook show` prints about one entry, as a JSON-ready dict."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        arms = arms_of(session, entry.id)
        amendments = amendments_of(session, entry.id)
        counts = run_counts(session, [entry.id]).get(entry.id, {})
        requeues = session.exec(  # automatic requeues of runs that Slurm lost (timeout, preemption, node failure)
            select(func.coalesce(func.sum(Run.slurm_requeues), 0)).join(Arm, Arm.id == Run.arm_id)
            .where(Arm.hypothesis_id == entry.id)
        ).one()
        return {
            "id": entry.id,
            "slug": entry.slug,
            "title": entry.title,
            "hypothesis": entry.statement,
            "metric": entry.metric,
            "goal": entry.goal,
            "min_effect": entry.min_effect,
            "min_effect_source": _min_effect_source(entry),
            "min_effect_pilot": entry.min_effect_source,
            "alpha": entry.alpha,
            "seeds": entry.seeds_per_arm,
            "planned_seeds": list(entry.planned_seeds),
            "trainer": entry.trainer,
            "baseline": entry.baseline_arm,
            "arms": [arm_dict(a) for a in arms],
            "tags": list(entry.tags),
            "deterministic": entry.deterministic,
            "notes": entry.notes,
            "status": entry.status,
            "verdict": entry.verdict,
            "created_at": iso(entry.created_at),
            "registered_at": iso(entry.registered_at),
            "registration_hash": entry.registration_hash,
            "registration_verified": verify_registration(entry),
            **integrity_fields(store, entry.id),
            "git": {
                "in_repo": entry.in_git_repo,
                "root": entry.repo_root,
                "commit": entry.git_commit,
                "branch": entry.git_branch,
                "dirty": entry.git_dirty,
                "diff_lines": entry.git_diff.count("\n") if entry.git_diff else 0,
                "untracked": list(entry.git_untracked or []),
                "tree": describe_tree(entry.git_dirty, entry.git_diff, entry.git_untracked),
            },
            "amendments": [amendment_dict(a) for a in amendments],
            "withdrawn": withdrawal(amendments),  # {"at", "reason"} once withdrawn, else None
            "runs": dict(sorted(counts.items())),
            "slurm_requeues": int(requeues),
            "source_path": entry.source_path,
            "retrospective": bool(entry.retrospective),
            "retrospective_note": RETRO_NOTE if entry.retrospective else None,
            "import_source": entry.import_source,
            "rerun_missing": rerun_gaps(entry),
            "variance_study": entry.variance_study,
            "follows": (entry.robustness or {}).get("of"),
        }
