"""The Slurm executor's costs, measured against the real single-node test cluster.

1. Submission: 100 runs as ONE job array (one sbatch, what the worker does) vs one sbatch per
   run, both through the executor's own submit path (submitit), submitted held and cancelled.
2. Time from `logbook run ENTRY --executor slurm` (2 arms x 50 seeds of a command trainer that
   sleeps) to all 100 array tasks RUNNING in squeue. The test node is started declaring 100 CPUs
   (Slurm's config_overrides) so that all 100 fit at once; the machine really has os.cpu_count().
3. Worker CPU while 1,000 tasks stay pending (held): CPU seconds of the worker process over a
   window, with sacct polled every 5 s (the default) and every 1 s; each poll is ONE sacct call.

Needs root and the Slurm packages (tests/slurm/cluster.sh). It restarts the test cluster in its
own state folder with 100 CPUs and stops it at the end.

Run: .venv/bin/python benchmarks/slurm.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _record import record  # noqa: E402

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
STATE = Path("/tmp/logbook-slurm-bench")
TEST_STATE = Path(os.environ.get("LOGBOOK_SLURM_STATE", "/tmp/logbook-slurm-test"))


def logbook(db: Path, *args: str, env: dict | None = None, cwd: Path | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True, cwd=cwd)
    return out.stdout


def entry(folder: Path, db: Path, name: str, seeds: int, sleep: float, slurm: str) -> str:
    (folder / "train.py").write_text("import time, sys\ntime.sleep(float(sys.argv[1]))\nprint('score: 1.0')\n")
    lines = [f"title: {name}", "hypothesis: benchmark", "metric: score", "goal: maximize", "min_effect: 0",
             f"seeds: {seeds}", "trainer:",
             f"  command: {json.dumps(f'{sys.executable} train.py {sleep}')}",
             "  metrics: {score: 'score: ([0-9.]+)'}",
             "arms:", "  a: {x: 1}", "  b: {x: 2}", "slurm:", *[f"  {line}" for line in slurm.splitlines()]]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return json.loads(logbook(db, "new", str(path), "--register", "--json", cwd=folder))["slug"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def squeue_states(job: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%T"], capture_output=True, text=True, check=False)
    return out.stdout.split()


def submission_cost(folder: Path) -> list[list[str]]:
    from logbook.engine.executor import Job
    from logbook.engine.slurm import SlurmExecutor

    executor = SlurmExecutor(folder / "submitit")
    jobs = []
    for i in range(100):
        job_file = folder / f"job{i}.json"
        job_file.write_text("{}")
        jobs.append(Job(run_ids=[i], job_file=job_file, run_dir=folder, log_path=folder / "log.txt", env={}))
    options = {"time": 5, "max_running": 100, "sbatch": ["--hold"]}
    start = time.perf_counter()
    keys = executor.submit_array(jobs, options, name="bench-array")
    one_array = time.perf_counter() - start
    subprocess.run(["scancel", keys[0].split("_")[0]], check=False)
    start = time.perf_counter()
    singles = [executor.submit_array([job], options, name="bench-single")[0] for job in jobs]
    one_each = time.perf_counter() - start
    subprocess.run(["scancel", *singles], check=False)
    return [
        ["submit 100 runs as one job array (1 sbatch)", f"{one_array:.2f} s", f"{one_array / 100 * 1000:.1f} ms a run"],
        ["submit 100 runs one sbatch each", f"{one_each:.2f} s", f"{one_each / 100 * 1000:.1f} ms a run"],
        ["ratio (one each / array)", f"{one_each / one_array:.1f}x", ""],
    ]


def time_to_running(folder: Path) -> list[list[str]]:
    db = folder / "run" / "logbook.db"
    slug = entry(folder, db, "allrun", 50, 120, "time: 5\nmax_running: 100")
    env = {"LOGBOOK_SLURM_POLL": "1"}
    start = time.perf_counter()
    logbook(db, "run", slug, "--executor", "slurm", "--yes", env=env, cwd=folder)
    cli_done = time.perf_counter() - start
    job, submitted, all_running = None, None, None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if job is None:
            out = subprocess.run(["squeue", "-h", "-o", "%F %j"], capture_output=True, text=True).stdout.split("\n")
            found = [line.split()[0] for line in out if "logbook-" in line]
            if found:
                job, submitted = found[0], time.perf_counter() - start
        if job is not None and squeue_states(job).count("RUNNING") == 100:
            all_running = time.perf_counter() - start
            break
        time.sleep(0.2)
    logbook(db, "cancel", slug, cwd=folder)
    stop_worker(db)
    return [
        ["`logbook run --executor slurm` returns (queued, worker started)", f"{cli_done:.2f} s", ""],
        ["... array in squeue (worker claimed and submitted 100 runs)", f"{submitted:.2f} s" if submitted else "never", ""],
        ["... all 100 tasks RUNNING", f"{all_running:.2f} s" if all_running else "not within 300 s", "node declares 100 CPUs"],
    ]


def stop_worker(db: Path) -> None:
    import sqlite3

    con = sqlite3.connect(db)
    for (pid,) in con.execute("SELECT pid FROM worker WHERE status = 'running'"):
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
    con.close()
    time.sleep(2)


def polling_cpu(folder: Path, window_s: float) -> list[list[str]]:
    db = folder / "pend" / "logbook.db"
    slug = entry(folder, db, "pending", 500, 0, "time: 5\nmax_running: 1000\nsbatch: [--hold]")
    logbook(db, "run", slug, "--executor", "slurm", "--no-worker", "--yes", cwd=folder)
    rows = []
    for poll in (5.0, 1.0):
        worker = subprocess.Popen([sys.executable, "-m", "logbook", "--db", str(db), "worker", "--executor", "slurm",
                                   "--slurm-poll", str(poll)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until all 1,000 are submitted and recorded
            if _submitted(db):
                break
            time.sleep(0.5)
        time.sleep(2)
        before, t0 = cpu_seconds(worker.pid), time.monotonic()
        time.sleep(window_s)
        used, elapsed = cpu_seconds(worker.pid) - before, time.monotonic() - t0
        worker.terminate()
        worker.communicate(timeout=60)
        rows.append([f"worker CPU, 1,000 pending tasks, sacct every {poll:g} s", f"{used / elapsed * 100:.2f}% of a core",
                     f"{used:.2f} CPU s over {elapsed:.0f} s"])
    jobs = {k.split("_")[0] for k in _job_ids(db)}
    subprocess.run(["scancel", *jobs], check=False)
    return rows


def _job_ids(db: Path) -> list[str]:
    import sqlite3

    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT slurm_job_id FROM run WHERE slurm_job_id IS NOT NULL")]
    con.close()
    return [i for i in ids if i[0].isdigit()]


def _submitted(db: Path) -> bool:
    return len(_job_ids(db)) == 1000


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("benchmarks/slurm.py: needs root to start the test cluster (tests/slurm/cluster.sh)")
    subprocess.run([str(CLUSTER), "stop", str(TEST_STATE)], capture_output=True)
    env = {**os.environ, "SLURM_TEST_CPUS": "100", "SLURM_TEST_MEMORY": "16000"}
    subprocess.run([str(CLUSTER), "start", str(STATE)], check=True, env=env, capture_output=True)
    os.environ["SLURM_CONF"] = str(STATE / "etc" / "slurm.conf")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            rows = submission_cost(folder)
            rows += time_to_running(folder)
            rows += polling_cpu(folder, window_s=30.0)
    finally:
        subprocess.run([str(CLUSTER), "stop", str(STATE)], capture_output=True)
    record("slurm", "Slurm executor: submission, start-up and polling costs", ["measure", "value", "note"], rows, [
        "Single-node Slurm 22.05 (slurmctld, slurmd, slurmdbd with MariaDB) on this machine, started by",
        "tests/slurm/cluster.sh with the node declaring 100 CPUs; the machine has "
        f"{os.cpu_count()} cores, so 100 running tasks share them (they sleep).",
        "Submission goes through the executor's submitit path (pickling each task, writing the sbatch script);",
        "tasks were submitted held (--hold) and cancelled. Polling: one `sacct` call per poll for all jobs.",
        "Run: .venv/bin/python benchmarks/slurm.py",
    ])


if __name__ == "__main__":
    main()
