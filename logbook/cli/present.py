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
    say(
        f"  p (Δ > 0) = {fmt_num(v['p_value'])}, Holm {fmt_num(v['p_value_holm'])}; P(C > B) = {fmt_num(v['prob_improvement'])}"
        f" ({v['prob_improvement_method']}); bootstrap CI [{fmt_num(v['bootstrap_low'])}, {fmt_num(v['bootstrap_high'])}]; "
        f"IQM difference {fmt_num(v['iqm_difference'])}"
    )
    for role, key, excl in (("baseline", "baseline", "excluded_baseline"), ("candidate", "candidate", "excluded_candidate")):
        s = v[key]
        say(
            f"  {role:<9} n = {s['n']} (+{v[excl]} excluded)  mean {fmt_num(s['mean'])} ± {fmt_num(s['sd'])}  "
            f"median {fmt_num(s['median'])}  IQM {fmt_num(s['iqm'])}  range [{fmt_num(s['min'])}, {fmt_num(s['max'])}]"
        )
    if v["verdict"] == "inconclusive" and v.get("seeds_needed"):
        say(f"  seeds per arm that would likely settle it: {v['seeds_needed']} (power 0.8 at the observed spread)")
