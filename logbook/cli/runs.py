"""The run verbs: run, worker, status, cancel, requeue."""

from __future__ import annotations

import click

from logbook.cli.common import confirm_commands, emit_json, json_option, open_store, say, wait_for_runs, yes_option
from logbook.cli.slurm import flag_block, settings_for_run, slurm_flags
from logbook.db.runstatus import DEFAULT_BATCH

slots_option = click.option("--slots-per-gpu", type=click.IntRange(min=1), default=1, show_default=True,
                             help="Runs side by side on each GPU.")
def batch_option(command):  # noqa: ANN001, ANN201
    """--batch K (default: batch) and --no-batch, folded into one ``batch`` argument."""
    command = click.option("--batch", type=click.IntRange(min=1, max=256), default=DEFAULT_BATCH, show_default=True,
                           help="Train up to this many seeds of one arm in one process, where the trainer can "
                                "(recorded per run as its batch size).")(command)
    return click.option("--no-batch", is_flag=True, help="One seed per process, even where the trainer can batch.")(command)
cpu_slots_option = click.option("--cpu-slots", type=click.IntRange(min=1),
                                help="Runs side by side when there is no GPU (default: half the CPU cores).")


@click.command("run")
@click.argument("entry")
@click.option("--seeds", "extra", type=int, help="Queue this many extra seeds per arm instead of the planned ones.")
@click.option("--wait", is_flag=True, help="Stay and show progress until the entry's runs end.")
@click.option("--no-worker", is_flag=True, help="Only queue; do not start a worker.")
@slots_option
@cpu_slots_option
@batch_option
@click.option("--executor", type=click.Choice(["local", "slurm"]),
              help="Where the runs execute (default: logbook.toml or the entry file, else local).")
@slurm_flags
@yes_option
@json_option
@click.pass_context
def run_cmd(ctx: click.Context, entry: str, extra: int | None, wait: bool, no_worker: bool, slots_per_gpu: int,
            cpu_slots: int | None, batch: int, no_batch: bool, executor: str | None, yes: bool, as_json: bool,
            **slurm: object) -> None:
    """Queue ENTRY's seeds on every arm and make sure a detached worker runs them."""
    from logbook.db.queries import resolve_entry
    from logbook.engine.queue import ensure_worker, enqueue, entry_progress, entry_run_ids

    from logbook.engine.confirm import queued_count

    store = open_store(ctx, "write")
    executor, options = settings_for_run(store, entry, executor, flag_block(slurm))
    confirm_commands(store, entry, runs=queued_count(store, entry, "run", extra), yes=yes)
    queued = enqueue(store, entry, extra, executor=executor, executor_options=options)
    if extra is None:  # the registered variance study is part of the plan
        from logbook.entries.variance_study import queue_study

        queued += queue_study(store, entry)
    with store.session() as session:
        found = resolve_entry(session, entry)
        entry_id, slug = found.id, found.slug
    worker_pid = None if no_worker else ensure_worker(store, slots_per_gpu=slots_per_gpu, cpu_slots=cpu_slots,
                                                      batch=1 if no_batch else batch, executor=executor)
    if not as_json:
        origin = f"{extra} extra seeds per arm" if extra else "the planned seeds"
        click.echo(f"queued {len(queued)} runs of {slug} ({origin})"
                   + (f"; started worker pid {worker_pid}" if worker_pid else "; a worker is already running" if not no_worker else ""))
    if wait:
        wait_for_runs(store, entry_run_ids(store, entry_id), "runs", as_json)
    progress = entry_progress(store, entry_id)
    if as_json:
        emit_json({"entry": slug, "queued": queued, "worker_pid": worker_pid, "runs": dict(progress)})
    elif wait:
        click.echo("runs: " + ", ".join(f"{n} {s}" for s, n in sorted(progress.items())))
        click.echo(f"judge it with: logbook verdict {slug}")


@click.command()
@click.option("--once", is_flag=True, help="Exit when no run is queued or running.")
@click.option("--idle-exit", type=float, help="Exit after this many seconds with nothing to do.")
@slots_option
@cpu_slots_option
@batch_option
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="Run local runs here, or send Slurm runs to the cluster (and re-attach to those sent before).")
@click.option("--slurm-poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True, envvar="LOGBOOK_SLURM_POLL",
              help="Seconds between sacct calls (one call covers all of the worker's jobs).")
@click.option("--grace", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="When stopped (SIGTERM, SIGINT, SIGHUP): seconds runs get after SIGTERM before SIGKILL.")
@click.option("--log-path", hidden=True)
@click.pass_context
def worker(ctx: click.Context, once: bool, idle_exit: float | None, slots_per_gpu: int, cpu_slots: int | None,
           batch: int, no_batch: bool, executor: str, slurm_poll: float, grace: float, log_path: str | None) -> None:
    """Run queued runs in the foreground (`logbook run` starts one in the background)."""
    from logbook.engine.worker import start_worker

    store = open_store(ctx, "write")
    if executor == "slurm":
        from logbook.engine.slurm import start_slurm_worker

        start_slurm_worker(store, once=once, idle_exit_s=idle_exit, log_path=log_path, poll_s=slurm_poll, batch=1 if no_batch else batch)
        return
    start_worker(store, once=once, idle_exit_s=idle_exit, slots_per_gpu=slots_per_gpu, cpu_slots=cpu_slots,
                 log_path=log_path, batch=1 if no_batch else batch, grace_s=grace)


