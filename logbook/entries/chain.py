"""Tamper evidence: a hash chain per entry, and the verification that recomputes it.

Every entry's record is a chain of links (table ``chain_link``), each written in the same
transaction as what it covers:

- ``registration`` (seq 0): the entry's state when it was registered;
- ``amendment``: the amendment row and the entry's state after it was applied;
- ``attempt``: one finished run attempt: the run row (seed, arm, commit, status, final
  metrics, ...), its arm's name and config hash, and a digest of its metric points.

An entry's *state* is every column of its ``hypothesis`` row and of its ``arm`` rows, read raw
from SQLite, except the few that legitimately change afterwards (``MUTABLE``). A column added to
those tables later is covered without touching this module. Long text is kept as its SHA-256.

A link's ``hash`` is the SHA-256 of the canonical JSON of its sequence number, kind, referenced
row, payload hash, creation time and the previous link's hash, so changing any link, or the
order, breaks every hash after it.

``verify`` recomputes all of it from the rows: the chain itself, the live state against the
newest registration/amendment link, every amendment against its link, and every finished run
against its link. Someone with write access to the database file can still rebuild a whole,
consistent chain; an exported writeup carries the head hash, which ``verify --export`` checks.

One file (over 400 lines) on purpose: writing links and verifying them must agree byte for byte on what a payload is, so both live beside the one definition of the entry's state.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from sqlalchemy.engine import Connection

from logbook.db.engine import Store
from logbook.db.models import utcnow
from logbook.db.queries import resolve_entry
from logbook.db.runstatus import FINISHED
from logbook.errors import TamperedError

# Columns that change after the record that covers them was written, with the reason. The
# tampering matrix test (tests/test_chain.py) asserts that exactly these escape both the
# triggers and ``verify``.
MUTABLE: dict[tuple[str, str], str] = {
    ("hypothesis", "status"): "lifecycle state (registered, running, concluded), moved on by run, cancel and the worker",
    ("hypothesis", "verdict"): "a cache of the verdict, recomputed from the runs on every look",
    ("hypothesis", "verdict_detail"): "a cache of the verdict's numbers, recomputed from the runs on every look",
    ("hypothesis", "updated_at"): "when the row was last touched (status and verdict caches included)",
}
# Tables whose rows only the triggers protect (``verify`` does not recompute them), with the reason.
TRIGGER_ONLY: dict[str, str] = {
    "audit": "an audit's commitment and outcome are fixed by triggers once it concludes; its runs are chained attempts",
}
# Tables that hold no part of any entry's record, with the reason.
OUTSIDE_THE_RECORD: dict[str, str] = {
    "worker": "process bookkeeping (pids, heartbeats) of the workers; no result depends on it",
    "confirmed_command": "which commands a person confirmed before their first run; it guards execution, not results",
    "alembic_version": "the schema revision; a wrong one makes the logbook refuse or re-migrate the file",
}
LONG_TEXT = 256  # longer strings are kept in payloads as their SHA-256


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def _value(value: Any) -> Any:
    """A raw SQLite value as a payload holds it: long text and blobs by hash, non-finite floats by name."""
    if isinstance(value, bytes):
        return "sha256:" + sha256_hex(value)
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return "sha256:" + sha256_hex(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _rows(conn: Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.exec_driver_sql(sql, params).mappings().all()]


def _record(table: str, row: dict[str, Any]) -> dict[str, Any]:
    return {column: _value(value) for column, value in row.items() if (table, column) not in MUTABLE}


def entry_state(conn: Connection, entry_id: int) -> dict[str, Any]:
    """The covered columns of an entry and of its arms (by arm id), as stored."""
    entry = _rows(conn, "SELECT * FROM hypothesis WHERE id = ?", (entry_id,))
    arms = _rows(conn, "SELECT * FROM arm WHERE hypothesis_id = ? ORDER BY id", (entry_id,))
    return {
        "hypothesis": _record("hypothesis", entry[0]) if entry else None,
        "arms": {str(arm["id"]): _record("arm", arm) for arm in arms},
    }


def _digests(rows: Iterable[tuple], run_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per run: how many metric points and the SHA-256 over them, from (run_id, id, name, step,
    value) rows sorted by run, name, step and id. Each point is the line ``id\tname\tstep\tvalue!r``;
    lines are hashed a few thousand at a time (the same bytes as one update per line, far fewer calls)."""
    digests = {run_id: hashlib.sha256() for run_id in run_ids}
    counts = dict.fromkeys(digests, 0)
    current, lines = None, []
    for run_id, point_id, name, step, value in rows:
        if run_id != current or len(lines) >= 4096:
            if lines:
                digests[current].update("".join(lines).encode("utf-8"))
                counts[current] += len(lines)
            current, lines = run_id, []
        lines.append(f"{point_id}\t{name}\t{step}\t{value!r}\n")
    if lines:
        digests[current].update("".join(lines).encode("utf-8"))
        counts[current] += len(lines)
    return {run_id: {"count": counts[run_id], "sha256": d.hexdigest()} for run_id, d in digests.items()}


