r"""LaTeX writeups that drop into a paper.

An entry is a ``\section`` (or ``\subsection`` inside the appendix) to ``\input`` from anywhere:
each file finds its figures through ``\logbookexportdir``, which it sets to its own folder as
``\input`` saw it (LaTeX's ``\CurrentFilePath``, 2020-10 or newer), so ``\input{tex/entry}``
from the paper's root works without copying figures. Tables fit a one-column ``article``
(``tabularx``); every section, table and figure has a stable label built from the entry's slug
(``lb:<slug>``, ``lb:<slug>:arms``, ``lb:<slug>:comparisons``, ``lb:<slug>:fig:distribution``,
``lb:<slug>:fig:effects``, ``lb:<slug>:fig:curves``, ``lb:<slug>:provenance``; the appendix is
``lb:appendix``). The whole logbook is ``appendix.tex`` (a body, no preamble) and ``logbook.tex``
(a standalone document that inputs it). Needs booktabs, graphicx and tabularx; every piece of
user text is escaped.
"""

from __future__ import annotations

from typing import Any

from logbook.export.content import (
    FIGURE_CAPTIONS, group_by_first_tag, not_run_note, num, other_tags, reproduce_commands, split_by_results,
    split_withdrawn, withdrawn_note,
)
from logbook.export.escape import tex, tex_code
from logbook.export.markdown import _direction, arm_rows, seeds_used, shown_plain

PACKAGES = "\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\usepackage{tabularx}\n"
PREAMBLE = "\\documentclass{article}\n" + PACKAGES

# Sets \logbookexportdir to the folder this file was \input from (empty: the main file's folder).
LOCATE = r"""% Exported by negative-results-logbook. Needs booktabs, graphicx and tabularx.
% Figures are found relative to this file: \input it from anywhere (LaTeX 2020-10 or newer).
\providecommand{\CurrentFilePath}{}
\edef\logbookexportdir{\ifx\CurrentFilePath\empty .\else\CurrentFilePath\fi}
"""



# Tables fit a one-column article: small type and narrower column gaps, the name column wraps.
TABLE_START = ["\\begin{table}[ht]", "\\centering", "\\footnotesize", "\\setlength{\\tabcolsep}{4pt}"]


def _n(x: Any, digits: int = 4) -> str:
    return tex(num(x, digits))


def label(slug: str, *parts: str) -> str:
    """A stable label for a piece of an entry's writeup: ``lb:<slug>[:part...]``."""
    return ":".join(["lb", slug, *parts])


