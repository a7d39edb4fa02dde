"""Audits of past claims and exact reruns.

An **audit** reruns every arm of a registered entry on fresh seeds that nobody tuned against,
at the entry's registered commit, and says whether the claim replicates:

- The seeds are drawn from the operating system's entropy, disjoint from every seed the entry
  ever used. Before any run starts, the audit stores a commitment, ``SHA-256`` of the canonical
  JSON ``{"salt": SALT, "seeds": [sorted seeds]}``; the seeds and the salt are kept in a private
  file and written to the audit only when it is over, where anyone can recompute the hash.
- The number of seeds, unless given, is the number per arm at which the one-sided Welch test has
  power 0.9 to detect the originally observed effect (at the entry's α′), at least the
  registered seeds per arm and at most ``AUDIT_MAX_SEEDS``.
- The runs execute in a git worktree of the registered commit (with the recorded diff applied
  when the tree was dirty at registration). An entry whose commit is gone is refused.
- The audit's runs are judged on their own, never pooled with the original ones. Per candidate:
  **replicated** if the audit's verdict is positive; **refuted** if it is negative, or if its
  upper bound is below the originally observed effect (the claim was inflated); otherwise
  **inconclusive**. The audit's headline is the outcome for the candidate the entry claimed
  (the original positive with the largest effect, else the largest effect).

A **rerun** repeats one run exactly (same arm config, seed and commit) and reports whether the
result is bitwise identical, identical within a tolerance (relative 1e-6, absolute 1e-9), or
different, naming the first metric that differs.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any, Callable

from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Audit, Hypothesis, MetricPoint, Run, utcnow
from logbook.db.queries import arms_of, iso, resolve_entry, runs_of
from logbook.entries.registry import canonical_json, draw_seeds, sha256_hex
from logbook.entries.retro import rerun_gaps
from logbook.entries.withdraw import require_not_withdrawn
from logbook.entries.seeding import held_streams
from logbook.errors import InputError, LogbookError
from logbook.db.paths import runs_dir
from logbook.stats import welch_seeds_needed
from logbook.db.runstatus import ACTIVE, FINISHED
from logbook.entries.chain import require_intact
from logbook.entries.verdicts import arms_report, collect, entry_verdict, judge, overall_verdict

AUDIT_MAX_SEEDS = 100
AUDIT_POWER = 0.9
RTOL, ATOL = 1e-6, 1e-9


def commitment(seeds: list[int], salt: str) -> str:
    """The audit commitment: SHA-256 of canonical JSON {"salt": salt, "seeds": sorted seeds}."""
    return sha256_hex(canonical_json({"salt": salt, "seeds": sorted(int(s) for s in seeds)}))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=300, check=False)


def checkout(store: Store, entry: Hypothesis, commit: str, diff: str | None) -> Path:
    """A git worktree of ``commit`` (with ``diff`` applied) under the runs folder, made once and
    reused. Raises InputError when the repository or the commit is gone."""
    repo = Path(entry.repo_root or "")
    if not entry.repo_root or not repo.is_dir():
        raise InputError(f"ENTRY: {entry.slug} was registered in {entry.repo_root or '(no repository)'}, which is gone; expected its repository to audit at commit {commit[:12]}")
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise InputError(f"ENTRY: commit {commit[:12]} of {entry.slug} is not in {repo} (rebased or garbage-collected?); expected the registered commit to exist")
    tag = commit[:12] + (f"-dirty-{sha256_hex(diff)[:8]}" if diff else "")
    dest = runs_dir(store.path) / "checkouts" / tag
    if (dest / ".logbook-checkout-ready").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():  # a half-made checkout from an interrupted attempt
        _git(repo, "worktree", "remove", "--force", str(dest))
        subprocess.run(["rm", "-rf", str(dest)], check=False)
    _git(repo, "worktree", "prune")
    made = _git(repo, "worktree", "add", "--detach", str(dest), commit)
    if made.returncode != 0:
        raise LogbookError(f"git worktree add failed for {commit[:12]}: {made.stderr.strip()}")
    if diff:
        patch = dest.parent / f"{tag}.diff"
        patch.write_text(diff, encoding="utf-8")
        applied = _git(dest, "apply", "--whitespace=nowarn", str(patch))
        if applied.returncode != 0:
            raise LogbookError(f"the registered diff does not apply to {commit[:12]}: {applied.stderr.strip()}")
    (dest / ".logbook-checkout-ready").write_text(commit + "\n")
    return dest


def _secret_path(store: Store, audit_id: int) -> Path:
    return runs_dir(store.path) / "audits" / str(audit_id) / "secret.json"


def _choose_seeds(entry: Hypothesis, original: dict[str, Any]) -> tuple[int, str]:
    comparisons = original["comparisons"]
    usable = [c for c in comparisons if c["effect"] is not None and math.isfinite(c["effect"] or math.nan)]
    floor = entry.seeds_per_arm
    if not usable:
        return floor, f"the registered {floor} seeds per arm (the original runs give no effect to power against)"
    claim = max(usable, key=lambda c: c["effect"])
    sd_b, sd_c = claim["baseline"]["sd"], claim["candidate"]["sd"]
    if claim["effect"] <= 0 or not all(isinstance(x, float) and math.isfinite(x) for x in (sd_b, sd_c)):
        return floor, f"the registered {floor} seeds per arm (no improvement was observed to power against)"
    n = welch_seeds_needed(claim["effect"], sd_b, sd_c, claim["alpha_adjusted"], AUDIT_POWER, minimum=floor)
    if n is None or n > AUDIT_MAX_SEEDS:
        return AUDIT_MAX_SEEDS, (f"capped at {AUDIT_MAX_SEEDS} seeds per arm: power {AUDIT_POWER} to detect the original "
                                 f"effect {claim['effect']:.4g} would need more")
    return n, (f"power {AUDIT_POWER} to detect the original effect {claim['effect']:.4g} of {claim['candidate_name']} "
               f"at α′ = {claim['alpha_adjusted']:.3g} (at least the registered {floor}, at most {AUDIT_MAX_SEEDS})")


def start_audit(store: Store, ref: str, n_seeds: int | None = None, *,
                confirm: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Commit to fresh seeds and queue every arm on them at the registered commit.

    ``confirm``, when given, is called with the number of runs once everything is checked and the
    checkout exists, before anything is written; it raises to stop the audit.
    """
    with store.session() as session:
        if resolve_entry(session, ref).registered_at is not None:
            require_intact(store, ref)  # a tampered record is never audited
    original = entry_verdict(store, ref, cache=False)
    with store.session() as session:
        entry = resolve_entry(session, ref)
        if entry.registered_at is None:
            raise InputError(f"ENTRY: {entry.slug} is a draft; expected a registered entry to audit")
        require_not_withdrawn(session, entry, "audit")
        if rerun_gaps(entry):
            raise InputError(f"ENTRY: {entry.slug} was imported and cannot be rerun: {'; '.join(rerun_gaps(entry))}")
        if n_seeds is not None and not 2 <= n_seeds <= 10_000:
            raise InputError(f"--seeds: expected 2 to 10000 seeds per arm, got {n_seeds}")
        rule = f"given: {n_seeds} per arm" if n_seeds is not None else None
        if n_seeds is None:
            n_seeds, rule = _choose_seeds(entry, original)
        worktree = checkout(store, entry, entry.git_commit, entry.git_diff) if entry.git_commit else None
        entry_id, n_arms = entry.id, len(arms_of(session, entry.id))
    if confirm is not None:
        confirm(n_seeds * n_arms)
    with store.session(write=True) as session:
        entry = session.get(Hypothesis, entry_id)
        used = set(session.exec(
            select(Run.seed).join(Arm, Arm.id == Run.arm_id).where(Arm.hypothesis_id == entry.id)).all())
        seeds = draw_seeds(n_seeds, exclude=used | set(entry.planned_seeds))
        salt = secrets.token_hex(16)
        audit = Audit(hypothesis_id=entry.id, n_seeds=n_seeds, commitment=commitment(seeds, salt),
                      git_commit=entry.git_commit, worktree=str(worktree) if worktree else None, seeds_rule=rule,
                      original_verdict=_strip(original))
        session.add(audit)
        session.flush()
        secret = _secret_path(store, audit.id)
        secret.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"seeds": seeds, "salt": salt}, handle)
        now = utcnow()
        runs = [
            Run(arm_id=arm.id, seed=seed, seed_origin="audit", audit_id=audit.id, queued_at=now,
                workdir=str(worktree) if worktree else None,
                streams=held_streams((entry.registered_content or {}).get("variance_study"), seed))
            for seed in seeds
            for arm in arms_of(session, entry.id)
        ]
        session.add_all(runs)
        session.commit()
        return {"audit": audit.id, "entry": entry.slug, "seeds_per_arm": n_seeds, "seeds_rule": rule,
                "commitment": audit.commitment, "commit": entry.git_commit, "worktree": audit.worktree,
                "runs": [r.id for r in runs]}


