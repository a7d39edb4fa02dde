"""The `import` verb: judge runs that another tracker recorded (MLflow, TensorBoard, W&B, CSV)."""

from __future__ import annotations

import click

from logbook.cli.common import emit_json, json_option, open_store


@click.command("import")
@click.argument("kind", metavar="SOURCE_KIND", type=click.Choice(["mlflow", "tensorboard", "wandb", "csv"]))
@click.argument("location")
@click.option("--experiment", help="MLflow experiment name, or W&B project.")
@click.option("--arm-by", required=True, help="Field naming the arm: a column, params.x / tags.x (MLflow), config.x (W&B), or a folder-name pattern like '{arm}_seed{seed}' (TensorBoard).")
@click.option("--seed-by", required=True, help="Field holding the seed (or the pattern's seed placeholder).")
@click.option("--metric", required=True, help="The metric to judge.")
@click.option("--reduce", "reduce_", default="last", show_default=True, help="last, min, max, or mean-last-K over each run's curve.")
@click.option("--baseline", required=True, help="The baseline arm.")
@click.option("--delta", type=float, required=True, help="δ, the smallest effect worth claiming, in metric units (required).")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--lower-is-better", is_flag=True, help="The metric improves downwards (a loss).")
@click.option("--title", help="The entry's title (default: built from the metric and arms).")
@click.option("--command", help="How to rerun one seed, for audits: placeholders {seed} and the arm's config keys.")
@click.option("--metric-pattern", help="Regex with one group that finds the metric in a rerun's output (default: 'METRIC[=:] number').")
@click.option("--commit", help="The git commit the runs were made at (when the source did not record it).")
@click.option("--repo", help="The git repository holding that commit (default: the current one, if it has it).")
@click.option("--curves/--no-curves", default=True, show_default=True,
              help="Store each run's learning curve; --no-curves reads only the last values (faster on large stores).")
@click.option("--dry-run", is_flag=True, help="Read and check the source, show the arms and seeds found, write nothing.")
@json_option
@click.pass_context
def import_cmd(ctx: click.Context, kind: str, location: str, experiment: str | None, arm_by: str, seed_by: str,
               metric: str, reduce_: str, baseline: str, delta: float, alpha: float, lower_is_better: bool,
               title: str | None, command: str | None, metric_pattern: str | None, commit: str | None,
               repo: str | None, curves: bool, dry_run: bool, as_json: bool) -> None:
    """Import runs from another tracker as a retrospective entry (re-importing adds only new runs)."""
    from logbook.importers.common import group_seeds
    from logbook.importers.run import make_options, preview, run_import

    options = make_options(
        kind, location, experiment=experiment, arm_by=arm_by, seed_by=seed_by, metric=metric, reduce=reduce_,
        baseline=baseline, delta=delta, alpha=alpha, lower_is_better=lower_is_better, title=title, command=command,
        metric_pattern=metric_pattern, commit=commit, repo=repo, curves=curves,
    )
    if dry_run:
        data = preview(options)
        seeds = group_seeds(data)
        if as_json:
            emit_json({"arms": {arm: len(s) for arm, s in seeds.items()}, "seeds": seeds,
                       "skipped_unfinished": data.skipped_unfinished})
        else:
            for arm in data.arms:
                click.echo(f"{arm}: {len(seeds[arm])} seeds" + (" (baseline)" if arm == baseline else ""))
        return
    store = open_store(ctx, "create")  # like `new`, an import may start a logbook
    result = run_import(store, options)
    if as_json:
        emit_json(result)
        return
    arms = ", ".join(f"{arm} ({n} seeds)" for arm, n in result["arms"].items())
    if result["created"]:
        click.echo(f"imported entry {result['id']}: {result['slug']} (retrospective): {arms}")
    elif result["added_runs"]:
        click.echo(f"entry {result['id']}: {result['slug']}: added {result['added_runs']} new runs as an amendment")
    else:
        click.echo(f"entry {result['id']}: {result['slug']}: already imported; nothing new")
    if result.get("skipped_unfinished"):
        click.echo(f"  skipped {result['skipped_unfinished']} runs still running (import again when they finish)")