def points_digest(conn: Connection, run_id: int) -> dict[str, Any]:
    """How many metric points a run has and the SHA-256 over them in (name, step, id) order (read
    through the driver's cursor: a run can have millions of points)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute("SELECT run_id, id, name, step, value FROM metric_point WHERE run_id = ? ORDER BY name, step, id",
                       (run_id,))
        return _digests(cursor, [run_id])[run_id]
    finally:
        cursor.close()


# Views (the app's 2 s refresh, show, verdict) reuse a run's points digest while an aggregate
# fingerprint of its points is unchanged; `logbook verify` and the checks before running rehash all.
_DIGEST_CACHE: dict[tuple[str, int], tuple[tuple, dict[str, Any]]] = {}


def _entry_digests(conn: Connection, entry_id: int, run_ids: list[int], *, cached: bool) -> dict[int, dict[str, Any]]:
    """Points digests of the given runs of one entry, in one pass over their points."""
    if not run_ids:
        return {}
    where = f"run_id IN ({','.join(str(int(r)) for r in run_ids)})"
    out: dict[int, dict[str, Any]] = {}
    todo = list(run_ids)
    fingerprints: dict[int, tuple] = {}
    database = str(conn.engine.url)
    if cached:
        for run_id, *print_ in conn.exec_driver_sql(
                "SELECT run_id, count(*), max(id), total(value), total(step), total(value * id), total(length(name))"
                f" FROM metric_point WHERE {where} GROUP BY run_id").all():
            fingerprints[run_id] = tuple(print_)
        todo = []
        for run_id in run_ids:
            hit = _DIGEST_CACHE.get((database, run_id))
            if hit is not None and hit[0] == fingerprints.get(run_id, ()):
                out[run_id] = hit[1]
            else:
                todo.append(run_id)
    if todo:
        cursor = conn.connection.cursor()
        try:
            cursor.execute("SELECT run_id, id, name, step, value FROM metric_point WHERE run_id IN "
                           f"({','.join(str(int(r)) for r in todo)}) ORDER BY run_id, name, step, id")
            fresh = _digests(cursor, todo)
        finally:
            cursor.close()
        out.update(fresh)
        if cached:
            for run_id, digest in fresh.items():
                _DIGEST_CACHE[(database, run_id)] = (fingerprints.get(run_id, ()), digest)
    return out


def attempt_payload(conn: Connection, run_id: int) -> dict[str, Any]:
    """What a finished attempt's link covers: the run row, its arm, and its metric points."""
    run = _rows(conn, "SELECT * FROM run WHERE id = ?", (run_id,))
    if not run:
        return {"run": None}
    arm = _rows(conn, "SELECT name, config_hash FROM arm WHERE id = ?", (run[0]["arm_id"],))
    return {"run": _record("run", run[0]), "arm": arm[0] if arm else None, "points": points_digest(conn, run_id)}


def link_hash(link_id: int, seq: int, kind: str, ref_id: int, payload_sha256: str, prev_hash: str | None,
              created_at: str) -> str:
    return sha256_hex(canonical_json({"id": link_id, "seq": seq, "kind": kind, "ref": ref_id,
                                      "payload_sha256": payload_sha256, "prev": prev_hash, "at": created_at}))


def append_link(conn: Connection, entry_id: int, kind: str, ref_id: int, payload: dict[str, Any]) -> str:
    """Add a link at the end of the entry's chain (inside the caller's transaction); returns its hash."""
    last = conn.exec_driver_sql(
        "SELECT seq, hash FROM chain_link WHERE hypothesis_id = ? ORDER BY seq DESC LIMIT 1", (entry_id,)).first()
    seq, prev = (0, None) if last is None else (last[0] + 1, last[1])
    text = canonical_json(payload)
    payload_sha = sha256_hex(text)
    created = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    # the row id is hashed too, so renumbering a link shows; the caller's transaction holds the write lock
    link_id = conn.exec_driver_sql("SELECT coalesce(max(id), 0) + 1 FROM chain_link").scalar()
    digest = link_hash(link_id, seq, kind, ref_id, payload_sha, prev, created)
    conn.exec_driver_sql(
        "INSERT INTO chain_link (id, hypothesis_id, seq, kind, ref_id, payload, payload_sha256, prev_hash, hash, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (link_id, entry_id, seq, kind, ref_id, text, payload_sha, prev, digest, created),
    )
    return digest