def _strip(verdict: dict[str, Any]) -> dict[str, Any]:
    """What an audit keeps of a verdict: headline, interval, and each comparison's key numbers."""
    keep = ("candidate_name", "verdict", "detail", "effect", "ci_low", "ci_high", "raw_effect", "raw_ci_low",
            "raw_ci_high", "interval", "delta", "delta_source", "alpha_adjusted", "n_baseline", "n_candidate",
            "excluded_baseline", "excluded_candidate", "sentence")
    return {
        "verdict": verdict["verdict"],
        "interval": verdict["interval"],
        "comparisons": [{k: c.get(k) for k in keep} for c in verdict["comparisons"]],
    }


def latest_audit_id(store: Store, ref: str) -> int:
    with store.session() as session:
        entry = resolve_entry(session, ref)
        audit_id = session.exec(
            select(Audit.id).where(Audit.hypothesis_id == entry.id).order_by(col(Audit.id).desc())).first()
    if audit_id is None:
        raise InputError(f"ENTRY: {entry.slug} has no audit yet; expected one started with `logbook audit {entry.slug}`")
    return audit_id


def _outcome(original: dict[str, Any] | None, audited: dict[str, Any]) -> str:
    if audited["verdict"] == "positive":
        return "replicated"
    claimed = original["effect"] if original else None
    if audited["verdict"] == "negative" or (
        claimed is not None and audited["ci_high"] is not None and audited["ci_high"] < claimed
    ):
        return "refuted"
    return "inconclusive"


