"""Where an entry's runs execute, and the Slurm options they go out with.

Three places say it, the later overriding the earlier field by field: a repository-level
``logbook.toml`` (top-level ``executor = "slurm"`` and a ``[slurm]`` table), the entry file
(``executor: slurm`` and a ``slurm:`` mapping), and the flags of ``logbook run``. The slurm block
is not part of an entry's registered content: where seeds run does not change the claim.

Pure parsing and merging only (standard library and ``errors``), so the entry-file validator can
check a block at registration and the engine can resolve it at ``logbook run``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from logbook.errors import InputError

EXECUTORS = ("local", "slurm")
CONFIG_FILE = "logbook.toml"

# field -> what is expected (the message when it is not)
FIELDS = {
    "partition": "a partition name",
    "gpus_per_task": "a whole number of GPUs per task, 0 or more",
    "cpus_per_task": "a whole number of CPUs per task, 1 or more",
    "mem": "memory per task such as 4G or 16000M",
    "time": "a time limit in minutes, or D-HH:MM:SS / HH:MM:SS / MM:SS",
    "account": "an account name",
    "qos": "a quality-of-service name",
    "constraint": "a node feature constraint such as a100|h100",
    "sbatch": "a list of extra sbatch options such as [--exclusive, --reservation=lab]",
    "max_running": "a whole number of array tasks running at once (the %K of --array), 1 or more",
    "max_requeues": "a whole number of automatic requeues after TIMEOUT, PREEMPTED or NODE_FAIL, 0 or more",
    "shared_fs": "true when the logbook folder is on a file system every node sees (skips the check)",
}
DEFAULTS: dict[str, Any] = {"time": 60, "max_running": 64, "max_requeues": 2, "cpus_per_task": 1}

_NAME_RE = re.compile(r"^[A-Za-z0-9_.,|&()\[\]:*-]+$")
_MEM_RE = re.compile(r"^\d+(\.\d+)?[KMGT]?B?$", re.IGNORECASE)
_TIME_RE = re.compile(r"^(\d+-)?(\d{1,2}:)?\d{1,2}(:\d{1,2})?$")
_SBATCH_RE = re.compile(r"^--[a-z][a-z0-9-]*(=\S.*)?$")


def _whole(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _checks() -> dict[str, Callable[[Any], bool]]:
    name = lambda v: isinstance(v, str) and bool(_NAME_RE.match(v))  # noqa: E731
    return {
        "partition": name, "account": name, "qos": name, "constraint": name,
        "gpus_per_task": lambda v: _whole(v, 0),
        "cpus_per_task": lambda v: _whole(v, 1),
        "mem": lambda v: isinstance(v, str) and bool(_MEM_RE.match(v)),
        "time": lambda v: _whole(v, 1) or (isinstance(v, str) and bool(_TIME_RE.match(v))),
        "sbatch": lambda v: isinstance(v, list) and all(isinstance(o, str) and _SBATCH_RE.match(o) for o in v),
        "max_running": lambda v: _whole(v, 1),
        "max_requeues": lambda v: _whole(v, 0),
        "shared_fs": lambda v: isinstance(v, bool),
    }


def check_block(raw: Any, where: str) -> dict[str, Any]:
    """A slurm block as given (None for none); raises InputError naming ``where``.field, or the
    flag (--field-name) when ``where`` is "flags"."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping of Slurm options ({', '.join(FIELDS)}), got {raw!r}")
    checks = _checks()
    for key, value in raw.items():
        name = f"--{key.replace('_', '-')}" if where == "flags" else f"{where}.{key}"
        if key not in FIELDS:
            raise InputError(f"{name}: unknown field; expected one of {', '.join(FIELDS)}")
        if not checks[key](value):
            raise InputError(f"{name}: expected {FIELDS[key]}, got {value!r}")
    return dict(raw)


def check_executor(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if raw not in EXECUTORS:
        raise InputError(f"{where}: expected one of {', '.join(EXECUTORS)}, got {raw!r}")
    return str(raw)


def time_minutes(value: int | str) -> int:
    """A Slurm time limit in whole minutes (rounded up), as submitit's ``timeout_min`` takes it."""
    if isinstance(value, int):
        return value
    days, _, rest = value.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if len(parts) == 1:
        seconds = parts[0] * (3600 if days else 60)  # "D-HH", or bare minutes as in sbatch
    elif len(parts) == 2:
        seconds = parts[0] * 60 + parts[1] if not days else parts[0] * 3600 + parts[1] * 60
    else:
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    seconds += int(days or 0) * 86400
    return max(1, -(-seconds // 60))


def find_config_file(start: Path | None) -> Path | None:
    """``logbook.toml`` in ``start`` or the nearest folder above it."""
    if start is None:
        return None
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def load_config_file(path: Path | None) -> tuple[str | None, dict[str, Any]]:
    """The executor and slurm block of a logbook.toml (None and {} without one)."""
    if path is None:
        return None, {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: expected a TOML file ({exc})") from None
    unknown = set(data) - {"executor", "slurm"}
    if unknown:
        raise InputError(f"{path}: {sorted(unknown)[0]}: unknown field; expected executor or [slurm]")
    return check_executor(data.get("executor"), f"{path}: executor"), check_block(data.get("slurm"), f"{path}: slurm")


def resolve(layers: list[tuple[str | None, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """Merge (executor, block) layers, later ones winning field by field, over the defaults."""
    executor = "local"
    block = dict(DEFAULTS)
    for layer_executor, layer_block in layers:
        executor = layer_executor or executor
        block.update({k: v for k, v in layer_block.items() if v is not None})
    return executor, block


def entry_file_settings(entry: Any) -> tuple[str | None, dict[str, Any]]:
    """The executor and slurm block of the entry file as registered (its stored source text)."""
    if not entry.source_text:
        return None, {}
    from logbook.entries.file import format_of, parse_text

    fmt = format_of(Path(entry.source_path or "entry.yaml")) or "yaml"
    data = parse_text(entry.source_text, fmt, entry.source_path or entry.slug)
    if not isinstance(data, dict):
        return None, {}
    return check_executor(data.get("executor"), "executor"), check_block(data.get("slurm"), "slurm")


def run_settings(entry: Any, flags: dict[str, Any], executor_flag: str | None,
                 cwd: Path | None = None) -> tuple[str, dict[str, Any]]:
    """Executor and Slurm options for ``logbook run``: logbook.toml, then the entry file, then flags."""
    start = Path(entry.repo_root) if entry.repo_root and Path(entry.repo_root).is_dir() else (cwd or Path.cwd())
    layers = [load_config_file(find_config_file(start)), entry_file_settings(entry),
              (executor_flag, check_block({k: v for k, v in flags.items() if v not in (None, ())}, "flags"))]
    return resolve(layers)