def entry_section(report: dict[str, Any], figures: dict[str, str], command: str = "section") -> str:
    """One entry as a section: verdict first, the card, per-arm and comparison tables, figures,
    amendments and provenance. ``figures`` maps a figure kind to its path inside the export folder."""
    e, v, env = report["entry"], report["verdict"], report["environment"]
    slug = e["slug"]
    sub = "sub" + command
    out = [LOCATE, f"\\{command}{{{tex(e['title'])}}}\\label{{{label(slug)}}}", ""]
    out.append(f"\\textbf{{Verdict: {v['verdict']}.}}")
    if e.get("withdrawn"):
        at, reason = withdrawn_note(report)
        out.append(f"\\textbf{{Withdrawn}} at {tex(at)}: {tex(reason)}. \\emph{{This entry does not count as a result.}}")
    if e.get("retrospective"):
        out.append(f"\\emph{{Retrospective: {tex(e['retrospective_note'])}.}}")
    for c in v["comparisons"]:
        out.append(f"{tex(c['candidate_name'])} vs {tex(c['baseline_name'])}: \\emph{{{c['verdict']}}} "
                   f"({tex(c['detail'])}). {tex(c['sentence'])}")
    if v.get("exploratory"):
        out.append(f"\\emph{{Exploratory:}} {tex(v['exploratory_reason'])}.")
    if v.get("post_hoc"):
        late = v["post_hoc"]
        out.append(f"\\emph{{Exploratory reading, {tex(late['label'])} (not the entry's verdict):}} {late['reading']['verdict']}. "
                   + " ".join(f"{tex(c['candidate_name'])}: {tex(c['sentence'])}" for c in late["reading"]["comparisons"]))
    out.append("")
    delta = v["comparisons"][0]["delta"] if v["comparisons"] else e["min_effect"]
    source = "registered as auto, from the data: exploratory" if v.get("registered_delta", e["min_effect"]) is None else "registered"
    git = e["git"]
    if git["in_repo"]:
        where = f"commit {tex_code((git['commit'] or 'none')[:12])} ({tex(git.get('tree') or '')})"
    else:
        where = "outside any git repository"
    out += [
        "\\begin{itemize}",
        f"\\item Hypothesis: {tex(e['hypothesis'])}",
        f"\\item Metric: {tex(e['metric'])} ({_direction(e['goal'])}); smallest effect worth claiming "
        f"$\\delta = {num(delta).replace('−', '-')}$ ({source}); $\\alpha = {num(e['alpha'])}$, family of {v['family_size']}.",
        f"\\item Interval: {'anytime-valid confidence sequence' if v['interval'] == 'anytime' else 'Welch'} ({tex(v['interval_reason'])}).",
        f"\\item Registered {tex(e['registered_at'] or 'never (draft)')} at {where}; registration hash "
        f"{tex_code((e['registration_hash'] or '-')[:16])}\\ldots",
        f"\\item Chain head {tex_code((e.get('chain_head') or '-')[:16])}\\ldots{{}} ({tex(e.get('integrity', 'unchecked'))}).",
        f"% chain head {e.get('chain_head') or '-'} (whole, for logbook verify --export)",
        "\\end{itemize}",
        "",
    ]
    out += _arms_table(report) + _comparisons_table(report)
    from logbook.export.studies import latex_lines

    out += latex_lines(report.get("studies"), sub)
    for kind, path in figures.items():
        out += ["\\begin{figure}[ht]", "\\centering",
                f"\\includegraphics[width=0.85\\linewidth]{{\\logbookexportdir/{path}}}",
                f"\\caption{{{tex(FIGURE_CAPTIONS.get(kind, kind))}: {tex(e['title'])}.}}",
                f"\\label{{{label(slug, 'fig', kind)}}}", "\\end{figure}", ""]
    if e["amendments"]:
        out += [f"\\{sub}*{{Amendments}}", "\\begin{itemize}"]
        out += [f"\\item {tex(a['at'])}: {tex(a['field'])} from {tex(shown_plain(a['old']))} to {tex(shown_plain(a['new']))}. "
                f"Reason: {tex(a['reason'])}"
                for a in e["amendments"]]
        out += ["\\end{itemize}", ""]
    seeds = "; ".join(f"{origin}: {', '.join(str(s) for s in values)}" for origin, values in seeds_used(report).items())
    environment = ", ".join(f"{k} {tex(v_)}" for k, v_ in env.items() if v_ not in (None, [], ""))
    commands = "; ".join(tex_code(c) for c in reproduce_commands(report))
    # ragged right: seed lists, hashes and commands break at their own points, never past the margin
    out += [f"{{\\raggedright\\paragraph{{Provenance.}}\\label{{{label(slug, 'provenance')}}} Seeds ({tex(seeds) or 'none run yet'}). "
            f"Environment: {environment or 'not recorded'}. To reproduce: {commands}.\\par}}", ""]
    return "\n".join(out)


def _arms_table(report: dict[str, Any]) -> list[str]:
    e = report["entry"]
    out = [*TABLE_START, "\\begin{tabularx}{\\linewidth}{@{}>{\\raggedright\\arraybackslash}Xrrrrr@{}}", "\\toprule",
           "Arm & $n$ (excl.) & Mean $\\pm$ sd & Median & IQM & Range \\\\", "\\midrule"]
    for r in arm_rows(report):
        role = " (baseline)" if r["role"] == "baseline" else ""
        out.append(f"{tex(r['arm'])}{role} & {r['n']} ({r['excluded']}) & {_n(r['mean'])} $\\pm$ {_n(r['sd'], 3)} & "
                   f"{_n(r['median'])} & {_n(r['iqm'])} & [{_n(r['min'], 3)}, {_n(r['max'], 3)}] \\\\")
    out += ["\\bottomrule", "\\end{tabularx}",
            f"\\caption{{{tex(e['metric'])} per arm for ``{tex(e['title'])}'' (metric units; excluded: failed or diverged seeds).}}",
            f"\\label{{{label(e['slug'], 'arms')}}}", "\\end{table}", ""]
    return out