def audit_report(store: Store, audit_id: int) -> dict[str, Any]:
    """The audit beside the original; concludes it (reveals seeds and salt) once its runs ended."""
    with store.session(write=True) as session:
        audit = session.get(Audit, audit_id)
        if audit is None:
            raise InputError(f"AUDIT: no audit with id {audit_id}")
        entry = session.get(Hypothesis, audit.hypothesis_id)
        arms = arms_of(session, entry.id)
        rows = runs_of(session, entry.id)
        data = collect(rows, entry.metric, lambda run: run.audit_id == audit.id)
        pending = sum(d.pending for d in data.values())
        audited = [c.to_dict() for c in judge(entry, arms, data, interval="welch", planned_n=audit.n_seeds)]
        original = {c["candidate_name"]: c for c in (audit.original_verdict or {}).get("comparisons", [])}
        per_candidate = [
            {"candidate": c["candidate_name"], "outcome": _outcome(original.get(c["candidate_name"]), c),
             "original": original.get(c["candidate_name"]), "audit": c}
            for c in audited
        ]
        claim = _claimed_candidate(list(original.values()))
        headline = next((p for p in per_candidate if p["candidate"] == claim), per_candidate[0] if per_candidate else None)
        audit_seeds = sorted({run.seed for _, run in rows if run.audit_id == audit.id})
        original_seeds = sorted({run.seed for _, run in rows if run.seed_origin in ("planned", "extra")})
        problems: list[str] = []
        if pending == 0 and audit.status != "concluded":
            secret = json.loads(_secret_path(store, audit.id).read_text())
            if commitment(secret["seeds"], secret["salt"]) != audit.commitment:
                problems.append("the revealed seeds do not match the commitment")
            if sorted(secret["seeds"]) != audit_seeds:
                problems.append("the audit's runs do not use exactly the committed seeds")
            audit.seeds, audit.salt = sorted(secret["seeds"]), secret["salt"]
            audit.status, audit.concluded_at = "concluded", utcnow()
            audit.outcome = headline["outcome"] if headline and not problems else "inconclusive"
            audit.audit_verdict = {"comparisons": audited}
            session.add(audit)
            session.commit()
        concluded = audit.status == "concluded"
        return {
            "audit": audit.id,
            "entry": entry.slug,
            "status": audit.status,
            "outcome": audit.outcome if concluded else None,
            "headline_candidate": headline["candidate"] if headline else None,
            "commitment": audit.commitment,
            "salt": audit.salt if concluded else None,
            "seeds": audit.seeds if concluded else None,
            "seeds_per_arm": audit.n_seeds,
            "seeds_rule": audit.seeds_rule,
            "original_seeds": original_seeds,
            "commit": audit.git_commit,
            "worktree": audit.worktree,
            "started_at": iso(audit.created_at),
            "concluded_at": iso(audit.concluded_at),
            "pending_runs": pending,
            "problems": problems,
            "original_verdict": audit.original_verdict,
            "audit_verdict": {"verdict": overall_verdict([c["verdict"] for c in audited]), "comparisons": audited},
            "candidates": per_candidate,
            "arms": arms_report(arms, data),
        }


def conclude_ended_audits(store: Store, entry_id: int) -> list[int]:
    """Conclude every open audit of an entry none of whose runs is queued or running any more
    (they all ended, failed or were cancelled): the same conclusion ``logbook audit --status``
    reaches, done by whoever saw the last run end. Returns the audits concluded."""
    with store.session() as session:
        open_ids = session.exec(select(Audit.id).where(Audit.hypothesis_id == entry_id, Audit.status != "concluded")).all()
        busy = set(session.exec(select(Run.audit_id).where(col(Run.audit_id).in_(open_ids),
                                                           col(Run.status).in_(ACTIVE))).all())
    concluded = []
    for audit_id in open_ids:
        if audit_id not in busy and audit_report(store, audit_id)["status"] == "concluded":
            concluded.append(audit_id)
    return concluded


