"""Variance studies and robustness follow-ups: two questions asked of every verdict.

**Variance study** (declared in the entry file, pre-registered): for each arm, runs that vary one
seed stream (init, data, noise, split) with every other stream held at the value of one fixed
seed, and runs that vary all of them. Their seeds are drawn at registration (``fixed_seed``,
``group_seeds``) and the runs carry their streams explicitly (``run.streams``) with the origin
``variance:<source>`` (or ``variance:all``), so they never enter the verdict. The report gives,
per arm and source, the sd due to that source alone with its bootstrap interval and its share of
the all-sources variance (``logbook.stats.variance``), and top-1 churn / prediction difference
between the models of each group where runs saved predictions (``logbook.stats.churn``).

**Robustness follow-up**: a new, linked, registered entry whose arms are the original comparison
at each neighbouring setting (one config key changed at a time, ``lr=x0.5,x2`` relative or
``hidden=48,96`` absolute), on fresh seeds, with δ and α inherited and the family correction
counting every comparison at every setting. The original entry is never changed.

One file (over 400 lines) because variance studies and robustness follow-ups share the registration of derived runs and entries; the statistics they use are in logbook/stats/variance.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis, Run, utcnow
from logbook.db.queries import arms_of, resolve_entry, runs_of
from logbook.entries.seeding import STREAMS, derive_streams
from logbook.errors import InputError
from logbook.stats import family_verdicts
from logbook.stats.churn import prediction_difference, top1_churn, within_arm
from logbook.stats.variance import ALL, decompose, sources_that_matter

ORIGIN_PREFIX = "variance:"


# ---- variance study: checking, queueing -----------------------------------------------------

def trainer_sources(trainer: dict[str, Any]) -> list[str] | None:
    """The sources a trainer declares it can vary (``VARIES``), asked of a fresh interpreter so
    that this process never imports a trainer (or torch). None if it cannot be loaded."""
    out = subprocess.run([sys.executable, "-m", "logbook.engine.child", "--probe", json.dumps(trainer, sort_keys=True)],
                         capture_output=True, text=True, timeout=300, check=False)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])["varies"]
    except (ValueError, IndexError, KeyError):
        return None


def check_study(study: dict[str, Any] | None, trainer: dict[str, Any], label: str) -> dict[str, Any] | None:
    """Refuse (InputError, exit 2) a study on a source the entry's trainer cannot vary. Returns the
    study with ``trainer_varies`` (what the trainer declares) and ``verdict_varies``: the sources
    the verdict's own seeds vary (all the trainer's, or the file's ``verdict_varies``, which must
    be among them); with the latter also ``verdict_holds``: the sources the planned runs hold at
    the study's fixed seed. A study checked already is returned as it is."""
    if not study or "trainer_varies" in study:
        return study
    declared = declared_by_spec(trainer)
    name = trainer.get("name") or "command"
    if declared is None:
        raise InputError(f"{label}: variance_study: expected a trainer that loads, to ask which sources it varies; {name!r} does not")
    for field in ("sources", "verdict_varies"):
        missing = [s for s in study.get(field) or () if s not in declared]
        if missing:
            raise InputError(f"{label}: variance_study.{field}: trainer {name!r} cannot vary {', '.join(missing)}; "
                             f"expected sources it declares in VARIES ({', '.join(declared) or 'none'})")
    if study.get("verdict_varies") is None:
        return {**study, "trainer_varies": declared, "verdict_varies": declared}
    varied = [s for s in STREAMS if s in study["verdict_varies"]]
    return {**study, "trainer_varies": declared, "verdict_varies": varied,
            "verdict_holds": [s for s in STREAMS if s not in varied]}


def registered_study(entry: Hypothesis) -> dict[str, Any] | None:
    """The variance study as registered (what the registration hash covers), else the draft's."""
    if entry.registered_content is not None:
        return entry.registered_content.get("variance_study")
    return entry.variance_study


def study_streams(study: dict[str, Any], group: str, seed: int) -> dict[str, int]:
    """A study run's streams: every stream from the fixed seed except ``group``'s, which comes
    from ``seed`` (all of them from ``seed`` for the all-sources group). ``"global"`` is the seed
    the run's trainer sees as its seed (and Python, NumPy and torch are seeded with): the fixed
    seed when one source varies, so nothing drawn from a global generator varies with it."""
    varied = derive_streams(seed)
    if group == ALL:
        return {**varied, "global": seed}
    return {**derive_streams(study["fixed_seed"]), group: varied[group], "global": study["fixed_seed"]}


