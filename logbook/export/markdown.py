"""Markdown writeups: one entry as a section, or the whole logbook as one document."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from logbook.export.content import (
    FIGURE_ALT, FIGURE_CAPTIONS, group_by_first_tag, not_run_note, num, other_tags, reproduce_commands, split_by_results,
    split_withdrawn, withdrawn_note,
)
from logbook.export.escape import md



def shown_plain(value: Any) -> str:
    """An amended value for prose: text as is, anything else as JSON, nothing as (empty)."""
    if value in ("", None, [], {}):
        return "(empty)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def shown(value: Any) -> str:
    return md(shown_plain(value))


def _direction(goal: str) -> str:
    return "lower is better" if goal == "minimize" else "higher is better"


def arm_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-arm summary numbers (metric units) from the comparisons, the baseline once."""
    verdict = report["verdict"]
    out = []
    for arm in report["entry"]["arms"]:
        name = arm["name"]
        summary = None
        for c in verdict["comparisons"]:
            if c["candidate_name"] == name:
                summary, excluded = c["candidate"], c["excluded_candidate"]
            elif c["baseline_name"] == name and summary is None:
                summary, excluded = c["baseline"], c["excluded_baseline"]
        if summary is None:
            continue
        out.append({"arm": name, "role": arm["role"], "n": summary["n"], "excluded": excluded, "mean": summary["mean"],
                    "sd": summary["sd"], "median": summary["median"], "iqm": summary["iqm"], "min": summary["min"],
                    "max": summary["max"], "wall": verdict["arms"][name]["mean_wall_time_s"]})
    return out


def seeds_used(report: dict[str, Any]) -> dict[str, list[int]]:
    seeds: dict[str, list[int]] = defaultdict(list)
    for row in report["rows"]:
        seeds[row["origin"]].append(row["seed"])
    return {origin: sorted(set(values)) for origin, values in seeds.items()}


