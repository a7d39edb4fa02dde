"""Read-side queries: find entries and turn rows into plain, JSON-ready dicts."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from logbook.db import reads
from logbook.db.models import Amendment, Arm, Audit, Hypothesis, Run
from logbook.db.reads import SEED_HIDDEN, WITHDRAWN  # noqa: F401 (re-exported)
from logbook.errors import InputError


def iso(moment: datetime | None) -> str | None:
    """A stored UTC time as ISO 8601 with a Z, or None. Naive values are taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


def dbapi(session: Session) -> Any:
    """The session's own DB-API (``sqlite3``) connection, in its transaction: what the functions of
    ``logbook.db.reads`` take (pending changes flushed first, as a query through the session would)."""
    session.flush()
    return session.connection().connection.driver_connection


def open_audit_ids(session: Session) -> set[int]:
    """Audits still under way: their fresh seeds stay private (committed to, not shown) until they end."""
    return set(session.exec(select(Audit.id).where(Audit.status != "concluded")).all())


def seed_shown(run: Run, open_audits: set[int]) -> bool:
    """Whether a run's seed may be shown: not while it belongs to an audit that has not ended."""
    return run.audit_id is None or run.audit_id not in open_audits


def did_you_mean(word: str, known: list[str]) -> str:
    """A " (did you mean ...?)" suffix naming the known words closest to ``word``, or ""."""
    import difflib

    close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def resolve_entry(session: Session, ref: str) -> Hypothesis:
    """The entry named by ``ref``: an id, an exact slug, or a unique slug prefix."""
    ref = str(ref).strip()
    if ref.isdigit():
        entry = session.get(Hypothesis, int(ref))
        if entry is not None:
            return entry
    exact = session.exec(select(Hypothesis).where(Hypothesis.slug == ref)).first()
    if exact is not None:
        return exact
    escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matches = session.exec(
        select(Hypothesis).where(col(Hypothesis.slug).like(escaped + "%", escape="\\")).order_by(Hypothesis.id)
    ).all()
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(f"ENTRY: expected an entry id or slug prefix; nothing matches {ref!r}"
                         + did_you_mean(ref, session.exec(select(Hypothesis.slug)).all()))
    names = ", ".join(f"{m.id}:{m.slug}" for m in matches[:8])
    raise InputError(f"ENTRY: {ref!r} is ambiguous; expected one of {names}")


def arms_of(session: Session, entry_id: int) -> list[Arm]:
    return list(session.exec(select(Arm).where(Arm.hypothesis_id == entry_id).order_by(Arm.position, Arm.id)).all())


def amendments_of(session: Session, entry_id: int) -> list[Amendment]:
    return list(
        session.exec(select(Amendment).where(Amendment.hypothesis_id == entry_id).order_by(Amendment.id)).all()
    )


# WITHDRAWN (from db/reads.py) is the amendment field that withdraws an entry: a dated record (with
# its reason) that the entry was a mistake, kept in the hash chain like every amendment; the entry's
# rows stay as they were.


def withdrawal(amendments: list[Amendment]) -> dict[str, Any] | None:
    """When and why an entry was withdrawn (``{"at", "reason"}``), from its amendments, or None."""
    for amendment in amendments:
        if amendment.field == WITHDRAWN:
            return {"at": iso(amendment.created_at), "reason": amendment.reason}
    return None


def withdrawals(session: Session, entry_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """Every withdrawn entry's id with when and why (one query, for lists of many entries)."""
    return reads.withdrawals(dbapi(session), entry_ids)


def latest_attempt() -> Any:
    """A condition on ``Run``: the row is its seed's latest attempt (no other row retries it)."""
    retries = aliased(Run)
    return col(Run.id).not_in(select(retries.retry_of).where(col(retries.retry_of).is_not(None)))


def run_counts(session: Session, entry_ids: list[int] | None = None) -> dict[int, Counter]:
    """Run counts by status for each entry id, one per seed and arm (its latest attempt)."""
    return reads.run_counts(dbapi(session), entry_ids)


def runs_of(session: Session, entry_id: int) -> list[tuple[Arm, Run]]:
    """Every run of an entry with its arm, in arm order then seed order."""
    rows = session.exec(
        select(Arm, Run).join(Run, Run.arm_id == Arm.id).where(Arm.hypothesis_id == entry_id)
        .order_by(Arm.position, Arm.id, Run.id)
    ).all()
    return [(arm, run) for arm, run in rows]


def arm_dict(arm: Arm) -> dict[str, Any]:
    return {
        "name": arm.name,
        "role": arm.role,
        "config": arm.config,
        "config_hash": arm.config_hash,
        "added_by_amendment": arm.added_by_amendment,
    }


def amendment_dict(amendment: Amendment) -> dict[str, Any]:
    return {
        "id": amendment.id,
        "field": amendment.field,
        "old": amendment.old_value,
        "new": amendment.new_value,
        "reason": amendment.reason,
        "at": iso(amendment.created_at),
    }


def entry_summary(entry: Any, counts: Counter | None = None, n_arms: int | None = None,
                  withdrawn: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields `logbook list` shows for one entry (an entry, or a row of ``SUMMARY_COLUMNS``;
    ``withdrawn``: when and why, or None)."""
    counts = counts or Counter()
    return {
        "id": entry.id,
        "slug": entry.slug,
        "title": entry.title,
        "metric": entry.metric,
        "goal": entry.goal,
        "status": entry.status,
        "verdict": entry.verdict,
        "arms": n_arms,
        "seeds": entry.seeds_per_arm,
        "runs": dict(sorted(counts.items())),
        "tags": list(entry.tags or []),
        "registered_at": iso(entry.registered_at),
        "registration_hash": entry.registration_hash,
        "updated_at": iso(entry.updated_at),
        "withdrawn": withdrawn is not None,
        "withdrawal": withdrawn,
    }


SUMMARY_COLUMNS = ("id", "slug", "title", "metric", "goal", "status", "verdict", "seeds_per_arm", "tags",
                   "registered_at", "registration_hash", "updated_at")  # what entry_summary reads


def summary_rows(session: Session) -> list[Any]:
    """Every entry as a row of only the columns ``entry_summary`` reads (by attribute, as on an
    entry): no ORM objects, and not the other columns (the source text, the environment, the
    verdict detail, JSON each), which would cost most of `logbook list` on a large logbook."""
    columns = [getattr(Hypothesis, name) for name in SUMMARY_COLUMNS]
    return list(session.exec(select(*columns).order_by(Hypothesis.id)).all())


def list_entries(session: Session) -> list[dict[str, Any]]:
    entries = summary_rows(session)
    counts = run_counts(session)
    arm_counts = dict(
        session.exec(select(Arm.hypothesis_id, func.count()).group_by(Arm.hypothesis_id)).all()
    )
    withdrawn = withdrawals(session)
    return [entry_summary(e, counts.get(e.id), arm_counts.get(e.id, 0), withdrawn.get(e.id)) for e in entries]
