"""Variance studies: which randomness makes the spread of a verdict's seeds.

A variance study is declared in the entry file and pre-registered: for each arm, runs that vary
one seed stream (init, data, noise, split) with every other stream held at the value of one fixed
seed, and runs that vary all of them. Their seeds are drawn at registration (``fixed_seed``,
``group_seeds``) and the runs carry their streams explicitly (``run.streams``) with the origin
``variance:<source>`` (or ``variance:all``), so they never enter the verdict. The report gives,
per arm and source, the sd due to that source alone with its bootstrap interval and its share of
the all-sources variance (``logbook.stats.variance``), and top-1 churn / prediction difference
between the models of each group where runs saved predictions (``logbook.stats.churn``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis, Run, utcnow
from logbook.db.queries import arms_of, resolve_entry, runs_of
from logbook.entries.seeding import STREAMS, derive_streams
from logbook.errors import InputError
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
