"""Writing exports to a folder: entries or the whole logbook, as md, tex, json or csv.

Figures go to ``OUT/figures/`` (per entry: the per-seed distribution, the effects against 0 and δ,
the learning curves; PNG, SVG and PDF) and are referenced relatively, so the folder can be moved.
``--all --format tex`` writes ``appendix.tex`` (a body to ``\\input``) and ``logbook.tex`` around it.
JSON and CSV hold one row per seed (entry, arm, role, seed, origin, status, attempt, commit,
device, wall time, every final metric, and the verdict of that arm's comparison), so that
``pandas.read_json(path)`` or ``pandas.read_csv(path)`` loads them in one call; the full verdicts
go beside them in ``*.verdict.json``. Whole-logbook exports leave withdrawn entries out of the
results and list them (date, reason, chain head): a "Withdrawn" section in Markdown and LaTeX,
``logbook.withdrawn.json`` beside a JSON or CSV table.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from logbook.db.engine import Store
from logbook.export import latex, markdown
from logbook.export.content import has_results, split_withdrawn
from logbook.export.gather import entry_ids, gather
from logbook.export.jsonsafe import json_safe

FORMATS = ("md", "tex", "json", "csv")


FIGURE_KINDS = ("distribution", "effects", "curves")


def _figures(report: dict[str, Any], out: Path) -> dict[str, dict[str, str]]:
    """Draw an entry's figures into OUT/figures/; returns {kind: {suffix: path inside OUT}}."""
    from logbook.export import figures  # matplotlib only when figures are wanted

    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    slug = report["entry"]["slug"]
    made: dict[str, dict[str, str]] = {}
    for kind in FIGURE_KINDS:
        paths = getattr(figures, kind)(report, folder / f"{slug}-{kind}")
        if paths:
            made[kind] = {path.suffix[1:]: path.relative_to(out).as_posix() for path in paths}
    from logbook.export.studies import variance_figure

    paths = variance_figure(report.get("studies"), folder / f"{slug}-variance")
    if paths:
        made["variance"] = {path.suffix[1:]: path.relative_to(out).as_posix() for path in paths}
    return made


def _pick(made: dict[str, dict[str, str]], suffix: str) -> dict[str, str]:
    """{kind: path} of one file type (PNG for Markdown, PDF for LaTeX)."""
    return {kind: paths[suffix] for kind, paths in made.items() if suffix in paths}


def _rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [row for report in reports for row in report["rows"]]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return [{c: json_safe(row.get(c)) for c in columns} for row in rows]


def export(store: Store, refs: list[str], *, all_entries: bool, verdicts: list[str] | None, fmt: str, out: Path) -> list[Path]:
    """Write the export; returns the files written (figures included)."""
    ids = entry_ids(store, refs, all_entries, verdicts)
    reports = [gather(store, entry_id) for entry_id in ids]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    name = "logbook" if all_entries else None
    if fmt in ("json", "csv"):
        # The whole logbook's table holds results only: withdrawn entries go to a list beside it.
        counted, withdrawn = split_withdrawn(reports) if name else (reports, [])
        targets = [(name, counted)] if name else [(r["entry"]["slug"], [r]) for r in reports]
        for stem, group in targets:
            rows = _rows(group)
            path = out / f"{stem}.{fmt}"
            if fmt == "json":
                path.write_text(json.dumps(rows, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
            else:
                with open(path, "w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["entry"])
                    writer.writeheader()
                    writer.writerows(rows)
            verdict_path = out / f"{stem}.verdict.json"
            verdict_path.write_text(json.dumps(json_safe([r["verdict"] for r in group]), indent=1, ensure_ascii=False,
                                               allow_nan=False) + "\n", encoding="utf-8")
            written += [path, verdict_path]
            studied = [{"entry": r["entry"]["slug"], "id": r["entry"]["id"], **r["studies"]}
                       for r in group if any((r.get("studies") or {}).values())]
            if studied:  # variance studies and robustness follow-ups: tables, not rows per seed
                studies_path = out / f"{stem}.studies.json"
                studies_path.write_text(json.dumps(json_safe(studied), indent=1, ensure_ascii=False, allow_nan=False)
                                        + "\n", encoding="utf-8")
                written.append(studies_path)
        if withdrawn:
            listed = out / f"{name}.withdrawn.json"
            listed.write_text(json.dumps(json_safe([
                {"entry": r["entry"]["slug"], "id": r["entry"]["id"], "title": r["entry"]["title"],
                 "withdrawn_at": r["entry"]["withdrawn"]["at"], "reason": r["entry"]["withdrawn"]["reason"],
                 "chain_head": r["entry"].get("chain_head")} for r in withdrawn]), indent=1, ensure_ascii=False) + "\n",
                encoding="utf-8")
            written.append(listed)
        return written
    drawn = {r["entry"]["id"] for r in (split_withdrawn(reports)[0] if name else reports)}  # none for withdrawn ones
    made = {r["entry"]["id"]: _figures(r, out) if has_results(r) and r["entry"]["id"] in drawn else {}
            for r in reports}  # no empty figures
    for figs in made.values():
        written += [out / p for paths in figs.values() for p in paths.values()]
    if name:
        if fmt == "md":
            path = out / f"{name}.md"
            path.write_text(markdown.logbook_document(reports, {k: _pick(v, "png") for k, v in made.items()}),
                            encoding="utf-8")
            return [path, *written]
        body = out / "appendix.tex"  # to \input into a paper
        body.write_text(latex.appendix(reports, {k: _pick(v, "pdf") for k, v in made.items()}), encoding="utf-8")
        path = out / f"{name}.tex"  # a standalone document around it
        path.write_text(latex.logbook_document(body.stem), encoding="utf-8")
        return [path, body, *written]
    for r in reports:
        figs = made[r["entry"]["id"]]
        if fmt == "md":
            text = markdown.entry_document(r, _pick(figs, "png"))
        else:
            text = latex.entry_section(r, _pick(figs, "pdf"))
        path = out / f"{r['entry']['slug']}.{fmt}"
        path.write_text(text, encoding="utf-8")
        written.insert(0, path)
    return written