def queue_study(store: Store, ref: str) -> list[int]:
    """Queue the registered variance study's runs on every arm (those not queued yet)."""
    with store.session(write=True) as session:
        entry = resolve_entry(session, ref)
        study = registered_study(entry)
        if not study or "group_seeds" not in study:
            return []
        arms = arms_of(session, entry.id)
        have = set(session.exec(
            select(Run.arm_id, Run.seed, Run.seed_origin).join(Arm, Arm.id == Run.arm_id)
            .where(Arm.hypothesis_id == entry.id, col(Run.seed_origin).startswith(ORIGIN_PREFIX))
        ).all())
        now = utcnow()
        new_runs = [
            Run(arm_id=arm.id, seed=seed, seed_origin=ORIGIN_PREFIX + group, streams=study_streams(study, group, seed),
                queued_at=now)
            for group, seeds in study["group_seeds"].items()
            for seed in seeds
            for arm in arms
            if (arm.id, seed, ORIGIN_PREFIX + group) not in have
        ]
        session.add_all(new_runs)
        if new_runs:
            entry.status = "running"
            session.add(entry)
        session.commit()
        return [r.id for r in new_runs]


# ---- variance study: the report ------------------------------------------------------------

def _group_values(rows: list[tuple[Arm, Run]], metric: str) -> dict[str, dict[str, dict[str, Any]]]:
    """arm -> group -> {"values": [...], "predictions": [paths], "pending": n, "excluded": n}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for arm, run in rows:
        if not run.seed_origin.startswith(ORIGIN_PREFIX):
            continue
        group = run.seed_origin[len(ORIGIN_PREFIX):]
        cell = out.setdefault(arm.name, {}).setdefault(group, {"values": [], "predictions": [], "pending": 0, "excluded": 0})
        value = (run.final_metrics or {}).get(metric)
        if run.status in ("queued", "running"):
            cell["pending"] += 1
        elif run.status == "succeeded" and isinstance(value, (int, float)) and not isinstance(value, bool):
            cell["values"].append(float(value))
            if run.predictions_path:
                cell["predictions"].append(run.predictions_path)
        elif run.status == "diverged":
            cell["values"].append(math.nan)
        else:
            cell["excluded"] += 1
    return out


def _group_churn(paths: list[str]) -> dict[str, float] | None:
    models = []
    for path in paths:
        try:
            models.append(np.load(Path(path), allow_pickle=False))
        except (OSError, ValueError):
            continue
    if len(models) < 2:
        return None
    churn = within_arm(models, top1_churn, n_resamples=200)
    pd_ = within_arm(models, prediction_difference, n_resamples=200)
    return {"churn": churn.mean, "churn_low": churn.low, "churn_high": churn.high,
            "prediction_difference": pd_.mean, "pd_low": pd_.low, "pd_high": pd_.high}


def unvaried_warning(varied: list[str], matter: list[str], shares: dict[str, float]) -> str | None:
    """The warning when sources that matter were not varied by the verdict's seeds."""
    missing = [s for s in matter if s not in varied]
    if not missing:
        return None
    said = ", ".join(f"{s} contributes {shares[s]:.0%} of the variance" for s in missing)
    return (f"your seeds varied {', '.join(varied) or 'no declared source'} only; {said}: "
            "the verdict's interval is too narrow")


