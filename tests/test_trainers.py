"""The built-in trainers: they train, and K seeds trained at once equal the same seeds trained alone."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from logbook.engine.plugins import load_trainer, trainer_names
from logbook.entries.seeding import derive_streams
from trainers import digits, irreproducibility, seq_gating
from trainers.batched import SeedBatch, sample_all_batches, sample_batches
from trainers.protocol import RunContext


class Recorder:
    def __init__(self):
        self.points, self.finals, self.predictions = [], {}, None

    def log(self, step, metrics):
        self.points.append((step, dict(metrics)))

    def final(self, metrics):
        self.finals.update(metrics)

    def save_predictions(self, predictions):
        self.predictions = predictions.detach().cpu().numpy() if hasattr(predictions, "detach") else np.asarray(predictions)


def contexts(seeds, tmp_path):
    return [RunContext(seed=s, streams=derive_streams(s), device="cpu", run_dir=tmp_path, reporter=Recorder()) for s in seeds]


TINY = {
    "seq-gating": (seq_gating, {"steps": 25, "hidden": 8, "seq_len": 10, "train_size": 200, "val_size": 40}, "val_loss"),
    "seq-gating gated": (seq_gating, {"cell": "gated", "steps": 25, "hidden": 8, "seq_len": 10, "train_size": 200, "val_size": 40}, "val_loss"),
    "irreproducibility smelu": (irreproducibility, {"activation": "smelu", "steps": 30, "train_size": 400, "eval_size": 100, "shuffle_window": 50}, "eval_acc"),
    "irreproducibility gelu": (irreproducibility, {"activation": "gelu", "steps": 30, "train_size": 400, "eval_size": 100, "width": 16}, "eval_acc"),
    "digits mlp": (digits, {"steps": 30, "dropout": 0.2}, "eval_acc"),
    "digits cnn": (digits, {"model": "cnn", "steps": 15, "channels": 4}, "eval_acc"),
}


@pytest.mark.parametrize("case", list(TINY))
def test_each_trainer_runs_a_tiny_config_on_cpu(case, tmp_path):
    module, config, metric = TINY[case]
    (ctx,) = contexts([7], tmp_path)
    finals = module.train(config, ctx)
    assert math.isfinite(finals[metric]) and math.isfinite(finals["train_loss"])
    steps = [step for step, metrics in ctx.reporter.points]
    assert steps[0] == 0 and steps[-1] == config["steps"] - 1 and all("loss" in m for _, m in ctx.reporter.points)
    predictions = ctx.reporter.predictions
    assert predictions is not None and np.isfinite(predictions).all()
    if module is not seq_gating:  # classifiers save class probabilities
        assert np.allclose(predictions.sum(axis=1), 1.0)


@pytest.mark.parametrize("case", list(TINY))
def test_batched_equals_sequential_in_float64(case, tmp_path):
    module, config, _ = TINY[case]
    config = {**config, "dtype": "float64"}
    seeds = [3, 141, 59265]
    batch = contexts(seeds, tmp_path)
    together = module.train_batch(config, batch)
    for seed, result, ctx in zip(seeds, together, batch):
        (alone,) = contexts([seed], tmp_path)
        single = module.train(config, alone)
        for name, value in result.items():
            assert abs(value - single[name]) <= 1e-10, (name, value, single[name])
        assert np.max(np.abs(ctx.reporter.predictions - alone.reporter.predictions)) <= 1e-10
        assert [m["loss"] for _, m in ctx.reporter.points] == pytest.approx([m["loss"] for _, m in alone.reporter.points], abs=1e-10)


def test_batched_float32_metrics_match_within_tolerance(tmp_path):
    """In float32, batched and per-seed kernels round differently; final metrics agree to 1e-4."""
    module, config, _ = TINY["digits mlp"]
    batch = contexts([1, 2, 3, 4], tmp_path)
    together = module.train_batch(config, batch)
    for seed, result in zip([1, 2, 3, 4], together):
        single = module.train(config, contexts([seed], tmp_path)[0])
        assert result["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-4)
        assert result["eval_acc"] == pytest.approx(single["eval_acc"], abs=1 / 500 + 1e-9)


def test_seeds_differ_and_a_seed_repeats(tmp_path):
    module, config, metric = TINY["irreproducibility smelu"]
    a, b = module.train_batch(config, contexts([1, 2], tmp_path))
    again = module.train(config, contexts([1], tmp_path)[0])
    assert a[metric] == again[metric] and a["eval_loss"] != b["eval_loss"]


def test_smelu_matches_its_definition():
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    beta = 1.3
    ref = np.where(x <= -beta, 0.0, np.where(x >= beta, x, (x + beta) ** 2 / (4 * beta)))
    assert torch.allclose(irreproducibility.smelu(x, beta), torch.as_tensor(ref))


def test_window_order():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    fixed = irreproducibility.window_order(gens, 12, 1)
    assert fixed.tolist() == [list(range(12))] * 2
    windowed = irreproducibility.window_order(gens, 12, 4)
    for row in windowed.tolist():
        assert sorted(row) == list(range(12))
        assert all(sorted(row[i : i + 4]) == list(range(i, i + 4)) for i in (0, 4, 8))
    full = irreproducibility.window_order(gens, 12, 12)
    assert full[0].tolist() != full[1].tolist()


def test_gradient_clipping_is_per_seed(tmp_path):
    model = SeedBatch(lambda: torch.nn.Linear(3, 2).double(), contexts([1, 2], tmp_path), torch.float64, torch.device("cpu"))
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    scale = torch.tensor([1.0, 100.0], dtype=torch.float64).view(2, 1)
    (model(x).sum(dim=(1, 2)) * scale.view(2)).sum().backward()
    grads = [p.grad.clone() for p in model.params.values()]
    norms = model.clip_grad_norm_(1.0)
    for k in range(2):
        per_seed = [g[k] for g in grads]
        reference = torch.sqrt(sum(g.pow(2).sum() for g in per_seed))
        assert norms[k] == pytest.approx(float(reference))
        clipped = torch.sqrt(sum(p.grad[k].pow(2).sum() for p in model.params.values()))
        assert float(clipped) == pytest.approx(min(1.0, float(reference)), rel=1e-5)


def test_the_hand_batched_cnn_is_each_seeds_own_cnn(tmp_path):
    """digits' grouped-convolution forward against each seed's nn.Module forward: outputs and gradients."""
    batch = contexts([5, 6, 7], tmp_path)
    model = SeedBatch(lambda: digits.CNN(4), batch, torch.float64, torch.device("cpu"), forward=digits.batched_cnn)
    x = torch.rand(3, 11, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(3, 11, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = model(x)
    (out * weights).sum().backward()
    assert out.shape == (3, 11, 10)
    for k, ctx in enumerate(batch):
        torch.manual_seed(int(ctx.streams["init"]))
        alone = digits.CNN(4).double()
        expected = alone(x[k], None)
        (expected * weights[k]).sum().backward()
        assert torch.allclose(out[k], expected, rtol=0, atol=1e-12)
        for name, parameter in alone.named_parameters():
            assert torch.allclose(model.params[name][k], parameter.detach(), rtol=0, atol=0)
            assert torch.allclose(model.params[name].grad[k], parameter.grad, rtol=0, atol=1e-12), name


def test_a_runs_batches_drawn_at_once_equal_the_batches_drawn_step_by_step():
    at_once = sample_all_batches([torch.Generator().manual_seed(s) for s in (4, 9)], 1297, 64, 30)
    gens = [torch.Generator().manual_seed(s) for s in (4, 9)]
    by_step = torch.stack([sample_batches(gens, 1297, 64) for _ in range(30)])
    assert at_once.shape == (30, 2, 64) and torch.equal(at_once, by_step)


def test_the_batched_cnn_trains_under_deterministic_algorithms(tmp_path):
    """A run asking for determinism switches torch to deterministic kernels; the CNN's must exist on CPU."""
    module, config, _ = TINY["digits cnn"]
    plain = module.train_batch(config, contexts([2, 3], tmp_path))
    torch.use_deterministic_algorithms(True)
    try:
        strict = module.train_batch(config, contexts([2, 3], tmp_path))
    finally:
        torch.use_deterministic_algorithms(False)
    assert strict == plain


