"""Seeds and determinism for one run.

A run's seed derives independent streams (model init, data order, dropout/noise, data split) with NumPy's
SeedSequence, so changing how data is shuffled never changes the initialisation. Python's,
NumPy's and (when the trainer uses it) torch's global generators are seeded with the run seed.
Deterministic mode turns on torch's deterministic algorithms and cuDNN's deterministic settings;
``CUBLAS_WORKSPACE_CONFIG`` must be in the environment before CUDA starts, so the worker puts it
into the run's environment (``determinism_env``). What was set is returned, to be recorded.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any

import numpy as np

# Child i of SeedSequence.spawn does not depend on how many are spawned, so adding a stream at the
# end never changes the earlier ones.
STREAMS = ("init", "data", "noise", "split")
CUBLAS_WORKSPACE = ":4096:8"


def derive_streams(seed: int) -> dict[str, int]:
    """Independent 32-bit seeds for each stream, from ``SeedSequence(seed).spawn``."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: int(child.generate_state(1)[0]) for name, child in zip(STREAMS, children)}


def held_streams(study: dict[str, Any] | None, seed: int) -> dict[str, int] | None:
    """The streams of a verdict run (planned, extra or audit seed) of an entry whose variance
    study declares ``verdict_holds``: the sources the verdict's seeds do not vary, as a script
    with a hard-coded data seed would not. Those streams come from the study's fixed seed, the
    varied ones and the global seed from ``seed``. None when nothing is held (the usual case:
    every stream derives from the run's seed)."""
    held = (study or {}).get("verdict_holds")
    if not held or "fixed_seed" not in study:
        return None
    fixed = derive_streams(int(study["fixed_seed"]))
    own = derive_streams(seed)
    return {**{name: fixed[name] if name in held else own[name] for name in STREAMS}, "global": seed}


def determinism_env(deterministic: bool, seed: int) -> dict[str, str]:
    """Environment variables a run needs before its process starts."""
    env = {"PYTHONHASHSEED": str(seed % 2**32)}
    if deterministic:
        env["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    return env


def seed_everything(seed: int, deterministic: bool) -> dict[str, Any]:
    """Seed Python, NumPy and, if the trainer imported it, torch (all CUDA devices too).

    Torch is never imported here: a trainer that does not use it pays nothing for it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    record: dict[str, Any] = {
        "seed": seed,
        "streams": derive_streams(seed),
        "python": True,
        "numpy": True,
        "torch": False,
        "deterministic": deterministic,
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)  # seeds the CPU and every CUDA device
        record["torch"] = True
        if deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        record["torch_deterministic_algorithms"] = bool(torch.are_deterministic_algorithms_enabled())
        record["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    return record