def variance_report(store: Store, ref: str) -> dict[str, Any]:
    """Per arm and source: sd with its bootstrap interval, share of the all-sources variance, and
    churn between the group's models. JSON keys ``arms.<arm>.<source>.{sd, sd_low, sd_high, share}``."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        study = registered_study(entry)
        if not study:
            raise InputError(f"ENTRY: {entry.slug} has no variance_study; expected an entry registered with one")
        rows = runs_of(session, entry.id)
        arms = [a.name for a in arms_of(session, entry.id)]
        trainer = dict(entry.trainer)
        slug, metric = entry.slug, entry.metric
    cells = _group_values(rows, metric)
    groups = [*study["sources"], ALL]
    report: dict[str, Any] = {"entry": slug, "metric": metric, "sources": list(study["sources"]),
                              "seeds": study["seeds"], "arms": {}, "pending": 0, "matter": []}
    matter: set[str] = set()
    shares_max: dict[str, float] = {}
    for arm in arms:
        by_group = cells.get(arm, {})
        report["pending"] += sum(c["pending"] for c in by_group.values())
        values = {g: np.array(by_group.get(g, {}).get("values", []), dtype=float) for g in groups}
        result = decompose(values)
        arm_out: dict[str, Any] = {}
        for g in groups:
            cell = by_group.get(g, {"predictions": [], "pending": 0, "excluded": 0})
            arm_out[g] = {**result[g].to_dict(), "pending": cell["pending"], "excluded": cell["excluded"],
                          "churn": _group_churn(cell["predictions"])}
        report["arms"][arm] = arm_out
        for s in sources_that_matter(result):
            matter.add(s)
            shares_max[s] = max(shares_max.get(s, 0.0), result[s].share)
    report["matter"] = [s for s in study["sources"] if s in matter]
    report["complete"] = report["pending"] == 0
    varied = study.get("verdict_varies")
    report["verdict_varies"] = varied
    report["warning"] = unvaried_warning(varied, report["matter"], shares_max) if varied is not None else None
    return report


def declared_by_spec(trainer: dict[str, Any]) -> list[str] | None:
    """Which sources the verdict's own seeds vary: those the trainer declares (a command trainer's
    placeholders and ``varies`` are read from the spec; a named trainer is asked)."""
    if "command" in trainer:
        command = trainer["command"]
        return sorted({s for s in ("init", "data", "noise", "split") if "{seed_" + s + "}" in command}
                      | set(trainer.get("varies") or ()))
    return trainer_sources(trainer)


# ---- robustness follow-ups -----------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One neighbouring setting: config key ``key`` set to ``value``, or multiplied by ``factor``."""

    key: str
    value: Any = None
    factor: float | None = None

    @property
    def label(self) -> str:
        return f"{self.key}×{self.factor:g}" if self.factor is not None else f"{self.key}={self.value}"

    @property
    def slug(self) -> str:
        text = f"{self.key}-x{self.factor:g}" if self.factor is not None else f"{self.key}-{self.value}"
        return "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in text)

    def apply(self, config: dict[str, Any], arm: str) -> dict[str, Any]:
        if self.factor is None:
            return {**config, self.key: self.value}
        base = config.get(self.key)
        if not isinstance(base, (int, float)) or isinstance(base, bool):
            raise InputError(f"--vary: {self.key}: expected a number in the config of every arm for a relative change "
                             f"(x{self.factor:g}); arm {arm!r} has {base!r}")
        new = base * self.factor
        return {**config, self.key: int(new) if isinstance(base, int) and float(new).is_integer() else new}