def _claimed_candidate(original: list[dict[str, Any]]) -> str | None:
    finite = [c for c in original if c.get("effect") is not None and math.isfinite(c["effect"])]
    positives = [c for c in finite if c["verdict"] == "positive"]
    pool = positives or finite
    return max(pool, key=lambda c: c["effect"])["candidate_name"] if pool else None


# ---- exact reruns ------------------------------------------------------------------------------

def start_rerun(store: Store, run_id: int) -> int:
    """Queue the same arm and seed again, at the commit the run used."""
    with store.session() as session:
        run = session.get(Run, run_id)
        entry_id = session.get(Arm, run.arm_id).hypothesis_id if run is not None else None
    if entry_id is not None:
        require_intact(store, str(entry_id))
    with store.session(write=True) as session:
        run = session.get(Run, run_id)
        if run is None:
            raise InputError(f"RUN: no run with id {run_id}")
        if run.status not in FINISHED:
            raise InputError(f"RUN: run {run_id} is {run.status}; expected a finished run to rerun")
        arm = session.get(Arm, run.arm_id)
        entry = session.get(Hypothesis, arm.hypothesis_id)
        commit = run.git_commit or entry.git_commit
        workdir = run.workdir or entry.repo_root
        if commit and entry.repo_root:
            diff = entry.git_diff if commit == entry.git_commit else None
            workdir = str(checkout(store, entry, commit, diff))
        again = Run(arm_id=arm.id, seed=run.seed, seed_origin="rerun", rerun_of=run.id, audit_id=None,
                    workdir=workdir, queued_at=utcnow(), streams=run.streams)
        session.add(again)
        session.commit()
        return again.id


def _points(session, run_id: int) -> dict[tuple[str, int], float | None]:  # noqa: ANN001
    rows = session.exec(select(MetricPoint.name, MetricPoint.step, MetricPoint.value).where(MetricPoint.run_id == run_id)).all()
    return {(name, step): value for name, step, value in rows}


def _same(a: float | None, b: float | None, *, exact: bool) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b if exact else math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL)


def compare_runs(store: Store, original_id: int, rerun_id: int) -> dict[str, Any]:
    """Bitwise identical, within tolerance, or different (naming the first difference)."""
    with store.session() as session:
        first, second = session.get(Run, original_id), session.get(Run, rerun_id)
        deterministic = session.get(Hypothesis, session.get(Arm, first.arm_id).hypothesis_id).deterministic
        if second.status not in FINISHED:
            return {"run": original_id, "rerun": rerun_id, "status": second.status, "result": "pending"}
        finals_a, finals_b = first.final_metrics or {}, second.final_metrics or {}
        curves_a, curves_b = _points(session, original_id), _points(session, rerun_id)
    result, first_difference = "bitwise identical", None
    compared = [("final", name, None) for name in sorted(set(finals_a) | set(finals_b))]
    compared += [("curve", name, step) for name, step in sorted(set(curves_a) | set(curves_b))]
    for kind, name, step in compared:
        a = finals_a.get(name) if kind == "final" else curves_a.get((name, step))
        b = finals_b.get(name) if kind == "final" else curves_b.get((name, step))
        if _same(a, b, exact=True):
            continue
        if first_difference is None:
            first_difference = {"kind": kind, "metric": name, "step": step, "original": a, "rerun": b}
        if not _same(a, b, exact=False):
            result = "different"
            first_difference = {"kind": kind, "metric": name, "step": step, "original": a, "rerun": b}
            break
        result = "within tolerance"
    if first.status != second.status:
        result = "different"
        first_difference = {"kind": "status", "metric": None, "step": None, "original": first.status, "rerun": second.status}
    return {
        "run": original_id, "rerun": rerun_id, "seed": first.seed, "result": result,
        "tolerance": {"relative": RTOL, "absolute": ATOL}, "first_difference": first_difference,
        "deterministic_mode": deterministic,
        "deterministic_mode_violated": bool(deterministic and result == "different"),
    }


def determinism_runs(store: Store, ref: str, k: int) -> list[int]:
    """The first ``k`` succeeded planned runs of an entry (the ones a determinism check reruns)."""
    if k < 1:
        raise InputError(f"--check-determinism: expected at least 1 run, got {k}")
    with store.session() as session:
        entry = resolve_entry(session, ref)
        ids = session.exec(
            select(Run.id).join(Arm, Arm.id == Run.arm_id)
            .where(Arm.hypothesis_id == entry.id, Run.status == "succeeded", Run.seed_origin == "planned")
            .order_by(Run.id).limit(k)
        ).all()
    if not ids:
        raise InputError(f"ENTRY: {entry.slug} has no succeeded planned runs to rerun")
    return list(ids)
