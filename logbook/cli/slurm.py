"""The Slurm flags of `logbook run` and `logbook worker` (see logbook/engine/slurm.py)."""

from __future__ import annotations

from typing import Any, Callable

import click

SLURM_FLAGS = (
    click.option("--partition", help="Slurm partition."),
    click.option("--gpus-per-task", type=click.IntRange(min=0), help="GPUs per array task."),
    click.option("--cpus-per-task", type=click.IntRange(min=1), help="CPUs per array task."),
    click.option("--mem", help="Memory per task, e.g. 16G."),
    click.option("--time", "time_limit", help="Time limit per task: minutes, or HH:MM:SS / D-HH:MM:SS."),
    click.option("--account", help="Slurm account."),
    click.option("--qos", help="Slurm quality of service."),
    click.option("--constraint", help="Node features, e.g. a100|h100."),
    click.option("--sbatch", "sbatch", multiple=True, help="An extra sbatch option such as --exclusive (repeatable)."),
    click.option("--max-running", type=click.IntRange(min=1), help="Array tasks running at once (%K)."),
    click.option("--max-requeues", type=click.IntRange(min=0), help="Requeues after TIMEOUT/PREEMPTED/NODE_FAIL."),
)
FLAG_FIELDS = {"partition": "partition", "gpus_per_task": "gpus_per_task", "cpus_per_task": "cpus_per_task",
               "mem": "mem", "time_limit": "time", "account": "account", "qos": "qos", "constraint": "constraint",
               "sbatch": "sbatch", "max_running": "max_running", "max_requeues": "max_requeues"}


def slurm_flags(command: Callable) -> Callable:
    for option in reversed(SLURM_FLAGS):
        command = option(command)
    return command


def flag_block(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the Slurm flags from a command's keyword arguments, as a slurm block (set ones only)."""
    block = {}
    for flag, name in FLAG_FIELDS.items():
        value = kwargs.pop(flag, None)
        if value in (None, ()):
            continue
        if name == "sbatch":
            value = list(value)
        elif name == "time" and value.isdigit():
            value = int(value)
        block[name] = value
    return block


def settings_for_run(store, entry_ref: str, executor_flag: str | None, block: dict[str, Any]) -> tuple[str, dict | None]:  # noqa: ANN001
    """The executor and Slurm options ENTRY's new runs get, checked against the cluster up front."""
    from logbook.db.models import Hypothesis
    from logbook.db.queries import resolve_entry

    with store.session() as session:
        entry: Hypothesis = resolve_entry(session, entry_ref)
        session.expunge(entry)
    if executor_flag == "local":
        return "local", None
    from logbook.entries.slurmconfig import run_settings

    executor, options = run_settings(entry, block, executor_flag)
    if executor != "slurm":
        return executor, None
    from logbook.engine.slurm import check_cluster

    check_cluster(store, options)
    return executor, options
