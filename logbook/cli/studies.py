"""The study verbs: variance (where the spread comes from) and robustness (does the verdict
survive a neighbouring setting)."""

from __future__ import annotations

import math

import click

from logbook.cli.common import confirm_commands, emit_json, json_option, open_store, yes_option


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)


def variance_lines(report: dict) -> list[str]:
    """The variance report as text: one table per arm."""
    lines = [f"variance study of {report['entry']} ({report['metric']}, {report['seeds']} runs per source)"]
    for arm, groups in report["arms"].items():
        lines.append(f"  {arm}")
        lines.append(f"    {'source':<8} {'n':>3} {'sd':>10} {'95% interval':>23} {'share':>7} {'churn':>7}")
        for source, r in groups.items():
            churn = (r.get("churn") or {}).get("churn")
            lines.append(f"    {source:<8} {r['n']:>3} {_num(r['sd']):>10} "
                         f"{'[' + _num(r['sd_low']) + ', ' + _num(r['sd_high']) + ']':>23} "
                         f"{_num(r['share'], '.0%'):>7} {_num(churn, '.1%'):>7}")
    if report["pending"]:
        lines.append(f"  {report['pending']} runs of the study have not finished")
    if report["matter"]:
        lines.append(f"  sources that matter (share ≥ 10%): {', '.join(report['matter'])}")
    if report.get("warning"):
        lines.append(f"  warning: {report['warning']}")
    return lines


@click.command("variance")
@click.argument("entry")
@json_option
@click.pass_context
def variance(ctx: click.Context, entry: str, as_json: bool) -> None:
    """Where ENTRY's spread comes from: the sd due to each source of randomness alone, with its
    bootstrap interval and its share of the all-sources variance (the entry's variance_study,
    whose runs `logbook run` queues)."""
    from logbook.entries.variance_study import variance_report

    report = variance_report(open_store(ctx, "read"), entry)
    if as_json:
        emit_json(report)
    else:
        click.echo("\n".join(variance_lines(report)))


@click.command("robustness")
@click.argument("entry")
@click.option("--vary", "vary", multiple=True, metavar="NAME=V1,V2",
              help="A config key and its neighbouring values: absolute (48,96) or relative (x0.5,x2). Repeatable.")
@click.option("--seeds", type=click.IntRange(min=5), help="Seeds per arm of the follow-up (default: the entry's).")
@click.option("--no-worker", is_flag=True, help="Only queue; do not start a worker.")
@yes_option
@json_option
@click.pass_context
def robustness(ctx: click.Context, entry: str, vary: tuple[str, ...], seeds: int | None, no_worker: bool, yes: bool,
               as_json: bool) -> None:
    """With --vary: register and queue a linked follow-up entry that repeats ENTRY's comparison at
    each neighbouring setting on fresh seeds (ENTRY itself is not changed). Without: the verdict
    at each setting and whether ENTRY's verdict is robust."""
    from logbook.entries.robustness import register_follow_up, robustness_report

    store = open_store(ctx, "write")
    if not vary:
        if seeds is not None:
            raise click.UsageError("--seeds: expected only together with --vary")
        report = robustness_report(store, entry)
        if as_json:
            emit_json(report)
            return
        click.echo(f"robustness of {report['entry']} (follow-up {report['follow_up']}: {report['follow_up_slug']})")
        for row in report["settings"]:
            click.echo(f"  {row['label']:<16} {row['candidate']:<12} {row['verdict'] or 'running':<13} "
                       f"effect {_num(row['effect'])} [{_num(row['ci_low'])}, {_num(row['ci_high'])}]")
        click.echo(report["summary"])
        return
    from logbook.engine.queue import enqueue, ensure_worker

    follow = register_follow_up(store, entry, vary, seeds)
    confirm_commands(store, str(follow.id), runs=None, yes=yes)
    queued = enqueue(store, str(follow.id))
    worker_pid = None if no_worker else ensure_worker(store)
    if as_json:
        emit_json({"follow_up": follow.id, "slug": follow.slug, "queued": queued, "worker_pid": worker_pid})
    else:
        click.echo(f"{follow.id}")
        click.echo(f"registered follow-up {follow.id}: {follow.slug}; queued {len(queued)} runs", err=True)


def register_demo_study(store, tiny: bool):  # noqa: ANN001, ANN201
    """The demo's second entry (logbook/data/demo-variance.yaml): registered with its variance
    study and queued, planned seeds and study runs. Returns (entry, run ids)."""
    import dataclasses
    from importlib import resources

    from logbook.engine.queue import enqueue
    from logbook.entries.file import load_entry_file
    from logbook.entries.registry import create_draft, register
    from logbook.entries.variance_study import check_study, queue_study

    with resources.as_file(resources.files("logbook") / "data" / "demo-variance.yaml") as path:
        spec = load_entry_file(path)
    if tiny:
        small = {"steps": 20, "train_size": 200, "eval_size": 100, "shuffle_window": 200}
        arms = tuple(dataclasses.replace(a, config={**a.config, **small}) for a in spec.arms)
        spec = dataclasses.replace(spec, arms=arms, variance_study={**spec.variance_study, "seeds": 3})
    spec = dataclasses.replace(spec, variance_study=check_study(spec.variance_study, spec.trainer.to_dict(), "demo"))
    entry = register(store, str(create_draft(store, spec).id))
    return entry, enqueue(store, str(entry.id)) + queue_study(store, str(entry.id))


def print_demo_study(store, entry_id: int) -> None:  # noqa: ANN001
    """The demo's variance study as text, after its runs."""
    from logbook.entries.variance_study import variance_report

    click.echo("")
    click.echo("\n".join(variance_lines(variance_report(store, str(entry_id)))))
