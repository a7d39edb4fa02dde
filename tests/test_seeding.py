"""Seed streams and the seeding of global generators."""

import random

import numpy as np

from logbook.entries.seeding import derive_streams, determinism_env, seed_everything


def test_streams_are_reproducible_distinct_and_independent_of_each_other():
    a, b = derive_streams(12345), derive_streams(12345)
    assert a == b and list(a) == ["init", "data", "noise", "split"]
    assert len(set(a.values())) == 4
    assert derive_streams(12346) != a
    # the same as NumPy's own SeedSequence spawning, independently computed; spawning three (as
    # before the split stream existed) gives the same first three streams
    children = np.random.SeedSequence(12345).spawn(3)
    assert list(a.values())[:3] == [int(c.generate_state(1)[0]) for c in children]


def test_seed_everything_seeds_python_and_numpy_without_importing_torch(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    record = seed_everything(99, deterministic=False)
    first = (random.random(), np.random.rand())
    seed_everything(99, deterministic=False)
    assert (random.random(), np.random.rand()) == first
    assert record["torch"] is False and "torch" not in sys.modules


def test_determinism_env():
    assert determinism_env(True, 2**33 + 5) == {"PYTHONHASHSEED": "5", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    assert determinism_env(False, 7) == {"PYTHONHASHSEED": "7"}


def test_torch_is_seeded_when_the_trainer_uses_it():
    import torch

    seed_everything(5, deterministic=True)
    first = torch.rand(3)
    record = seed_everything(5, deterministic=True)
    assert torch.equal(first, torch.rand(3))
    assert record["torch"] is True and record["torch_deterministic_algorithms"] is True
    torch.use_deterministic_algorithms(False)