def test_built_in_trainers_are_entry_points():
    assert {"seq-gating", "irreproducibility", "digits", "command"} <= set(trainer_names())
    assert load_trainer("digits") is digits.train and callable(load_trainer("digits").train_batch)


def test_the_worker_batches_seeds_of_one_arm(project):
    slug = project.entry("batched", "digits", {"baseline": {"steps": 10}, "wide": {"steps": 10, "hidden": 128}}, seeds=6, metric="eval_acc")
    project.entry("single", "fakes:noisy", {"baseline": {}, "cand": {}}, seeds=5)
    project.logbook("run", slug, "--no-worker")
    project.logbook("run", "single", "--no-worker")
    out = project.start_worker("--once", "--cpu-slots", "2", "--batch", "4").communicate(timeout=300)[0]
    runs = project.runs()
    assert all(r["status"] == "succeeded" for r in runs), out
    digits_runs = [r for r in runs if r["arm"] in ("baseline", "wide") and r["final_metrics"] and "eval_acc" in r["final_metrics"]]
    sizes = sorted(r["batch_size"] for r in digits_runs)
    assert sizes == [2] * 4 + [4] * 8  # 6 seeds per arm: a batch of 4, then of 2
    assert len({r["batch_id"] for r in digits_runs}) == 4
    assert all(json.loads(r["determinism"])["batch_size"] == r["batch_size"] for r in digits_runs)
    assert {r["batch_size"] for r in runs if r not in digits_runs} == {1}  # fakes:noisy cannot batch
    assert "does not train seeds in batches" in out


def test_demo_runs_end_to_end(tmp_path):
    db = tmp_path / "demo.db"
    out = subprocess.run([sys.executable, "-m", "logbook", "demo", "--no-tui", "--tiny", "--demo-db", str(db)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "[10/10]" in out.stdout and "gated vs baseline" in out.stdout and "Writeup with figures" in out.stdout
    con = sqlite3.connect(db)
    rows = con.execute("SELECT arm.hypothesis_id, status, batch_size, count(*) FROM run JOIN arm ON arm.id = run.arm_id "
                       "GROUP BY 1, 2, 3 ORDER BY 1").fetchall()
    # the gated-RNN entry, then the variance-study entry: per arm 5 planned and 3 × 3 study runs, one batch
    assert rows == [(1, "succeeded", 5, 10), (2, "succeeded", 14, 28)]
    assert "variance study of smooth-activation" in out.stdout and "init" in out.stdout
    con.close()
    writeup = Path(out.stdout.split("Writeup with figures: ")[1].split()[0])
    assert writeup.exists() and (writeup.parent / "figures").is_dir()