def entry_section(report: dict[str, Any], figures: dict[str, str], level: int = 2) -> str:
    e, v, env = report["entry"], report["verdict"], report["environment"]
    h = "#" * level
    lines = [f"{h} {md(e['title'])}", ""]
    lines += [f"**Verdict: {v['verdict'].upper()}**", ""]
    if e.get("withdrawn"):
        at, reason = withdrawn_note(report)
        lines += [f"**WITHDRAWN** at {at}: {md(reason)}. *This entry does not count as a result.*", ""]
    if e.get("retrospective"):
        source = e["import_source"] or {}
        lines += [f"*Retrospective: imported from {md(source.get('kind') or '')} {md(source.get('experiment') or source.get('location') or '')}; "
                  f"{md(e['retrospective_note'])}.*", ""]
    for c in v["comparisons"]:
        lines.append(f"- {md(c['candidate_name'])} vs {md(c['baseline_name'])}: **{c['verdict']}** ({md(c['detail'])}). {md(c['sentence'])}")
    if v.get("exploratory"):
        lines += ["", f"*Exploratory:* {md(v['exploratory_reason'])}."]
    if v.get("post_hoc"):
        late = v["post_hoc"]
        lines += ["", f"*Exploratory reading, {md(late['label'])} (not the entry's verdict):* **{late['reading']['verdict']}**"]
        for c in late["reading"]["comparisons"]:
            lines.append(f"- {md(c['candidate_name'])}: {c['verdict']} ({md(c['detail'])}). {md(c['sentence'])}")
    lines.append("")
    delta = v["comparisons"][0]["delta"] if v["comparisons"] else e["min_effect"]
    source = "registered as auto, from the data: exploratory" if v.get("registered_delta", e["min_effect"]) is None else "registered"
    family = v["family_size"]
    alpha_adj = v["comparisons"][0]["alpha_adjusted"] if v["comparisons"] else e["alpha"]
    git = e["git"]
    if git["in_repo"]:
        where = f"commit `{git['commit'] or 'none'}`" + (f" on `{md(git['branch'])}`" if git["branch"] else "")
        where += f", {md(git.get('tree') or '')}"
    else:
        where = "outside any git repository"
    lines += [
        "| | |",
        "|---|---|",
        f"| Hypothesis | {md(e['hypothesis'])} |",
        f"| Metric | {md(e['metric'])} ({_direction(e['goal'])}) |",
        f"| Smallest effect worth claiming (δ) | {num(delta)} ({source}) |",
        f"| α | {num(e['alpha'])}; family of {family} candidate{'s' if family != 1 else ''}, α′ = {num(alpha_adj)} |",
        f"| Seeds per arm | {e['seeds']} registered |",
        f"| Interval | {'anytime-valid confidence sequence' if v['interval'] == 'anytime' else 'Welch'} ({md(v['interval_reason'])}) |",
        f"| Registered | {e['registered_at'] or 'not registered (draft)'}, {where} |",
        f"| Registration hash | `{e['registration_hash'] or '–'}` |",
        f"| Chain head | `{e.get('chain_head') or '–'}` ({e.get('integrity', 'unchecked')}; check with `logbook verify --export`) |",
        f"| Trainer | {md(e['trainer'].get('name') or e['trainer'].get('command'))} |",
    ]
    if e["tags"]:
        lines.append(f"| Tags | {', '.join(md(t) for t in e['tags'])} |")
    lines += ["", f"{h}# Results per arm", "",
              "| arm | role | n | excluded | mean ± sd | median | IQM | min | max | wall time per run (s) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in arm_rows(report):
        lines.append(f"| {md(r['arm'])} | {r['role']} | {r['n']} | {r['excluded']} | {num(r['mean'])} ± {num(r['sd'])} | "
                     f"{num(r['median'])} | {num(r['iqm'])} | {num(r['min'])} | {num(r['max'])} | {num(r['wall'], 3)} |")
    lines += ["", f"{h}# Comparisons", "",
              "| candidate | verdict | effect (better direction) | interval | P(C > B) | p (Holm) | bootstrap interval | seeds needed |",
              "|---|---|---:|---|---:|---:|---|---:|"]
    for c in v["comparisons"]:
        lines.append(
            f"| {md(c['candidate_name'])} | {c['verdict']} | {num(c['effect'])} | {c['level']:.0%} [{num(c['ci_low'])}, {num(c['ci_high'])}] | "
            f"{num(c['prob_improvement'], 3)} | {num(c['p_value_holm'], 3)} | [{num(c['bootstrap_low'])}, {num(c['bootstrap_high'])}] | "
            f"{num(c['seeds_needed']) if c['verdict'] == 'inconclusive' else '–'} |")
    from logbook.export.studies import markdown_lines

    lines += markdown_lines(report.get("studies"), h)
    if figures:
        lines += ["", f"{h}# Figures", ""]
        for kind, path in figures.items():
            lines += [f"![{FIGURE_ALT.get(kind, kind)}]({path})", "", f"*{md(FIGURE_CAPTIONS.get(kind, kind))}.*", ""]
        lines.pop()
    if e["amendments"]:
        lines += ["", f"{h}# Amendments", ""]
        for a in e["amendments"]:
            lines.append(f"- {a['at']}: {md(a['field'])} changed from {shown(a['old'])} to {shown(a['new'])}. "
                         f"Reason: {md(a['reason'])}")
    lines += ["", f"{h}# Provenance", ""]
    for origin, seeds in seeds_used(report).items():
        lines.append(f"- Seeds ({origin}, the same for every arm): {', '.join(str(s) for s in seeds)}")
    environment = ", ".join(f"{k} {md(v_)}" for k, v_ in env.items() if v_ not in (None, [], ""))
    lines.append(f"- Environment: {environment or 'not recorded'}")
    lines.append("- To reproduce: " + "; ".join(f"`{c}`" for c in reproduce_commands(report)))
    for audit in report["audits"]:
        lines.append(f"- Audit {audit['id']}: {audit['outcome'] or audit['status']} on {audit['seeds_per_arm']} fresh seeds per arm "
                     f"(commitment `{audit['commitment']}`)")
    lines.append("")
    return "\n".join(lines)


def entry_document(report: dict[str, Any], figures: dict[str, str]) -> str:
    return entry_section(report, figures, level=1)


def logbook_document(reports: list[dict[str, Any]], figures: dict[int, dict[str, str]]) -> str:
    """The whole logbook: a summary table, the negative and inconclusive results grouped once each
    by first tag, the entries registered but not yet run, the withdrawn entries (date and reason),
    then every entry with results."""
    reports, withdrawn = split_withdrawn(reports)
    done, not_run = split_by_results(reports)
    lines = ["# Negative-results logbook", "", "| # | entry | metric | verdict | effect | interval | seeds per arm |",
             "|---:|---|---|---|---:|---|---:|"]
    for r in done:
        e, v = r["entry"], r["verdict"]
        head = v["comparisons"][0] if len(v["comparisons"]) == 1 else None
        effect = num(head["effect"]) if head else "see entry"
        interval = f"[{num(head['ci_low'])}, {num(head['ci_high'])}]" if head else "–"
        lines.append(f"| {e['id']} | {md(e['title'])} | {md(e['metric'])} | {v['verdict']} | {effect} | {interval} | {e['seeds']} |")
    lines += ["", "## Negative and inconclusive results", ""]
    groups = group_by_first_tag([r for r in done if r["verdict"]["verdict"] in ("negative", "inconclusive")])
    if not groups:
        lines += ["None yet.", ""]
    for tag, members in groups.items():
        lines += [f"### {md(tag)}", ""]
        for r in members:
            sentences = " ".join(md(c["sentence"]) for c in r["verdict"]["comparisons"])
            also = other_tags(r)
            tags = f" (also: {', '.join(md(t) for t in also)})" if also else ""
            lines.append(f"- **{md(r['entry']['title'])}** ({r['verdict']['verdict']}){tags}: {sentences}")
        lines.append("")
    if not_run:
        lines += ["## Registered, not yet run", "",
                  "Entries with no finished seed: no verdict, but a record of what was planned.", ""]
        lines += [f"- **{md(r['entry']['title'])}**: {md(r['entry']['hypothesis'])} ({md(not_run_note(r))})" for r in not_run]
        lines.append("")
    if withdrawn:
        lines += ["## Withdrawn", "", "Entries withdrawn after registration, with the date and the reason; they are not "
                  "results, and their record is kept.", ""]
        for r in withdrawn:
            at, reason = withdrawn_note(r)
            lines.append(f"- **{md(r['entry']['title'])}** (`{md(r['entry']['slug'])}`), withdrawn at {at}: {md(reason)} "
                         f"(chain head `{r['entry'].get('chain_head') or '–'}`)")
        lines.append("")
    lines += ["## Entries", ""]
    for r in done:
        lines.append(entry_section(r, figures.get(r["entry"]["id"], {}), level=3))
    return "\n".join(lines)