def parse_vary(items: tuple[str, ...] | list[str]) -> list[Change]:
    """``NAME=V1,V2`` options into changes, one per value: ``x0.5`` is relative, others absolute
    (read as YAML scalars, so 48 is a number and relu a string)."""
    changes: list[Change] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or not values.strip():
            raise InputError(f"--vary: expected NAME=V1,V2 (values absolute, or relative as x0.5), got {item!r}")
        for text in values.split(","):
            text = text.strip()
            if text[:1] in ("x", "×") and _is_float(text[1:]):
                factor = float(text[1:])
                if not math.isfinite(factor) or factor <= 0:
                    raise InputError(f"--vary: {key}: expected a positive finite factor, got {text!r}")
                changes.append(Change(key, factor=factor))
            else:
                try:
                    value = yaml.safe_load(text)
                except yaml.YAMLError as exc:
                    raise InputError(f"--vary: {key}: expected a value, got {text!r}") from exc
                if value is None or isinstance(value, (dict, list)):
                    raise InputError(f"--vary: {key}: expected a scalar value, got {text!r}")
                changes.append(Change(key, value=value))
    if not changes:
        raise InputError("--vary: expected at least one NAME=V1,V2")
    return changes


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def follow_up_file(entry: Hypothesis, arms: list[Arm], changes: list[Change], seeds: int) -> tuple[dict[str, Any], list[dict]]:
    """The follow-up as hypothesis-file content (validated like any file) and its settings."""
    settings: list[dict[str, Any]] = []
    new_arms: dict[str, Any] = {}
    baseline = entry.baseline_arm
    for change in changes:
        names = {a.name: f"{a.name}.{change.slug}" for a in arms}
        for a in arms:
            new_arms[names[a.name]] = change.apply(dict(a.config), a.name)
        settings.append({"label": change.label, "key": change.key, "value": change.value, "factor": change.factor,
                         "baseline": names[baseline],
                         "candidates": {a.name: names[a.name] for a in arms if a.name != baseline}})
    data = {
        "title": f"Robustness of {entry.slug}: {', '.join(c.label for c in changes)}"[:200],
        "hypothesis": f"The verdict of {entry.slug} holds at neighbouring settings. Original claim: {entry.statement}",
        "metric": entry.metric, "goal": entry.goal,
        "min_effect": entry.min_effect,
        "alpha": entry.alpha, "seeds": seeds, "trainer": entry.trainer, "arms": new_arms,
        "baseline": settings[0]["baseline"], "tags": [*entry.tags, "robustness"],
        "deterministic": entry.deterministic,
    }
    return data, settings


def register_follow_up(store: Store, ref: str, vary: list[str] | tuple[str, ...], seeds: int | None) -> Hypothesis:
    """Register the linked follow-up entry of ENTRY at each neighbouring setting (nothing of ENTRY
    changes). Returns the registered follow-up; the caller queues it."""
    from logbook.entries.file import validate
    from logbook.entries.registry import create_draft, register

    changes = parse_vary(vary)
    with store.session() as session:
        entry = resolve_entry(session, ref)
        if entry.registered_at is None:
            raise InputError(f"ENTRY: {entry.slug} is a draft; expected a registered entry")
        if entry.min_effect is None:
            raise InputError(f"ENTRY: {entry.slug} has no δ (registered with auto); expected an entry with a δ to inherit")
        arms = arms_of(session, entry.id)
        n = seeds if seeds is not None else entry.seeds_per_arm
        data, settings = follow_up_file(entry, arms, changes, n)
        original = {"id": entry.id, "slug": entry.slug, "registration_hash": entry.registration_hash}
        cwd = entry.repo_root if entry.repo_root and Path(entry.repo_root).is_dir() else "."
    spec = validate(data, label="--vary")
    draft = create_draft(store, spec)
    with store.session(write=True) as session:
        stored = session.get(Hypothesis, draft.id)
        stored.follows_id = original["id"]
        stored.robustness = {"of": original, "settings": settings}
        session.add(stored)
        session.commit()
    return register(store, str(draft.id), cwd=cwd)


def follow_up_of(store: Store, ref: str) -> tuple[Hypothesis, Hypothesis | None]:
    """ENTRY and its newest robustness follow-up (None if it has none)."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        follow = session.exec(
            select(Hypothesis).where(Hypothesis.follows_id == entry.id, col(Hypothesis.robustness).is_not(None))
            .order_by(col(Hypothesis.id).desc())
        ).first()
        return entry, follow


def judge_settings(follow: Hypothesis, data: dict[str, Any], *, interval: str, planned_n: int) -> list[tuple[dict, str, Any]]:
    """Each setting's candidate(s) against that setting's baseline, as one family over every
    setting and candidate: (setting, original candidate name, Verdict)."""
    settings = follow.robustness["settings"]
    family = sum(len(s["candidates"]) for s in settings)
    judged = []
    for s in settings:
        b = data[s["baseline"]]
        for original_name, arm in s["candidates"].items():
            c = data[arm]
            v = family_verdicts(
                np.array(b.values, dtype=float), {arm: np.array(c.values, dtype=float)}, family_size=family,
                failed={"__baseline__": b.excluded, arm: c.excluded}, delta=follow.min_effect, alpha=follow.alpha,
                higher_is_better=follow.goal == "maximize", interval=interval, planned_n=planned_n,
                metric=follow.metric, baseline_name=s["baseline"],
            )[0]
            judged.append((s, original_name, v))
    return judged


def setting_comparisons(store: Store, follow: Hypothesis) -> list[dict[str, Any]]:
    """The robustness table: per setting (and candidate), the verdict with its effect and CI;
    None until that setting's planned runs have all finished."""
    from logbook.entries.verdicts import collect

    with store.session() as session:
        data = collect(runs_of(session, follow.id), follow.metric, lambda r: r.seed_origin in ("planned", "extra"))
    registered_n = int((follow.registered_content or {}).get("seeds", follow.seeds_per_arm))
    out = []
    for s, original_name, v in judge_settings(follow, data, interval="welch", planned_n=registered_n):
        row = {"setting": {s["key"]: s["value"] if s["factor"] is None else f"x{s['factor']:g}"},
               "label": s["label"], "candidate": original_name,
               "verdict": None, "detail": None, "effect": None, "ci_low": None, "ci_high": None}
        arms = (data[s["baseline"]], data[s["candidates"][original_name]])
        if all(d.pending == 0 and d.finished_planned >= registered_n for d in arms):
            row.update(verdict=v.verdict, detail=v.detail, effect=v.effect, ci_low=v.ci_low, ci_high=v.ci_high)
        out.append(row)
    return out


