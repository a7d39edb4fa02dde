"""Robustness follow-ups: does a verdict survive a nearby setting?

A follow-up is a new, linked, registered entry whose arms are the original comparison at each
neighbouring setting (one config key changed at a time, ``lr=x0.5,x2`` relative or
``hidden=48,96`` absolute), on fresh seeds, with δ and α inherited and the family correction
counting every comparison at every setting (``verdicts.judge_settings``). The original entry is
never changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis
from logbook.db.queries import arms_of, resolve_entry, runs_of
from logbook.entries.file import validate
from logbook.entries.registry import create_draft, register
from logbook.entries.verdicts import collect, entry_verdict, judge_settings
from logbook.errors import InputError


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


def setting_comparisons(store: Store, follow: Hypothesis) -> list[dict[str, Any]]:
    """The robustness table: per setting (and candidate), the verdict with its effect and CI;
    None until that setting's planned runs have all finished."""
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
    entry, follow = follow_up_of(store, ref)
    if follow is None:
        raise InputError(f"ENTRY: {entry.slug} has no robustness follow-up; expected one registered with "
                         f"`logbook robustness {entry.slug} --vary NAME=V1,V2`")
    original = entry_verdict(store, str(entry.id), cache=False)["verdict"]
    rows = setting_comparisons(store, follow)
    robust, summary = robustness_summary(original, rows)
    return {"entry": entry.slug, "follow_up": follow.id, "follow_up_slug": follow.slug, "original_verdict": original,
            "robust": robust, "summary": summary, "settings": rows}