def _comparisons_table(report: dict[str, Any]) -> list[str]:
    e, v = report["entry"], report["verdict"]
    if not v["comparisons"]:
        return []
    level = f"{v['comparisons'][0]['level']:.0%}".replace("%", "\\%")  # one level for the whole family
    out = [*TABLE_START, "\\begin{tabularx}{\\linewidth}{@{}>{\\raggedright\\arraybackslash}Xlrlrr@{}}", "\\toprule",
           f"Candidate & Verdict & Effect & {level} interval & $P(C>B)$ & $p$ (Holm) \\\\", "\\midrule"]
    for c in v["comparisons"]:
        out.append(f"{tex(c['candidate_name'])} & {c['verdict']} & {_n(c['effect'], 3)} & "
                   f"[{_n(c['ci_low'], 3)}, {_n(c['ci_high'], 3)}] & {_n(c['prob_improvement'], 3)} & "
                   f"{_n(c['p_value_holm'], 3)} \\\\")
    out += ["\\bottomrule", "\\end{tabularx}",
            f"\\caption{{Comparisons for ``{tex(e['title'])}'': effect in the better direction (metric units) with "
            f"its interval, the probability that a candidate seed beats a baseline seed, and the one-sided "
            f"$p$-value, Holm-adjusted across the family.}}",
            f"\\label{{{label(e['slug'], 'comparisons')}}}", "\\end{table}", ""]
    return out


def appendix(reports: list[dict[str, Any]], figures: dict[int, dict[str, str]]) -> str:
    """The whole logbook as a body to ``\\input`` (no preamble): a summary table, the negative and
    inconclusive results grouped once each by first tag, the entries not yet run, then every entry
    with results as a subsection."""
    reports, withdrawn = split_withdrawn(reports)
    done, not_run = split_by_results(reports)
    out = [LOCATE, "\\section{Negative-results logbook}\\label{lb:appendix}", ""]
    if done:
        out += [*TABLE_START,
                "\\begin{tabularx}{\\linewidth}{@{}r>{\\raggedright\\arraybackslash}Xllr@{}}", "\\toprule",
                "\\# & Entry & Metric & Verdict & Effect [interval] \\\\", "\\midrule"]
        for r in done:
            head = r["verdict"]["comparisons"][0] if len(r["verdict"]["comparisons"]) == 1 else None
            effect = f"{_n(head['effect'], 3)} [{_n(head['ci_low'], 3)}, {_n(head['ci_high'], 3)}]" if head else "see entry"
            out.append(f"{r['entry']['id']} & {tex(r['entry']['title'])} (\\ref{{{label(r['entry']['slug'])}}}) & "
                       f"{tex(r['entry']['metric'])} & {r['verdict']['verdict']} & {effect} \\\\")
        out += ["\\bottomrule", "\\end{tabularx}", "\\caption{Every entry with results, by id.}",
                "\\label{lb:appendix:summary}", "\\end{table}", ""]
    out += ["\\subsection*{Negative and inconclusive results}", ""]
    groups = group_by_first_tag([r for r in done if r["verdict"]["verdict"] in ("negative", "inconclusive")])
    if not groups:
        out += ["None yet.", ""]
    for tag, members in groups.items():
        out += [f"\\paragraph{{{tex(tag)}}}", "\\begin{itemize}"]
        for r in members:
            also = other_tags(r)
            tags = f" (also: {tex(', '.join(also))})" if also else ""
            out.append(f"\\item \\textbf{{{tex(r['entry']['title'])}}} ({r['verdict']['verdict']}, "
                       f"Section~\\ref{{{label(r['entry']['slug'])}}}){tags}: "
                       + " ".join(tex(c["sentence"]) for c in r["verdict"]["comparisons"]))
        out += ["\\end{itemize}", ""]
    if not_run:
        out += ["\\subsection*{Registered, not yet run}",
                "Entries with no finished seed: no verdict, but a record of what was planned.", "\\begin{itemize}"]
        out += [f"\\item \\textbf{{{tex(r['entry']['title'])}}}: {tex(r['entry']['hypothesis'])} "
                f"({tex(not_run_note(r))})" for r in not_run]
        out += ["\\end{itemize}", ""]
    if withdrawn:
        out += ["\\subsection*{Withdrawn}",
                "Entries withdrawn after registration, with the date and the reason; they are not results, and "
                "their record is kept.", "\\begin{itemize}"]
        for r in withdrawn:
            at, reason = withdrawn_note(r)
            out.append(f"\\item \\textbf{{{tex(r['entry']['title'])}}} ({tex_code(r['entry']['slug'])}), withdrawn at "
                       f"{tex(at)}: {tex(reason)} (chain head {tex_code(r['entry'].get('chain_head') or '-')})")
        out += ["\\end{itemize}", ""]
    for r in done:
        out.append(entry_section(r, figures.get(r["entry"]["id"], {}), command="subsection"))
    return "\n".join(out) + "\n"


def logbook_document(body_name: str = "appendix") -> str:
    """A standalone document around the appendix body (which it ``\\input``s)."""
    return PREAMBLE + "\\begin{document}\n\\input{" + body_name + "}\n\\end{document}\n"


def standalone(section: str) -> str:
    """A compilable document around one entry's section."""
    return PREAMBLE + "\\begin{document}\n" + section + "\n\\end{document}\n"