def link_registration(conn: Connection, entry_id: int) -> str:
    return append_link(conn, entry_id, "registration", entry_id, {"state": entry_state(conn, entry_id)})


def link_amendment(conn: Connection, entry_id: int, amendment_id: int) -> str:
    amendment = _rows(conn, "SELECT * FROM amendment WHERE id = ?", (amendment_id,))[0]
    return append_link(conn, entry_id, "amendment", amendment_id,
                       {"amendment": _record("amendment", amendment), "state": entry_state(conn, entry_id)})


def link_finished_runs(conn: Connection, run_ids: Iterable[int]) -> int:
    """Link every run in ``run_ids`` that has finished and has no link yet; returns how many.

    Called by whatever ends a run (the worker, orphan recovery, cancel), in its own transaction."""
    linked = 0
    for run_id in run_ids:
        row = conn.exec_driver_sql(
            "SELECT run.status, arm.hypothesis_id FROM run JOIN arm ON arm.id = run.arm_id WHERE run.id = ?",
            (run_id,)).first()
        if row is None or row[0] not in FINISHED:
            continue
        if conn.exec_driver_sql("SELECT 1 FROM chain_link WHERE kind = 'attempt' AND ref_id = ?", (run_id,)).first():
            continue
        append_link(conn, row[1], "attempt", run_id, attempt_payload(conn, run_id))
        linked += 1
    return linked


def chain_head(conn: Connection, entry_id: int) -> str | None:
    row = conn.exec_driver_sql(
        "SELECT hash FROM chain_link WHERE hypothesis_id = ? ORDER BY seq DESC LIMIT 1", (entry_id,)).first()
    return None if row is None else row[0]


# ---- verification ---------------------------------------------------------------------------


@dataclass
class Finding:
    """One thing that differs: where (table and row), which field, what the record says and what is there."""

    row: str
    field: str
    problem: str
    recorded: Any = None
    found: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "problem": self.problem, "recorded": self.recorded,
                "found": self.found}

    def line(self) -> str:
        detail = f": recorded {self.recorded!r}, found {self.found!r}" if (self.recorded, self.found) != (None, None) else ""
        return f"{self.row}: {self.field}: {self.problem}{detail}"


@dataclass
class Verification:
    entry_id: int
    slug: str
    registered: bool
    head: str | None
    links: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings

    @property
    def integrity(self) -> str:
        """``verified``, ``TAMPERED``, or ``draft`` (nothing is recorded before registration)."""
        if not self.registered:
            return "draft"
        return "verified" if self.intact else "TAMPERED"

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.slug, "id": self.entry_id, "integrity": self.integrity, "chain_head": self.head,
                "links": self.links, "findings": [f.to_dict() for f in self.findings]}


def _compare(findings: list[Finding], row: str, recorded: dict[str, Any], found: dict[str, Any]) -> None:
    """Field-by-field differences between a recorded row and the live one. A column the record
    does not have (added to the schema after the link was written) is not compared."""
    for column in sorted(recorded):
        if column not in found:
            findings.append(Finding(row, column, "column gone", recorded[column], None))
        elif found[column] != recorded[column]:
            findings.append(Finding(row, column, "changed", recorded[column], found[column]))


def _check_links(findings: list[Finding], links: list[dict[str, Any]], entry_id: int) -> None:
    prev = None
    for position, link in enumerate(links):
        where = f"chain_link {link['id']} (seq {link['seq']})"
        if link["seq"] != position:
            findings.append(Finding(where, "seq", "links missing or out of order", position, link["seq"]))
        if link["prev_hash"] != prev:
            findings.append(Finding(where, "prev_hash", "does not follow the previous link", prev, link["prev_hash"]))
        payload_sha = sha256_hex(link["payload"] or "")
        if payload_sha != link["payload_sha256"]:
            findings.append(Finding(where, "payload", "does not match its hash", link["payload_sha256"], payload_sha))
        expected = link_hash(link["id"], link["seq"], link["kind"], link["ref_id"], link["payload_sha256"], link["prev_hash"],
                             str(link["created_at"]))
        if expected != link["hash"]:
            findings.append(Finding(where, "hash", "does not match the link's content", expected, link["hash"]))
        prev = link["hash"]
    if not links or links[0]["kind"] != "registration" or links[0]["ref_id"] != entry_id:
        findings.append(Finding(f"hypothesis {entry_id}", "chain", "the chain does not start with this entry's registration"))


