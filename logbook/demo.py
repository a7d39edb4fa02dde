"""`logbook demo`: a first look at the logbook on a throw-away database.

It registers the gated-RNN hypothesis of the seed paper (logbook/data/gated-rnn.yaml) in
``.logbook/demo.db`` (recreated each time), shows the registered entry, and then judges, by the
verdict rule, the kinds of claims that paper describes from their summary numbers: two seeds that
"looked better", the same comparison with ten seeds, and a real gain.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from logbook.cli import _show_text, cli

CLAIMS = (
    ("two seeds that looked better", (0.120, 0.010, 2), (0.112, 0.009, 2)),
    ("the same idea on ten seeds each", (0.120, 0.010, 10), (0.1185, 0.011, 10)),
    ("a real gain, ten seeds each", (0.120, 0.004, 10), (0.095, 0.005, 10)),
)


@cli.command()
@click.option("--demo-db", type=click.Path(dir_okay=False, path_type=Path), help="Demo database (default .logbook/demo.db).")
@click.option("--no-tui", is_flag=True, help="Print instead of opening the terminal app (the only mode so far).")
def demo(demo_db: Path | None, no_tui: bool) -> None:  # noqa: ARG001 (--no-tui is accepted for scripts)
    """Register the seed paper's hypothesis in a demo logbook and judge example claims."""
    from logbook.db.engine import open_store
    from logbook.entries import create_draft, entry_detail, register
    from logbook.entryfile import load_entry_file
    from logbook.paths import default_db_path
    from logbook.stats import verdict_from_summary

    path = demo_db or default_db_path().with_name("demo.db")
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = open_store(path)
    try:
        with resources.as_file(resources.files("logbook") / "data" / "gated-rnn.yaml") as example:
            spec = load_entry_file(example)
        entry = register(store, str(create_draft(store, spec).id))
        click.echo(f"Demo logbook: {path}\n")
        _show_text(entry_detail(store, str(entry.id)))
        click.echo("\nThe seq-gating trainer is not built yet, so nothing runs here. Judging claims from summary numbers")
        click.echo("(mean, sd, n per arm) by the same rule, for val_loss with δ = 0.01:\n")
        for label, baseline, candidate in CLAIMS:
            v = verdict_from_summary(
                baseline, candidate, delta=spec.min_effect, alpha=spec.alpha, higher_is_better=False,
                metric=spec.metric, candidate_name="gated", baseline_name="lstm",
            )
            click.echo(f"  [{v.verdict.upper()}] {label}")
            click.echo(f"    {v.sentence}\n")
    finally:
        store.dispose()
