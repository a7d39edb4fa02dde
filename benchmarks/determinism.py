"""Two deterministic runs of the same seed give bitwise-equal results, through the real worker.

Each built-in trainer gets an entry with ``deterministic: true`` and two arms with the same
config, so every seed runs twice (in two processes forked by the launch server); the table
compares the two runs' prediction hashes and final metrics per seed. Meant for a GPU machine
(CUDA kernels are where determinism is at risk), it runs on CPU slots too.

Run: .venv/bin/python benchmarks/determinism.py
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _record import record  # noqa: E402
from engine import gpu_name, logbook  # noqa: E402  (also puts the project on sys.path)

WORKER_TIMEOUT_S = float(os.environ.get("DETERMINISM_TIMEOUT_S", "600"))
CASES = {
    "seq-gating": {"cell": "gated", "steps": 60, "train_size": 400, "val_size": 100},
    "irreproducibility": {"activation": "smelu", "steps": 100},
    "digits": {"model": "cnn", "steps": 100},
}


def main() -> None:
    from logbook.engine.executor import detect_gpus

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "det.db"
        slugs = {}
        for trainer, config in CASES.items():
            lines = [f"title: determinism {trainer}", "hypothesis: same seed, same bits", "metric: train_loss",
                     "goal: minimize", "min_effect: 0", "seeds: 5", f"trainer: {trainer}", "deterministic: true",
                     "arms:", f"  first: {json.dumps(config)}", f"  second: {json.dumps(config)}"]
            path = folder / f"{trainer}.yaml"
            path.write_text("\n".join(lines) + "\n")
            slugs[trainer] = json.loads(logbook(db, "new", str(path), "--register", "--json"))["slug"]
            logbook(db, "run", slugs[trainer], "--no-worker", "--yes")
        start = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), "worker", "--once"], text=True,
                                 capture_output=True, timeout=WORKER_TIMEOUT_S, env={**os.environ})
            print(out.stdout[-3000:], out.stderr[-3000:])
        except subprocess.TimeoutExpired as exc:
            print("worker timed out; its output:", exc.stdout, exc.stderr, sep="\n")
            for log in sorted(folder.rglob("*.log")) + sorted(folder.rglob("log.txt")):
                print(f"--- {log}", log.read_text(errors="replace")[-1500:], sep="\n")
            raise
        elapsed = time.perf_counter() - start
        con = sqlite3.connect(db)
        for trainer, slug in slugs.items():
            runs = con.execute(
                "SELECT arm.name, run.seed, run.status, run.predictions_sha256, run.final_metrics, run.device,"
                " run.determinism FROM run JOIN arm ON arm.id = run.arm_id JOIN hypothesis ON hypothesis.id ="
                " arm.hypothesis_id WHERE hypothesis.slug = ?", (slug,)).fetchall()
            by_seed: dict[int, dict[str, tuple]] = {}
            for arm, seed, status, sha, finals, device, determinism in runs:
                by_seed.setdefault(seed, {})[arm] = (status, sha, finals, device, json.loads(determinism or "{}"))
            equal = sum(1 for pair in by_seed.values() if len(pair) == 2 and pair["first"][0] == "succeeded"
                        and pair["first"][1:3] == pair["second"][1:3])
            devices = sorted({v[3] for pair in by_seed.values() for v in pair.values()})
            switches = {v[4].get("torch_deterministic_algorithms") for pair in by_seed.values() for v in pair.values()}
            rows.append([trainer, json.dumps(CASES[trainer]), ", ".join(map(str, devices)), f"{equal} of {len(by_seed)}",
                         "on" if switches == {True} else f"{switches}"])
        con.close()
    where = gpu_name() if detect_gpus() else "CPU"
    record("determinism_" + ("cuda" if detect_gpus() else "cpu"), f"Deterministic runs repeat bit for bit ({where})",
           ["trainer", "config", "device", "seeds whose two runs are bitwise equal", "deterministic algorithms"], rows,
           ["Each seed ran twice (two arms with one config) in its own forked process; equal means the same",
            "SHA-256 of the saved predictions and the same final metrics.",
            f"Worker wall time for all runs: {elapsed:.0f} s.",
            "Command: .venv/bin/python benchmarks/determinism.py"])


if __name__ == "__main__":
    main()