def verify_entry(conn: Connection, entry_id: int, *, cached: bool = False) -> Verification:
    """Recompute one entry's chain and compare the live rows with it. ``cached`` lets views reuse
    metric-point digests whose aggregate fingerprint is unchanged (see ``_DIGEST_CACHE``)."""
    entry = _rows(conn, "SELECT id, slug, registered_at, registration_hash, registered_content FROM hypothesis WHERE id = ?",
                  (entry_id,))[0]
    links = _rows(conn, "SELECT * FROM chain_link WHERE hypothesis_id = ? ORDER BY seq, id", (entry_id,))
    result = Verification(entry_id, entry["slug"], entry["registered_at"] is not None,
                          links[-1]["hash"] if links else None, len(links))
    if not result.registered:
        if links:
            result.findings.append(Finding(f"hypothesis {entry_id}", "registered_at", "a draft with a chain", "registered", None))
        return result
    findings = result.findings
    try:
        content_hash = sha256_hex(canonical_json(json.loads(entry["registered_content"] or "null")))
    except ValueError:
        content_hash = None
    if entry["registration_hash"] != content_hash:
        findings.append(Finding(f"hypothesis {entry_id}", "registered_content", "does not hash to the registration hash"))
    _check_links(findings, links, entry_id)
    payloads = [json.loads(link["payload"] or "{}") for link in links]

    # the entry and its arms against the newest state the chain recorded
    states = [p["state"] for link, p in zip(links, payloads) if link["kind"] in ("registration", "amendment") and "state" in p]
    if states:
        recorded, live = states[-1], entry_state(conn, entry_id)
        _compare(findings, f"hypothesis {entry_id}", recorded["hypothesis"] or {}, live["hypothesis"] or {})
        for arm_id in sorted(set(recorded["arms"]) | set(live["arms"]), key=int):
            if arm_id not in live["arms"]:
                findings.append(Finding(f"arm {arm_id}", "row", "recorded arm is missing"))
            elif arm_id not in recorded["arms"]:
                findings.append(Finding(f"arm {arm_id}", "row", f"arm {live['arms'][arm_id].get('name')!r} is not in the record"))
            else:
                _compare(findings, f"arm {arm_id}", recorded["arms"][arm_id], live["arms"][arm_id])

    # amendments: one link each, unchanged
    amendment_links = {link["ref_id"]: p for link, p in zip(links, payloads) if link["kind"] == "amendment"}
    amendments = {a["id"]: a for a in _rows(conn, "SELECT * FROM amendment WHERE hypothesis_id = ?", (entry_id,))}
    for amendment_id in sorted(set(amendment_links) | set(amendments)):
        where = f"amendment {amendment_id}"
        if amendment_id not in amendments:
            findings.append(Finding(where, "row", "recorded amendment is missing"))
        elif amendment_id not in amendment_links:
            findings.append(Finding(where, "row", "amendment is not in the chain"))
        else:
            _compare(findings, where, amendment_links[amendment_id]["amendment"], _record("amendment", amendments[amendment_id]))

    # finished attempts: one link each, unchanged, metric points included
    attempt_links: dict[int, list[dict[str, Any]]] = {}
    for link, payload in zip(links, payloads):
        if link["kind"] == "attempt":
            attempt_links.setdefault(link["ref_id"], []).append(payload)
    runs = {r["id"]: r for r in _rows(
        conn, "SELECT run.* FROM run JOIN arm ON arm.id = run.arm_id WHERE arm.hypothesis_id = ?", (entry_id,))}
    finished = {run_id for run_id, run in runs.items() if run["status"] in FINISHED}
    arm_keys = {row["id"]: {"name": row["name"], "config_hash": row["config_hash"]}
                for row in _rows(conn, "SELECT id, name, config_hash FROM arm WHERE hypothesis_id = ?", (entry_id,))}
    digests = _entry_digests(conn, entry_id, sorted(set(attempt_links) & set(runs)), cached=cached)
    for run_id in sorted(set(attempt_links) | finished):
        where = f"run {run_id}"
        recorded_list = attempt_links.get(run_id, [])
        if len(recorded_list) > 1:
            findings.append(Finding(where, "row", f"linked {len(recorded_list)} times"))
        if run_id not in runs:
            findings.append(Finding(where, "row", "recorded run attempt is missing"))
            continue
        if not recorded_list:
            findings.append(Finding(where, "row", f"a {runs[run_id]['status']} run that is not in the chain"))
            continue
        recorded = recorded_list[0]
        live_arm = arm_keys.get(runs[run_id]["arm_id"])
        _compare(findings, where, recorded["run"] or {}, _record("run", runs[run_id]))
        if recorded.get("arm") != live_arm:
            findings.append(Finding(where, "arm", "changed", recorded.get("arm"), live_arm))
        if recorded.get("points") != digests[run_id]:
            findings.append(Finding(where, "metric_point", "metric points changed", recorded.get("points"), digests[run_id]))
    return result


