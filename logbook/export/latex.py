"""LaTeX writeups: an entry as a \\section to \\input into a paper, or the whole logbook as a
document. Needs the booktabs and graphicx packages; every piece of user text is escaped."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from logbook.export.escape import tex
from logbook.export.markdown import _direction, arm_rows, num, seeds_used, shown_plain

PREAMBLE = "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"


def _n(x: Any, digits: int = 4) -> str:
    return tex(num(x, digits))


def entry_section(report: dict[str, Any], figures: dict[str, str], command: str = "section") -> str:
    e, v, env = report["entry"], report["verdict"], report["environment"]
    sub = "sub" + command
    out = [f"\\{command}{{{tex(e['title'])}}}", ""]
    out.append(f"\\textbf{{Verdict: {v['verdict']}.}}")
    for c in v["comparisons"]:
        out.append(f"{tex(c['candidate_name'])} vs {tex(c['baseline_name'])}: \\emph{{{c['verdict']}}} "
                   f"({tex(c['detail'])}). {tex(c['sentence'])}")
    out.append("")
    delta = v["comparisons"][0]["delta"] if v["comparisons"] else e["min_effect"]
    source = "default rule: 0.95 pooled sd" if e["min_effect"] is None else "registered"
    git = e["git"]
    if git["in_repo"]:
        where = f"commit \\texttt{{{tex((git['commit'] or 'none')[:12])}}}" + (" (dirty tree)" if git["dirty"] else "")
    else:
        where = "outside any git repository"
    out += [
        "\\begin{itemize}",
        f"\\item Hypothesis: {tex(e['hypothesis'])}",
        f"\\item Metric: {tex(e['metric'])} ({_direction(e['goal'])}); smallest effect worth claiming "
        f"$\\delta = {num(delta).replace('−', '-')}$ ({source}); $\\alpha = {num(e['alpha'])}$, family of {v['family_size']}.",
        f"\\item Interval: {'anytime-valid confidence sequence' if v['interval'] == 'anytime' else 'Welch'} ({tex(v['interval_reason'])}).",
        f"\\item Registered {tex(e['registered_at'] or 'never (draft)')} at {where}; registration hash "
        f"\\texttt{{{tex((e['registration_hash'] or '-')[:16])}}}\\ldots",
        "\\end{itemize}",
        "",
        "\\begin{table}[ht]",
        "\\centering",
        "\\begin{tabular}{llrrrrrrr}",
        "\\toprule",
        "Arm & Role & $n$ & Excl. & Mean $\\pm$ sd & Median & IQM & Min & Max \\\\",
        "\\midrule",
    ]
    for r in arm_rows(report):
        out.append(f"{tex(r['arm'])} & {r['role']} & {r['n']} & {r['excluded']} & {_n(r['mean'])} $\\pm$ {_n(r['sd'])} & "
                   f"{_n(r['median'])} & {_n(r['iqm'])} & {_n(r['min'])} & {_n(r['max'])} \\\\")
    out += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{tex(e['metric'])} per arm for ``{tex(e['title'])}''.}}",
        "\\end{table}",
        "",
    ]
    from logbook.export.studies import latex_lines

    out += latex_lines(report.get("studies"), sub)
    for label, path in figures.items():
        out += ["\\begin{figure}[ht]", "\\centering", f"\\includegraphics[width=0.8\\linewidth]{{{path}}}",
                f"\\caption{{{tex(label)}: {tex(e['title'])}.}}", "\\end{figure}", ""]
    if e["amendments"]:
        out += [f"\\{sub}*{{Amendments}}", "\\begin{itemize}"]
        out += [f"\\item {tex(a['at'])}: {tex(a['field'])} from {tex(shown_plain(a['old']))} to {tex(shown_plain(a['new']))}. "
                f"Reason: {tex(a['reason'])}"
                for a in e["amendments"]]
        out += ["\\end{itemize}", ""]
    seeds = "; ".join(f"{origin}: {', '.join(str(s) for s in values)}" for origin, values in seeds_used(report).items())
    environment = ", ".join(f"{k} {tex(v_)}" for k, v_ in env.items() if v_ not in (None, [], ""))
    out += [f"\\paragraph{{Provenance.}} Seeds ({tex(seeds) or 'none run yet'}). Environment: {environment or 'not recorded'}.", ""]
    return "\n".join(out)


def logbook_document(reports: list[dict[str, Any]], figures: dict[int, dict[str, str]]) -> str:
    out = [PREAMBLE, "\\begin{document}", "\\section*{Negative-results logbook}", "",
           "\\begin{tabular}{rllll}", "\\toprule", "\\# & Entry & Metric & Verdict & Effect \\\\", "\\midrule"]
    for r in reports:
        head = r["verdict"]["comparisons"][0] if len(r["verdict"]["comparisons"]) == 1 else None
        effect = f"{_n(head['effect'])} [{_n(head['ci_low'])}, {_n(head['ci_high'])}]" if head else "see entry"
        out.append(f"{r['entry']['id']} & {tex(r['entry']['title'])} & {tex(r['entry']['metric'])} & {r['verdict']['verdict']} & {effect} \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "", "\\section*{Negative and inconclusive results}", ""]
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in reports:
        if r["verdict"]["verdict"] in ("negative", "inconclusive"):
            for tag in r["entry"]["tags"] or ["untagged"]:
                by_tag[tag].append(r)
    for tag in sorted(by_tag):
        out += [f"\\subsection*{{{tex(tag)}}}", "\\begin{itemize}"]
        out += [f"\\item \\textbf{{{tex(r['entry']['title'])}}} ({r['verdict']['verdict']}): "
                + " ".join(tex(c["sentence"]) for c in r["verdict"]["comparisons"]) for r in by_tag[tag]]
        out += ["\\end{itemize}", ""]
    for r in reports:
        out.append(entry_section(r, figures.get(r["entry"]["id"], {}), command="section"))
    out.append("\\end{document}")
    return "\n".join(out) + "\n"


def standalone(section: str) -> str:
    """A compilable document around one entry's section."""
    return PREAMBLE + "\\begin{document}\n" + section + "\n\\end{document}\n"
