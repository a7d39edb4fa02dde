"""`logbook demo`: the seed paper's experiment, registered, run and judged on this machine.

It registers the gated-RNN hypothesis (logbook/data/demo-gated-rnn.yaml: an LSTM against the
same cell with an extra output gate on the adding problem, ten seeds per arm) in
``.logbook/demo.db`` (made afresh each time), runs every seed through the real run engine (one
worker, each arm's ten seeds trained together in one process) and shows it live in the terminal
app on the entry's screen; with ``--no-tui`` (or without a terminal) it prints each seed's result
as it lands, then the verdict, and writes a Markdown writeup with figures to
``.logbook/demo-export/``. A second entry (logbook/data/demo-variance.yaml) runs beside it with a
pre-registered variance study: where the spread between seeds comes from (init or data order),
shown as bars on its entry screen, printed, and written up with its figure.
"""

from __future__ import annotations

import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import click

from logbook.db.runstatus import ACTIVE, FINISHED


@click.command()
@click.option("--demo-db", type=click.Path(dir_okay=False, path_type=Path), help="Demo database (default .logbook/demo.db).")
@click.option("--no-tui", is_flag=True, help="Print progress and the verdict instead of opening the terminal app.")
@click.option("--tiny", is_flag=True, hidden=True, help="A seconds-long version, for tests.")
@click.option("--without-study", is_flag=True, hidden=True,
              help="Leave out the variance-study entry (what benchmarks/demo.py compares the demo with).")
def demo(demo_db: Path | None, no_tui: bool, tiny: bool, without_study: bool) -> None:  # noqa: ARG001
    """Register, run and judge the seed paper's gated-RNN hypothesis on a fresh demo logbook."""
    from sqlmodel import select

    from logbook.cli.present import print_verdict
    from logbook.db.engine import open_store
    from logbook.db.models import Arm, Run
    from logbook.engine.queue import enqueue
    from logbook.entries.registry import create_draft, register
    from logbook.entries.file import load_entry_file, validate
    from logbook.export.writer import export
    from logbook.db.paths import default_db_path
    from logbook.entries.verdicts import entry_verdict

    path = demo_db or default_db_path().with_name("demo.db")
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with resources.as_file(resources.files("logbook") / "data" / "demo-gated-rnn.yaml") as example:
        spec = load_entry_file(example)
    if tiny:
        import dataclasses

        small = {"steps": 40, "train_size": 200, "val_size": 50, "hidden": 8}
        data = {"title": spec.title, "hypothesis": spec.hypothesis, "metric": spec.metric, "goal": spec.goal,
                "min_effect": spec.min_effect, "seeds": 5, "trainer": spec.trainer.name, "tags": list(spec.tags),
                "arms": {a.name: {**a.config, **small} for a in spec.arms}}
        spec = dataclasses.replace(validate(data, label="demo"), source_text=spec.source_text)
    store = open_store(path)
    try:
        from logbook.cli.studies import print_demo_study, register_demo_study

        entry = register(store, str(create_draft(store, spec).id))
        run_ids = enqueue(store, str(entry.id))
        study_entry, study_runs = (None, []) if without_study else register_demo_study(store, tiny)
        seeds = spec.seeds
        batch = max(seeds, 32)  # an arm's seeds, and its variance study's runs, trained together
        click.echo(f"Demo logbook: {path}")
        click.echo(f"Registered “{entry.title}” ({entry.slug}), hash {entry.registration_hash[:16]}…")
        click.echo(f"Running {len(run_ids)} runs: {len(spec.arms)} arms × {seeds} seeds, each arm's seeds trained together.")
        if study_entry is not None:  # where the spread comes from
            click.echo(f"Also “{study_entry.title}” ({study_entry.slug}): {len(study_runs)} runs, its variance study included.")
        click.echo("")
        if not no_tui and sys.stdin.isatty() and sys.stdout.isatty():
            from logbook.engine.queue import ensure_worker
            from logbook.tui.app import run_app

            ensure_worker(store, cpu_slots=2, batch=batch)  # detached: quitting the app does not stop it
            run_app(path, open_entry=entry.id)
            click.echo("\n".join(next_steps(path, entry.slug, study_entry.slug, out=path.parent / "demo-export")))
            return
        started = time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "-m", "logbook", "--db", str(path), "worker", "--once", "--batch", str(batch), "--cpu-slots", "2"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        shown: set[int] = set()
        while True:
            with store.session() as session:
                rows = session.exec(select(Run, Arm.name).join(Arm, Arm.id == Run.arm_id).where(Run.id.in_(run_ids))).all()
            for run, arm in sorted(rows, key=lambda r: (r[0].ended_at is None, r[0].ended_at or 0, r[0].id)):
                if run.status in FINISHED and run.id not in shown:
                    shown.add(run.id)
                    value = (run.final_metrics or {}).get(spec.metric)
                    text = f"{value:.4f}" if isinstance(value, float) else run.status
                    click.echo(f"  [{len(shown):>2}/{len(run_ids)}] {arm:<9} seed {run.seed:<11} {spec.metric} {text}")
            if (len(shown) == len(run_ids) and _settled(store, study_runs)) or (
                    worker.poll() is not None and _settled(store, run_ids + study_runs)):
                break
            time.sleep(0.5)
        worker.wait(timeout=60)
        click.echo(f"\nAll runs ended in {time.monotonic() - started:.0f} s.\n")
        result = entry_verdict(store, str(entry.id))
        for comparison in result["comparisons"]:
            print_verdict(comparison)
        out = path.parent / "demo-export"
        written = export(store, [str(entry.id)], all_entries=False, verdicts=None, fmt="md", out=out)
        if study_entry is not None:
            print_demo_study(store, study_entry.id)
            written += export(store, [str(study_entry.id)], all_entries=False, verdicts=None, fmt="md", out=out)
        click.echo(f"\nWriteup with figures: {written[0]}")
        click.echo("\n".join(next_steps(path, entry.slug, study_entry.slug, out=out)))
    finally:
        store.dispose()


def next_steps(path: Path, slug: str, study_slug: str, *, out: Path) -> list[str]:
    """What to try next, as commands that work when pasted: the demo has its own logbook, so each
    names it with ``--db`` (paths quoted for the shell); a bare ``logbook`` would open the main one."""
    import shlex

    db = f"logbook --db {shlex.quote(str(path))}"
    return [
        "",
        f"Next steps (the demo has its own logbook, {path}: each command names it with --db):",
        f"  {db} list",
        f"  {db} show {slug}",
        f"  {db} verdict {slug}",
        f"  {db} compare {slug}",
        f"  {db} variance {study_slug}",
        f"  {db} export {slug} --format tex --out {shlex.quote(str(out))}",
        f"  {db}",
        f"The last one opens the terminal app on it. To remove the demo: rm {shlex.quote(str(path))}*",
    ]


def _settled(store, run_ids: list[int]) -> bool:  # noqa: ANN001
    """Whether no run is left queued or running (the worker has exited)."""
    from sqlmodel import col, select

    from logbook.db.models import Run

    with store.session() as session:
        return not session.exec(select(Run.id).where(col(Run.id).in_(run_ids), col(Run.status).in_(ACTIVE))).first()