def verify_entries(conn: Connection, entry_ids: list[int] | None = None) -> list[Verification]:
    """Verify the given entries (all, when None), in id order."""
    if entry_ids is not None:
        return [verify_entry(conn, entry_id) for entry_id in entry_ids]
    results = [verify_entry(conn, row[0]) for row in conn.exec_driver_sql("SELECT id FROM hypothesis ORDER BY id").all()]
    # chains whose entry is gone: an entry deleted (or renumbered) behind the triggers' back
    for (entry_id,) in conn.exec_driver_sql(
            "SELECT DISTINCT hypothesis_id FROM chain_link WHERE hypothesis_id NOT IN (SELECT id FROM hypothesis)"
            " ORDER BY hypothesis_id").all():
        gone = Verification(entry_id, f"#{entry_id}", True, None, 0)
        gone.findings.append(Finding(f"hypothesis {entry_id}", "row", "a chained entry is missing"))
        results.append(gone)
    return results


def seal_existing(conn: Connection) -> int:
    """Chain every registered entry that has no chain yet, as its rows stand now (used once, when
    a logbook from before the chain is upgraded). Returns how many entries were sealed."""
    sealed = 0
    unchained = conn.exec_driver_sql(
        "SELECT id FROM hypothesis WHERE registered_at IS NOT NULL"
        " AND id NOT IN (SELECT hypothesis_id FROM chain_link) ORDER BY id").all()
    for (entry_id,) in unchained:
        link_registration(conn, entry_id)
        for (amendment_id,) in conn.exec_driver_sql(
                "SELECT id FROM amendment WHERE hypothesis_id = ? ORDER BY id", (entry_id,)).all():
            link_amendment(conn, entry_id, amendment_id)
        run_ids = [r[0] for r in conn.exec_driver_sql(
            "SELECT run.id FROM run JOIN arm ON arm.id = run.arm_id WHERE arm.hypothesis_id = ? ORDER BY run.id",
            (entry_id,)).all()]
        link_finished_runs(conn, run_ids)
        sealed += 1
    return sealed


# ---- the store-level API the verbs and the app use ------------------------------------------


def verify_store(store: Store, refs: list[str] | None = None) -> list[Verification]:
    """Verify the entries named by ``refs`` (all entries when None or empty)."""
    with store.session() as session:
        ids = [resolve_entry(session, ref).id for ref in refs] if refs else None
    with store.engine.connect() as conn:
        return verify_entries(conn, ids)


def entry_integrity(store: Store, entry_id: int, *, cached: bool = False) -> Verification:
    with store.engine.connect() as conn:
        return verify_entry(conn, entry_id, cached=cached)


_ONE_CHECK: ContextVar[dict | None] = ContextVar("one_chain_check", default=None)


@contextmanager
def one_check_per_entry() -> Iterator[None]:
    """Within this block, ``integrity_fields`` checks each entry's chain once: a view that
    shows an entry's detail and its verdict (each of which reports the integrity) verifies it
    once per refresh, not once per part. Outside, every call checks."""
    token = _ONE_CHECK.set({})
    try:
        yield
    finally:
        _ONE_CHECK.reset(token)


def integrity_fields(store: Store, entry_id: int) -> dict[str, Any]:
    """``integrity`` (verified, TAMPERED or draft), the chain head and what differs, for views."""
    memo = _ONE_CHECK.get()
    key = (str(store.path), int(entry_id))
    if memo is not None and key in memo:
        return dict(memo[key])
    checked = entry_integrity(store, entry_id, cached=True)
    fields = {"integrity": checked.integrity, "chain_head": checked.head,
              "integrity_findings": [f.to_dict() for f in checked.findings]}
    if memo is not None:
        memo[key] = fields
    return dict(fields)


def require_intact(store: Store, ref: str) -> None:
    """Refuse to run anything for an entry whose record does not verify (TamperedError, exit 3)."""
    with store.session() as session:
        entry_id = resolve_entry(session, ref).id
    result = entry_integrity(store, entry_id)
    if result.integrity == "TAMPERED":
        first = result.findings[0].line()
        more = f" (and {len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
        raise TamperedError(f"{result.slug}: TAMPERED: {first}{more}; nothing was queued (see `logbook verify {result.slug}`)")
