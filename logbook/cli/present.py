"""How a verdict reads on a terminal: badge, sentence, and the numbers behind it.

One presenter for every verb that prints a verdict (`verdict`, `audit-claim`, `demo`).
"""

from __future__ import annotations

import math
from typing import Any

import click

from logbook.cli.common import say
from logbook.export.escape import terminal

BADGES = {"positive": "green", "negative": "blue", "inconclusive": "yellow"}


def fmt_num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.4g}"


def print_verdict(v: dict[str, Any]) -> None:
    """A verdict for people: badge, sentence, and the numbers behind it."""
    badge = click.style(f" {v['verdict'].upper()} ", fg="black", bg=BADGES.get(v["verdict"], "white"), bold=True)
    click.echo(badge + " " + terminal(f"{v['candidate_name']} vs {v['baseline_name']}: {v['detail']}"))
    say(f"  {v['sentence']}")
    interval = "anytime-valid" if v["interval"] == "anytime" else "Welch"
    say(
        f"  effect (better direction) {fmt_num(v['effect'])}, {interval} {v['level']:.0%} CI "
        f"[{fmt_num(v['ci_low'])}, {fmt_num(v['ci_high'])}]; δ = {fmt_num(v['delta'])} ({v['delta_source']}); "
        f"α = {v['alpha']:g}, α′ = {v['alpha_adjusted']:.3g} (family of {v['family_size']})"
    )
    # Beside an anytime interval a fixed-n p-value would tell the user when to stop: not shown.
    p_text = "" if v.get("p_value") is None else f"p (Δ > 0) = {fmt_num(v['p_value'])}, Holm {fmt_num(v['p_value_holm'])}; "
    say(
        f"  {p_text}P(C > B) = {fmt_num(v['prob_improvement'])}"
        f" ({v['prob_improvement_method']}); bootstrap CI [{fmt_num(v['bootstrap_low'])}, {fmt_num(v['bootstrap_high'])}]; "
        f"IQM difference {fmt_num(v['iqm_difference'])}"
    )
    if v.get("skew_widened"):
        click.echo(
            f"  skew widened the interval (sample skewness: baseline {fmt_num(v.get('skewness_baseline'))}, "
            f"candidate {fmt_num(v.get('skewness_candidate'))})"
        )
    for role, key, excl in (("baseline", "baseline", "excluded_baseline"), ("candidate", "candidate", "excluded_candidate")):
        s = v[key]
        say(
            f"  {role:<9} n = {s['n']} (+{v[excl]} excluded)  mean {fmt_num(s['mean'])} ± {fmt_num(s['sd'])}  "
            f"median {fmt_num(s['median'])}  IQM {fmt_num(s['iqm'])}  range [{fmt_num(s['min'])}, {fmt_num(s['max'])}]"
        )
    if v["verdict"] == "inconclusive" and v.get("seeds_needed"):
        say(
            f"  seeds per arm that would likely settle it: {v['seeds_needed']} (probability 0.8 of a positive or negative "
            "by this rule with the anytime interval a top-up uses, at the observed effect and spread)"
        )


def print_post_hoc(post_hoc: dict[str, Any]) -> None:
    """The exploratory reading after post hoc amendments, labelled, never as the entry's verdict."""
    r = post_hoc["reading"]
    say(f"  exploratory, {post_hoc['label']} (not the entry's verdict): {r['verdict']}")
    for c in r["comparisons"]:
        say(f"    {c['candidate_name']}: {c['verdict']} ({c['detail']}). {c['sentence']}")


def print_entry_verdict(result: dict[str, Any]) -> None:
    """An entry's verdict: headline, interval choice, notes, every comparison, then any post hoc
    reading, labelled as such and never as the entry's verdict."""
    label = " (exploratory)" if result.get("exploratory") else ""
    say(f"{result['title']} [{result['id']}: {result['entry']}]  overall: {result['verdict']}{label}")
    if result.get("withdrawn"):
        click.echo(click.style(terminal(f"  WITHDRAWN at {result['withdrawn']['at']}: {result['withdrawn']['reason']}"),
                               fg="red", bold=True))
    if result.get("integrity") == "TAMPERED":
        say(click.style(f"  TAMPERED: the record differs from its hash chain; these numbers are not the recorded ones "
                        f"(see `logbook verify {result['entry']}`)", fg="red", bold=True))
        for finding in result.get("integrity_findings", []):
            say(f"  TAMPERED: {finding['row']}: {finding['field']}: {finding['problem']}")
    if result.get("exploratory"):
        say(f"  exploratory: {result['exploratory_reason']}")
    say(f"  interval: {result['interval']} ({result['interval_reason']})")
    for amendment in result["amended"]:
        when = " after results" if amendment.get("post_hoc") else ""
        say(f"  note: amended{when} {amendment['field']} {amendment['old']!r} -> {amendment['new']!r} ({amendment['reason']})")
    for comparison in result["comparisons"]:
        print_verdict(comparison)
    if result.get("post_hoc"):
        print_post_hoc(result["post_hoc"])
