"""Comparing entries side by side: their configuration with the differences marked, each chosen
arm's per-seed values and summary, and every verdict with its effect and interval in one table.

What is compared is a list of references: ``ENTRY`` (every arm of it, by id or slug prefix) or
``ENTRY:ARM`` (one arm). The result is a JSON-ready dict (``logbook compare --json`` prints it;
the terminal app's compare screen draws it):

- ``entries``: one item per entry named (id, slug, title, metric, goal, min_effect, alpha, seeds,
  trainer, status, verdict, interval, withdrawn), in the order first named;
- ``arms``: one item per chosen arm: ``key`` (``slug:arm``), entry slug and id, arm, role, config,
  the metric, ``values`` (one per finished seed as the verdict counts it: NaN for a diverged
  seed), ``n`` (finite values), ``excluded``, ``pending``, ``mean`` and ``sd`` (sample, n − 1) of
  the finite values (None where undefined);
- ``config``: rows ``{"key", "values": {arm key: value or None}, "differs"}``, the entry-level
  settings first (``trainer``, ``metric``, ``goal``, ``min_effect``, ``alpha``, ``seeds``), then
  every arm config key in sorted order; a key an arm lacks is None there and counts as a difference;
- ``comparisons``: one item per candidate of each entry whose candidate (or, with no arm chosen,
  any arm) is in the selection: entry, candidate, baseline, verdict, effect (positive is better),
  ci_low, ci_high, level, interval, δ, p (Holm) and seeds needed;
- ``same_metric``: whether every chosen arm reports the same metric (distributions share an axis
  only then).
"""

from __future__ import annotations

import math
from typing import Any

from logbook.db.engine import Store
from logbook.db.queries import arms_of, resolve_entry
from logbook.entries.registry import entry_detail
from logbook.entries.verdicts import entry_verdict
from logbook.errors import InputError

ENTRY_KEYS = ("trainer", "metric", "goal", "min_effect", "alpha", "seeds")
COMPARISON_KEYS = ("verdict", "effect", "ci_low", "ci_high", "level", "interval", "delta", "p_value_holm", "seeds_needed")


def parse_ref(text: str) -> tuple[str, str | None]:
    """``ENTRY`` or ``ENTRY:ARM`` → (entry reference, arm name or None). Slugs never hold a colon."""
    entry, sep, arm = text.strip().partition(":")
    if not entry or (sep and not arm):
        raise InputError(f"ENTRY: expected ENTRY or ENTRY:ARM (an id or slug prefix, then an arm name), got {text!r}")
    return entry, (arm if sep else None)


def summary(values: list[float]) -> dict[str, Any]:
    """n, mean and sample sd (n − 1) of the finite values; mean/sd None where undefined."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    n = len(finite)
    mean = sum(finite) / n if n else None
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else None
    return {"n": n, "mean": mean, "sd": sd}


def config_rows(entries: dict[str, dict[str, Any]], arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The settings side by side, one row per key, ``differs`` when the chosen arms disagree."""
    def row(key: str, values: dict[str, Any]) -> dict[str, Any]:
        distinct = {repr(v) for v in values.values()}
        return {"key": key, "values": values, "differs": len(distinct) > 1}

    rows = [row(key, {a["key"]: entries[a["entry"]][key] for a in arms}) for key in ENTRY_KEYS]
    keys = sorted({k for a in arms for k in (a["config"] or {})})
    rows += [row(f"config.{key}", {a["key"]: (a["config"] or {}).get(key) for a in arms}) for key in keys]
    return rows


def trainer_label(trainer: dict[str, Any] | None) -> str:
    trainer = trainer or {}
    return trainer.get("name") or (f"command: {trainer['command']}" if trainer.get("command") else "none (imported)")


def compare(store: Store, refs: list[str]) -> dict[str, Any]:
    """Compare the entries and arms named by ``refs`` (see the module docstring for the shape).
    At least two arms in all; an unknown entry or arm, or one named twice, is refused (exit 2)."""
    if not refs:
        raise InputError("ENTRY: expected at least one ENTRY or ENTRY:ARM to compare")
    chosen: dict[int, list[str] | None] = {}  # entry id -> arm names (None: every arm), in the order named
    seen: set[tuple[int, str | None]] = set()
    with store.session() as session:
        for text in refs:
            ref, arm = parse_ref(text)
            entry = resolve_entry(session, ref)
            names = [a.name for a in arms_of(session, entry.id)]
            if arm is not None and arm not in names:
                raise InputError(f"ENTRY:ARM: {entry.slug} has no arm {arm!r}; expected one of {', '.join(names)}")
            if (entry.id, arm) in seen or (entry.id in chosen and (chosen[entry.id] is None) != (arm is None)):
                raise InputError(f"ENTRY: {text!r} names {entry.slug}{':' + arm if arm else ''} again; expected each "
                                 "entry (or each arm of it) once")
            seen.add((entry.id, arm))
            if arm is None:
                chosen[entry.id] = None
            else:
                chosen.setdefault(entry.id, []).append(arm)
    entries: dict[str, dict[str, Any]] = {}
    arms: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    for entry_id, names in chosen.items():
        detail = entry_detail(store, str(entry_id))
        verdict = entry_verdict(store, str(entry_id), cache=False)
        slug = detail["slug"]
        entries[slug] = {
            "id": entry_id, "slug": slug, "title": detail["title"], "metric": detail["metric"], "goal": detail["goal"],
            "min_effect": detail["min_effect"], "alpha": detail["alpha"], "seeds": detail["seeds"],
            "trainer": trainer_label(detail["trainer"]), "status": detail["status"], "verdict": verdict["verdict"],
            "interval": verdict["interval"],
            "withdrawn": detail["withdrawn"],
        }
        for arm in detail["arms"]:
            if names is not None and arm["name"] not in names:
                continue
            data = verdict["arms"].get(arm["name"], {"values": [], "excluded": 0, "pending": 0})
            arms.append({
                "key": f"{slug}:{arm['name']}", "entry": slug, "entry_id": entry_id, "arm": arm["name"], "role": arm["role"],
                "config": arm["config"], "metric": detail["metric"], "goal": detail["goal"], "values": list(data["values"]),
                "excluded": data["excluded"], "pending": data["pending"], **summary(data["values"]),
            })
        for c in verdict["comparisons"]:
            if names is None or c["candidate_name"] in names:
                comparisons.append({"entry": slug, "candidate": c["candidate_name"], "baseline": c["baseline_name"],
                                    **{k: c.get(k) for k in COMPARISON_KEYS}})
    if len(arms) < 2:
        raise InputError(f"ENTRY: {' '.join(refs)} names {len(arms)} arm; expected at least two arms to compare "
                         "(two entries, or an entry with two arms)")
    return {
        "entries": list(entries.values()),
        "arms": arms,
        "config": config_rows(entries, arms),
        "comparisons": comparisons,
        "same_metric": len({(a["metric"], a["goal"]) for a in arms}) == 1,
    }
