"""A reviewer's check of an exported writeup against the logbook it came from.

Every export carries the chain head of each entry it covers (the hash of the newest link of the
entry's hash chain). The check finds those heads in the file, and for each: that it is a link of
this logbook, that the entry still verifies, and that nothing was added since (a newer link
means the writeup no longer shows everything). When all heads are current it exports the same
entries in the same format again and compares the text, so an edited number in the writeup is
found too.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from logbook.db.engine import Store
from logbook.entries.chain import entry_integrity
from logbook.errors import InputError

HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
FORMATS = {".md": "md", ".tex": "tex", ".json": "json", ".csv": "csv"}


def _first_difference(exported: str, fresh: str) -> str:
    for number, (a, b) in enumerate(zip(exported.splitlines(), fresh.splitlines()), start=1):
        if a != b:
            return f"line {number}: the file says {a.strip()[:80]!r}, the logbook gives {b.strip()[:80]!r}"
    return f"the file has {len(exported.splitlines())} lines, a fresh export {len(fresh.splitlines())}"


def check_export(store: Store, path: Path) -> dict[str, Any]:
    """``result`` is ``matches`` or says what does not; ``entries`` has one item per chain head found."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: --export: expected an exported .md, .tex, .json or .csv file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: --export: expected a readable exported writeup ({exc})") from exc
    candidates = sorted(set(HEX64.findall(text)))
    with store.engine.connect() as conn:
        links = {}
        for digest in candidates:
            row = conn.exec_driver_sql("SELECT hypothesis_id, seq FROM chain_link WHERE hash = ?", (digest,)).first()
            if row is not None:
                links[digest] = (row[0], row[1])
    if not links:
        return {"file": str(path), "result": "no chain head of this logbook in the file", "entries": []}
    items, problems, ids = [], [], []
    for digest, (entry_id, seq) in sorted(links.items(), key=lambda kv: kv[1]):
        checked = entry_integrity(store, entry_id)
        ids.append(entry_id)
        if checked.integrity == "TAMPERED":
            result, detail = "logbook entry TAMPERED", checked.findings[0].line()
        elif checked.head != digest:
            later = checked.links - 1 - seq
            result, detail = "superseded", f"the logbook has {later} newer link{'s' if later != 1 else ''} (runs or amendments) since"
        else:
            result, detail = "current", ""
        if result != "current":
            problems.append(f"{checked.slug}: {result}")
        items.append({"entry": checked.slug, "id": entry_id, "chain_head": digest, "result": result, "detail": detail})
    if problems:
        return {"file": str(path), "result": "does not match: " + "; ".join(problems), "entries": items}
    fresh = _fresh_export(store, ids, fmt, all_entries=path.stem == "logbook" or len(ids) > 1)
    if fresh != text:
        return {"file": str(path), "result": "does not match: " + _first_difference(text, fresh), "entries": items}
    return {"file": str(path), "result": "matches", "entries": items}


def _fresh_export(store: Store, ids: list[int], fmt: str, *, all_entries: bool) -> str:
    from logbook.export.writer import export

    with tempfile.TemporaryDirectory() as folder:
        written = export(store, [str(i) for i in ids], all_entries=all_entries, verdicts=None, fmt=fmt, out=Path(folder))
        main = next(p for p in written if p.suffix == f".{fmt}" and not p.name.endswith(".verdict.json"))
        return main.read_text(encoding="utf-8")