@click.command()
@click.argument("entry", required=False)
@json_option
@click.pass_context
def status(ctx: click.Context, entry: str | None, as_json: bool) -> None:
    """Workers, their slots, and runs (all of ENTRY's, or the active and most recent)."""
    store = open_store(ctx, "read", light=entry is None)
    if entry is None:  # the fast path: db.reads alone, no SQLAlchemy (what engine.queue.status reads too)
        from logbook.db.reads import status_report
        from logbook.engine.procinfo import is_alive

        with store.connection() as conn:
            info = status_report(conn, store.path, alive=is_alive)
    else:
        from logbook.engine.queue import status as queue_status

        info = queue_status(store, entry)
        from logbook.entries.chain import one_check_per_entry
        from logbook.entries.registry import entry_detail
        from logbook.entries.states import verdict_state
        from logbook.entries.verdicts import entry_verdict

        with one_check_per_entry():  # the detail and the verdict both report the chain check
            detail = entry_detail(store, entry)
            info = {"state": verdict_state(entry_verdict(store, entry, cache=False), detail["status"]), **info}
    if as_json:
        emit_json(info)
        return
    if "state" in info:
        say(f"{entry}: {info['state']}")
    live = [w for w in info["workers"] if w["alive"]]
    click.echo(f"workers: {len(live)} running" + ("" if live else " (start one with `logbook worker` or `logbook run`)"))
    for w in live:
        slots = ", ".join(s["device"] + ("" if s["gpu"] is None else ":" + s["gpu"]) for s in w["slots"])
        say(f"  worker {w['id']}: pid {w['pid']} on {w['host']}, slots {slots}, heartbeat {w['heartbeat_at']}")
    click.echo("runs: " + (", ".join(f"{n} {s}" for s, n in info["counts"].items()) or "none"))
    for r in info["runs"]:
        took = f"{r['wall_time_s']:.1f}s" if r["wall_time_s"] is not None else ""
        error = f"  {r['error'][:60]}" if r["error"] and r["status"] not in ("succeeded",) else ""
        where = (f"  slurm {r['slurm_job_id']} {r['slurm_state'] or ''} {r['node'] or ''}".rstrip()
                 + (f" requeued {r['slurm_requeues']}x" if r["slurm_requeues"] else "")) if r["executor"] == "slurm" else ""
        say(f"  {r['id']:>5} {r['status']:<10} {r['entry'][:28]:<28} {r['arm'][:12]:<12} seed {'hidden' if r['seed'] is None else r['seed']:<11} {took:>8}{where}{error}")


@click.command()
@click.argument("entry", required=False)
@click.option("--run", "run_id", type=int, help="One run by id.")
@json_option
@click.pass_context
def cancel(ctx: click.Context, entry: str | None, run_id: int | None, as_json: bool) -> None:
    """Cancel ENTRY's queued and running runs (or one --run)."""
    from logbook.engine.queue import cancel as do_cancel

    store = open_store(ctx, "write")
    counts = do_cancel(store, entry, run_id)
    if as_json:
        emit_json(counts)
    else:
        click.echo(f"cancelled {counts.get('cancelled', 0)} queued runs; asked workers to stop {counts.get('stopping', 0)} running runs")


@click.command()
@click.argument("entry", required=False)
@click.option("--run", "run_id", type=int, help="One run by id.")
@click.option("--no-worker", is_flag=True, help="Only requeue; do not start a worker.")
@yes_option
@json_option
@click.pass_context
def requeue(ctx: click.Context, entry: str | None, run_id: int | None, no_worker: bool, yes: bool, as_json: bool) -> None:
    """Queue ENTRY's failed, crashed, diverged or cancelled runs again (or one --run)."""
    from logbook.engine.queue import ensure_worker, executors_of
    from logbook.engine.queue import requeue as do_requeue

    from logbook.engine.confirm import entry_of_run, queued_count

    store = open_store(ctx, "write")
    ref = entry if run_id is None else entry_of_run(store, run_id)
    if ref is not None:  # a run that does not exist is reported by requeue itself
        confirm_commands(store, ref, runs=1 if run_id is not None else queued_count(store, ref, "requeue"), yes=yes)
    ids = do_requeue(store, entry, run_id)
    worker_pid = None
    for executor in executors_of(store, ids) if not no_worker else ():  # a local worker, a Slurm worker, or both
        worker_pid = ensure_worker(store, executor=executor) or worker_pid
    if as_json:
        emit_json({"requeued": ids, "worker_pid": worker_pid})
    else:
        click.echo(f"requeued {len(ids)} runs" + (f"; started worker pid {worker_pid}" if worker_pid else ""))
