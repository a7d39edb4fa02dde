"""δ from a pilot: ``min_effect: {from_pilot: ENTRY, sd_multiple: m}`` resolved at registration.

A δ taken from the data being judged is circular; a δ taken from an *earlier, registered* entry's
finished runs is not. δ = m × the pooled standard deviation of the pilot's registered arms
(each arm's finite values about its own mean, so a real difference between the pilot's arms does
not inflate the noise estimate). Diverged seeds give no value and are left out of the sd.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from sqlmodel import Session

from logbook.db.engine import Store
from logbook.db.queries import resolve_entry, runs_of
from logbook.errors import InputError

MIN_DEGREES_OF_FREEDOM = 2  # a pooled sd from fewer would be little more than a guess


def pooled_sd(groups: list[list[float]]) -> tuple[float, int]:
    """The pooled sd of several groups (each about its own mean) and its degrees of freedom."""
    squares, dof = 0.0, 0
    for values in groups:
        finite = [v for v in values if math.isfinite(v)]
        if len(finite) < 2:
            continue
        mean = math.fsum(finite) / len(finite)
        squares += math.fsum((v - mean) ** 2 for v in finite)
        dof += len(finite) - 1
    return (math.sqrt(squares / dof) if dof else math.nan), dof


def resolve_pilot_delta(session: Session, request: dict[str, Any], metric: str, *, label: str) -> tuple[float, dict[str, Any]]:
    """δ and the record of where it came from, or an InputError naming ``label`` and the field."""
    from logbook.entries.verdicts import COUNTED_ORIGINS, collect  # numpy and the statistics: only when asked

    where = f"{label}: min_effect.from_pilot"
    try:
        pilot = resolve_entry(session, request["from_pilot"])
    except InputError as exc:
        raise InputError(f"{where}: expected a registered pilot entry ({exc})") from exc
    if pilot.registered_at is None or not pilot.registered_content:
        raise InputError(f"{where}: expected a registered pilot entry; {pilot.slug} is a draft")
    if pilot.metric != metric:
        raise InputError(f"{where}: expected a pilot measuring {metric} (δ is in its units); {pilot.slug} measures {pilot.metric}")
    registered_arms = [arm["name"] for arm in pilot.registered_content.get("arms", [])]
    data = collect(runs_of(session, pilot.id), metric, lambda run: run.seed_origin in COUNTED_ORIGINS)
    groups = [data[name].values for name in registered_arms if name in data]
    sd, dof = pooled_sd(groups)
    if dof < MIN_DEGREES_OF_FREEDOM or not math.isfinite(sd):
        finite = sum(math.isfinite(v) for g in groups for v in g)
        raise InputError(
            f"{where}: expected a pilot with finished runs that estimate the sd with {MIN_DEGREES_OF_FREEDOM}+ degrees "
            f"of freedom (3 values in one arm, or 2 in each of two); {pilot.slug} has {finite} values of {metric}, {dof}"
        )
    delta = float(request["sd_multiple"]) * sd
    record = {
        "from_pilot": pilot.slug, "pilot_id": pilot.id, "pilot_registration_hash": pilot.registration_hash,
        "sd_multiple": float(request["sd_multiple"]), "pooled_sd": sd, "degrees_of_freedom": dof,
        "arms": registered_arms, "values": sum(len([v for v in g if math.isfinite(v)]) for g in groups),
    }
    return delta, record


def check_pilot(store: Store, spec: Any, *, label: str) -> float:
    """The δ that registering ``spec`` now would record (raises InputError naming ``label`` if none)."""
    with store.session() as session:
        return resolve_pilot_delta(session, spec.min_effect_pilot, spec.metric, label=label)[0]


def delta_text(detail: dict[str, Any], fmt: Callable[[float], str] = lambda x: f"{x:g}") -> str:
    """δ as people read it, with where it came from, from an entry's detail (`show --json`)."""
    if detail["min_effect"] is None:
        pilot = detail.get("min_effect_pilot")
        if pilot:
            return f"to be derived at registration: {fmt(pilot['sd_multiple'])} × the pooled sd of {pilot['from_pilot']}"
        return "auto (a legacy default derived from the data judged: exploratory)"
    pilot = detail.get("min_effect_pilot")
    if detail.get("min_effect_source") == "pilot" and pilot:
        return (f"{fmt(detail['min_effect'])} ({fmt(pilot['sd_multiple'])} × pooled sd {fmt(pilot['pooled_sd'])} "
                f"of pilot {pilot['from_pilot']})")
    return fmt(detail["min_effect"])
