"""The `verdict` and `audit-claim` verbs: judge an entry, two files of per-seed values, or a
claim from a paper's table alone, with one rule (logbook.stats.verdict)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from logbook.cli.common import emit_json, json_option, open_store, say
from logbook.cli.present import print_entry_verdict, print_verdict
from logbook.errors import InputError

def read_values(path: Path, option: str) -> list[float]:
    """One number per line; blank lines and lines starting with # are skipped; nan/inf allowed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: {option}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {option}: expected a readable text file ({exc})") from exc
    values = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            values.append(float(text))
        except ValueError as exc:
            raise InputError(f"{path}: line {number}: expected one number per line (nan allowed), got {text[:40]!r}") from exc
    if len(values) < 2:
        raise InputError(f"{path}: {option}: expected at least 2 values, got {len(values)}")
    return values


def parse_summary(text: str, option: str) -> tuple[float, float, int]:
    """MEAN,SD,N from a paper's table."""
    parts = [p.strip() for p in text.split(",")]
    example = "e.g. 0.812,0.014,5"
    if len(parts) != 3:
        raise InputError(f"{option}: expected MEAN,SD,N ({example}), got {text!r}")
    try:
        mean, sd = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise InputError(f"{option}: expected numbers in MEAN,SD,N ({example}), got {text!r}") from exc
    try:
        n = int(parts[2])
    except ValueError as exc:
        raise InputError(f"{option}: N: expected a whole number of seeds, got {parts[2]!r}") from exc
    if not math.isfinite(mean):
        raise InputError(f"{option}: MEAN: expected a finite number, got {parts[0]!r}")
    if not math.isfinite(sd) or sd < 0:
        raise InputError(f"{option}: SD: expected a standard deviation ≥ 0, got {parts[1]!r}")
    if n < 2:
        raise InputError(f"{option}: N: expected at least 2 seeds, got {n}")
    return mean, sd, n


DELTA_REQUIRED = (
    "--delta: expected δ, the smallest effect worth claiming, in metric units (e.g. --delta 0.01); it has no "
    "default because a δ taken from the values being judged moves with them and turns real improvements negative"
)


def parse_delta(text: str | None) -> float:
    """δ from the command line: required, a number ≥ 0 in metric units."""
    if text is None or text.strip().lower() == "auto":
        raise InputError(DELTA_REQUIRED)
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError(f"--delta: expected a number ≥ 0 in metric units, got {text!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise InputError(f"--delta: expected a number ≥ 0 in metric units, got {text!r}")
    return value


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise InputError(f"--alpha: expected a number between 0 and 0.5 (exclusive), got {alpha:g}")


@click.command("verdict")
@click.argument("entry", required=False)
@click.option("--baseline-file", type=click.Path(path_type=Path, dir_okay=False), help="Baseline values, one per line.")
@click.option("--candidate-file", type=click.Path(path_type=Path, dir_okay=False), help="Candidate values, one per line.")
@click.option("--delta", "delta_text", help="Files: δ, the smallest effect worth claiming, in metric units (required).")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--lower-is-better", is_flag=True, help="The metric improves downwards (a loss).")
@click.option("--family-size", type=click.IntRange(min=1), default=1, show_default=True, help="Candidates tried in this family.")
@click.option("--anytime", is_flag=True, help="Files only: use the anytime-valid interval (seeds were added after looking).")
@click.option("--planned-n", type=click.IntRange(min=2), help="Files only, required with --anytime: seeds per arm planned before looking.")
@json_option
@click.pass_context
def verdict_cmd(
    ctx: click.Context, entry: str | None, baseline_file: Path | None, candidate_file: Path | None,
    delta_text: str | None, alpha: float, lower_is_better: bool, family_size: int, anytime: bool,
    planned_n: int | None, as_json: bool,
) -> None:
    """Judge ENTRY's candidates against its baseline, or two files of per-seed values."""
    if entry is not None:
        if baseline_file or candidate_file:
            raise InputError("ENTRY: expected either an entry or --baseline-file/--candidate-file, not both")
        from logbook.entries.verdicts import entry_verdict

        from logbook.entries.studies import verdict_notes

        store = open_store(ctx, "auto")  # caches the verdict where the logbook can be written
        result = entry_verdict(store, entry, cache=not store.read_only)
        result["studies"] = verdict_notes(store, entry)
        if as_json:
            emit_json(result)
            return
        print_entry_verdict(result)
        for key, label in (("variance_warning", "warning"), ("robustness", "robustness")):
            if result["studies"][key]:
                say(f"  {label}: {result['studies'][key]}")
        return
    if not (baseline_file and candidate_file):
        raise InputError("verdict: expected an ENTRY, or both --baseline-file and --candidate-file")
    check_alpha(alpha)
    delta = parse_delta(delta_text)
    if anytime and planned_n is None:
        raise InputError("--anytime: expected --planned-n too (the seeds per arm planned before looking: the interval is tuned to it)")
    if planned_n is not None and not anytime:
        raise InputError("--planned-n: expected only with --anytime")
    baseline = read_values(baseline_file, "--baseline-file")
    candidate = read_values(candidate_file, "--candidate-file")
    from logbook.stats import verdict

    result = verdict(
        baseline, candidate, delta=delta, alpha=alpha, higher_is_better=not lower_is_better,
        family_size=family_size, interval="anytime" if anytime else "welch", planned_n=planned_n,
        baseline_name=baseline_file.stem, candidate_name=candidate_file.stem,
    ).to_dict()
    emit_json(result) if as_json else print_verdict(result)


@click.command("audit-claim")
@click.option("--baseline", "baseline_text", required=True, help="MEAN,SD,N of the baseline, from the paper's table.")
@click.option("--candidate", "candidate_text", required=True, help="MEAN,SD,N of the claimed improvement.")
@click.option("--delta", "delta_text", help="δ, the smallest effect worth claiming, in metric units (required).")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--lower-is-better", is_flag=True)
@click.option("--family-size", type=click.IntRange(min=1), default=1, show_default=True)
@json_option
def audit_claim(
    baseline_text: str, candidate_text: str, delta_text: str | None, alpha: float, lower_is_better: bool,
    family_size: int, as_json: bool,
) -> None:
    """Judge a published claim from its table alone (mean, sd and n per arm), by the same rule."""
    check_alpha(alpha)
    delta = parse_delta(delta_text)
    baseline = parse_summary(baseline_text, "--baseline")
    candidate = parse_summary(candidate_text, "--candidate")
    from logbook.stats import verdict_from_summary

    result = verdict_from_summary(
        baseline, candidate, delta=delta, alpha=alpha, higher_is_better=not lower_is_better, family_size=family_size,
    ).to_dict()
    emit_json(result) if as_json else print_verdict(result)