def robustness_summary(original_verdict: str | None, rows: list[dict[str, Any]]) -> tuple[bool | None, str]:
    """Whether the verdict holds at every neighbouring setting, and one line that says so."""
    if not rows:
        return None, "no neighbouring settings"
    if any(r["verdict"] is None for r in rows):
        waiting = sum(r["verdict"] is None for r in rows)
        return None, f"{waiting}/{len(rows)} neighbouring settings still running"
    verdicts = [r["verdict"] for r in rows]
    n = len(rows)
    if original_verdict is not None and all(v == original_verdict for v in verdicts):
        return True, f"{original_verdict} at {n}/{n} neighbouring settings"
    parts = []
    for kind in ("positive", "negative", "inconclusive"):
        labels = [r["label"] for r in rows if r["verdict"] == kind]
        if labels and kind != original_verdict:
            only = " only" if len(labels) < n else ""
            parts.append(f"{kind} at {', '.join(labels)}{only}")
    if original_verdict is None:
        return None, "; ".join(parts)
    return False, "; ".join(parts) + ": not robust"


def robustness_report(store: Store, ref: str) -> dict[str, Any]:
    """``{"follow_up", "robust", "summary", "original_verdict", "settings": [...]}`` for ENTRY."""
    from logbook.entries.verdicts import entry_verdict

    entry, follow = follow_up_of(store, ref)
    if follow is None:
        raise InputError(f"ENTRY: {entry.slug} has no robustness follow-up; expected one registered with "
                         f"`logbook robustness {entry.slug} --vary NAME=V1,V2`")
    original = entry_verdict(store, str(entry.id), cache=False)["verdict"]
    rows = setting_comparisons(store, follow)
    robust, summary = robustness_summary(original, rows)
    return {"entry": entry.slug, "follow_up": follow.id, "follow_up_slug": follow.slug, "original_verdict": original,
            "robust": robust, "summary": summary, "settings": rows}


def verdict_notes(store: Store, ref: str) -> dict[str, Any]:
    """What the verdict of ENTRY should say about its studies: the variance warning (sources that
    matter but that the verdict's seeds did not vary) and the robustness summary line."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        has_study = bool(registered_study(entry))
    _, follow = follow_up_of(store, ref)
    notes: dict[str, Any] = {"variance_warning": None, "robustness": None, "robust": None}
    if has_study:
        notes["variance_warning"] = variance_report(store, ref)["warning"]
    if follow is not None:
        report = robustness_report(store, ref)
        notes["robustness"], notes["robust"] = report["summary"], report["robust"]
    return notes


def studies_of(store: Store, ref: str) -> dict[str, Any]:
    """``{"variance": report or None, "robustness": report or None}``: what the entry screen and
    the writeups show about ENTRY's studies."""
    with store.session() as session:
        has_study = bool(registered_study(resolve_entry(session, ref)))
    _, follow = follow_up_of(store, ref)
    return {"variance": variance_report(store, ref) if has_study else None,
            "robustness": robustness_report(store, ref) if follow is not None else None}
