"""Hypothesis files: parse YAML or TOML and validate into plain, frozen dataclasses.

Every problem is reported, not just the first, each as ``FILE: field: what was expected``; the
caller gets one InputError holding all the lines and nothing is written anywhere.
"""

from __future__ import annotations

import json
import math
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from logbook.errors import InputError

GOALS = ("minimize", "maximize")
MIN_SEEDS = 5  # the verdict needs at least five finite seeds per arm
MAX_SEEDS = 10_000
VARIANCE_SOURCES = ("init", "data", "noise", "split")  # the seed streams a variance study can vary
COMMAND_PLACEHOLDERS = ("seed", "run_dir", *(f"seed_{s}" for s in VARIANCE_SOURCES))
MIN_STUDY_SEEDS, MAX_STUDY_SEEDS = 3, 1000
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
METRIC_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
TRAINER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TRAINER_REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

FIELDS = {
    "title": "required: a one-line title",
    "hypothesis": "required: the claim in words",
    "metric": "required: the metric the verdict is about",
    "goal": "required: minimize or maximize",
    "min_effect": "required: δ, the smallest effect worth claiming, or auto",
    "alpha": "optional: significance level, default 0.05",
    "seeds": "required: seeds per arm",
    "trainer": "required: a trainer name, module:callable, or {command: ..., metrics: ...}",
    "arms": "required: a mapping of arm name to config",
    "baseline": "optional: which arm is the baseline",
    "tags": "optional: a list of tags",
    "deterministic": "optional: ask trainers for deterministic algorithms",
    "notes": "optional: free text",
    "variance_study": "optional: {sources: [init, data, noise, split], seeds: N}",
}
TRAINER_FIELDS = ("name", "command", "metrics", "timeout", "varies")


@dataclass(frozen=True)
class TrainerSpec:
    """How the arms are trained: a registered trainer (``name``) or a shell-free ``command``."""

    name: str | None = None
    command: str | None = None
    metrics: dict[str, str] = field(default_factory=dict)  # metric name -> regex with one group
    timeout: float | None = None  # seconds per run
    varies: tuple[str, ...] = ()  # command trainer: sources its script reads from LOGBOOK_SEED_<SOURCE>

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.command is not None:
            out["command"] = self.command
            out["metrics"] = dict(self.metrics)
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.varies:
            out["varies"] = list(self.varies)
        return out

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"command: {self.command}"


@dataclass(frozen=True)
class ArmSpec:
    name: str
    role: str  # baseline or candidate
    config: dict[str, Any]


@dataclass(frozen=True)
class EntrySpec:
    """A validated hypothesis file."""

    title: str
    hypothesis: str
    metric: str
    goal: str
    min_effect: float | None  # None: the default rule ("auto")
    alpha: float
    seeds: int
    trainer: TrainerSpec
    arms: tuple[ArmSpec, ...]
    baseline: str
    tags: tuple[str, ...] = ()
    deterministic: bool = False
    notes: str = ""
    source_path: str | None = None
    source_text: str = ""
    variance_study: dict[str, Any] | None = None  # {"sources": [...], "seeds": n}

    @property
    def candidates(self) -> tuple[ArmSpec, ...]:
        return tuple(a for a in self.arms if a.role == "candidate")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error, not a silent overwrite."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_text(text: str, fmt: str, label: str) -> Any:
    """Parse ``text`` as ``fmt`` ('yaml' or 'toml'); syntax errors become one-line InputErrors."""
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{label}: (syntax): expected valid TOML ({exc})") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{label}: (syntax): expected valid YAML{where} ({exc.problem or exc.context})") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: (syntax): expected valid YAML ({exc})") from exc


def format_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".toml":
        return "toml"
    return None


def load_entry_file(path: str | Path) -> EntrySpec:
    """Read and validate a hypothesis file. Raises InputError with one line per problem."""
    path = Path(path)
    label = str(path)
    fmt = format_of(path)
    if fmt is None:
        raise InputError(f"{label}: (file): expected a .yaml, .yml or .toml hypothesis file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{label}: (file): no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{label}: (file): expected a readable UTF-8 text file ({exc})") from exc
    data = parse_text(text, fmt, label)
    return validate(data, label=label, source_path=str(path.resolve()), source_text=text)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(value: Any) -> float | None:
    """A finite float from a number or a numeric string (YAML reads ``1e-2`` as a string)."""
    if _is_number(value):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_compatible(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def validate(data: Any, *, label: str, source_path: str | None = None, source_text: str = "") -> EntrySpec:
    """Validate parsed hypothesis-file content. Raises InputError listing every problem."""
    problems: list[str] = []

    def bad(field_name: str, expected: str) -> None:
        problems.append(f"{label}: {field_name}: {expected}")

    if not isinstance(data, dict):
        raise InputError(f"{label}: (document): expected a mapping of fields (title, hypothesis, metric, ...)")

    for key in data:
        if key not in FIELDS:
            bad(str(key), f"unknown field; expected one of {', '.join(FIELDS)}")
    for key, what in FIELDS.items():
        if what.startswith("required") and key not in data:
            bad(key, f"missing; {what}")

    def text_field(key: str, *, max_len: int | None = None) -> str:
        value = data.get(key)
        if key not in data:
            return ""
        if not isinstance(value, str) or not value.strip():
            bad(key, f"expected a non-empty string, got {_show(value)}")
            return ""
        if max_len and len(value.strip()) > max_len:
            bad(key, f"expected at most {max_len} characters, got {len(value.strip())}")
        return value.strip()

    title = text_field("title", max_len=200)
    if title and "\n" in title:
        bad("title", "expected a single line")
    statement = text_field("hypothesis")

    metric = ""
    if "metric" in data:
        metric = data["metric"]
        if not isinstance(metric, str) or not METRIC_RE.match(metric):
            bad("metric", f"expected a metric name (letters, digits, _ . / -), got {_show(metric)}")
            metric = ""

    goal = ""
    if "goal" in data:
        goal = data["goal"]
        if goal not in GOALS:
            bad("goal", f"expected minimize or maximize, got {_show(goal)}")
            goal = ""

    min_effect: float | None = None
    if "min_effect" in data:
        raw = data["min_effect"]
        if raw == "auto":
            min_effect = None
        else:
            number = _as_float(raw)
            if number is None or number < 0:
                bad("min_effect", f"expected a finite number ≥ 0 (in metric units) or auto, got {_show(raw)}")
            else:
                min_effect = number

    alpha = 0.05
    if "alpha" in data:
        number = _as_float(data["alpha"])
        if number is None or not 0 < number < 0.5:
            bad("alpha", f"expected a number between 0 and 0.5 (exclusive), got {_show(data['alpha'])}")
        else:
            alpha = number

    seeds = 0
    if "seeds" in data:
        raw = data["seeds"]
        if not isinstance(raw, int) or isinstance(raw, bool) or not MIN_SEEDS <= raw <= MAX_SEEDS:
            bad(
                "seeds",
                f"expected a whole number of seeds per arm from {MIN_SEEDS} (the verdict needs five) "
                f"to {MAX_SEEDS}, got {_show(raw)}",
            )
        else:
            seeds = raw

    arms: list[ArmSpec] = []
    if "arms" in data:
        raw_arms = data["arms"]
        if not isinstance(raw_arms, dict) or len(raw_arms) < 2:
            bad("arms", f"expected a mapping of at least two arms (a baseline and a candidate), got {_show(raw_arms)}")
        else:
            for name, config in raw_arms.items():
                if not isinstance(name, str) or not NAME_RE.match(name):
                    bad(f"arms.{name}", "expected an arm name of letters, digits, _ . - (starting with a letter or digit)")
                    continue
                if config is None:
                    config = {}
                if not isinstance(config, dict):
                    bad(f"arms.{name}", f"expected a mapping of config keys to values, got {_show(config)}")
                    continue
                if not all(isinstance(k, str) for k in config):
                    bad(f"arms.{name}", "expected string config keys")
                    continue
                if not _json_compatible(config):
                    bad(f"arms.{name}", "expected JSON-compatible values (numbers, strings, booleans, lists, mappings)")
                    continue
                arms.append(ArmSpec(name=name, role="candidate", config=config))

    baseline = ""
    names = [a.name for a in arms]
    if "baseline" in data:
        raw = data["baseline"]
        if not isinstance(raw, str) or (names and raw not in names):
            bad("baseline", f"expected the name of an arm ({', '.join(names) or 'none valid'}), got {_show(raw)}")
        else:
            baseline = raw
    elif names:
        baseline = "baseline" if "baseline" in names else names[0]
    arms = [ArmSpec(a.name, "baseline" if a.name == baseline else "candidate", a.config) for a in arms]

    tags: tuple[str, ...] = ()
    if "tags" in data:
        raw = data["tags"]
        if not isinstance(raw, list) or not all(isinstance(t, str) and t.strip() for t in raw):
            bad("tags", f"expected a list of non-empty strings, got {_show(raw)}")
        else:
            tags = tuple(dict.fromkeys(t.strip() for t in raw))

    deterministic = False
    if "deterministic" in data:
        if not isinstance(data["deterministic"], bool):
            bad("deterministic", f"expected true or false, got {_show(data['deterministic'])}")
        else:
            deterministic = data["deterministic"]

    notes = ""
    if "notes" in data:
        if not isinstance(data["notes"], str):
            bad("notes", f"expected a string, got {_show(data['notes'])}")
        else:
            notes = data["notes"].strip()

    trainer = _validate_trainer(data.get("trainer"), arms, bad) if "trainer" in data else None
    study = _validate_study(data["variance_study"], trainer, bad) if "variance_study" in data else None

    if problems:
        raise InputError(problems[0], problems)
    assert trainer is not None
    return EntrySpec(
        title=title,
        hypothesis=statement,
        metric=metric,
        goal=goal,
        min_effect=min_effect,
        alpha=alpha,
        seeds=seeds,
        trainer=trainer,
        arms=tuple(arms),
        baseline=baseline,
        tags=tags,
        deterministic=deterministic,
        notes=notes,
        source_path=source_path,
        source_text=source_text,
        variance_study=study,
    )


def _validate_study(raw: Any, trainer: TrainerSpec | None, bad) -> dict[str, Any] | None:  # noqa: ANN001
    """``variance_study: {sources: [...], seeds: N}``. A command trainer must be able to vary each
    source (its placeholder in the command, or listed in ``trainer.varies``); a named trainer's
    ``VARIES`` is checked when the entry is added, by loading it."""
    if not isinstance(raw, dict) or set(raw) != {"sources", "seeds"}:
        bad("variance_study", f"expected a mapping with exactly sources and seeds, got {_show(raw)}")
        return None
    sources, seeds = raw["sources"], raw["seeds"]
    ok = True
    if (not isinstance(sources, list) or not sources or len(set(map(str, sources))) != len(sources)
            or not all(s in VARIANCE_SOURCES for s in sources)):
        bad("variance_study.sources", f"expected a non-empty list of distinct sources from {', '.join(VARIANCE_SOURCES)}, got {_show(sources)}")
        ok = False
    if not isinstance(seeds, int) or isinstance(seeds, bool) or not MIN_STUDY_SEEDS <= seeds <= MAX_STUDY_SEEDS:
        bad("variance_study.seeds", f"expected a whole number of runs per source from {MIN_STUDY_SEEDS} to {MAX_STUDY_SEEDS}, got {_show(seeds)}")
        ok = False
    if ok and trainer is not None and trainer.command is not None:
        supported = {s for s in VARIANCE_SOURCES if "{seed_" + s + "}" in trainer.command} | set(trainer.varies)
        missing = [s for s in sources if s not in supported]
        if missing:
            bad("variance_study.sources", f"expected sources the command can vary (placeholders {{seed_<source>}} or trainer.varies); "
                f"it cannot vary {', '.join(missing)}")
            ok = False
    return {"sources": list(sources), "seeds": seeds} if ok else None


def _validate_trainer(raw: Any, arms: list[ArmSpec], bad) -> TrainerSpec | None:  # noqa: ANN001
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        bad("trainer", f"expected a trainer name, module:callable, or a mapping with command, got {_show(raw)}")
        return None
    ok = True
    for key in raw:
        if key not in TRAINER_FIELDS:
            bad(f"trainer.{key}", f"unknown field; expected one of {', '.join(TRAINER_FIELDS)}")
            ok = False
    name, command = raw.get("name"), raw.get("command")
    if (name is None) == (command is None):
        bad("trainer", "expected exactly one of a trainer name (or module:callable) and a command")
        return None

    varies: tuple[str, ...] = ()
    if "varies" in raw:
        value = raw["varies"]
        if command is None or not isinstance(value, list) or not all(v in VARIANCE_SOURCES for v in value):
            bad("trainer.varies", f"expected, with a command trainer, a list of sources from {', '.join(VARIANCE_SOURCES)}, got {_show(value)}")
            ok = False
        else:
            varies = tuple(dict.fromkeys(value))

    timeout = None
    if "timeout" in raw:
        timeout = _as_float(raw["timeout"])
        if timeout is None or timeout <= 0:
            bad("trainer.timeout", f"expected a positive number of seconds per run, got {_show(raw['timeout'])}")
            ok = False

    if name is not None:
        if not isinstance(name, str) or not (TRAINER_NAME_RE.match(name) or TRAINER_REF_RE.match(name)):
            bad("trainer", f"expected a registered trainer name or module:callable, got {_show(name)}")
            return None
        if "metrics" in raw:
            bad("trainer.metrics", "expected only with a command trainer (a registered trainer reports its own metrics)")
            return None
        return TrainerSpec(name=name, timeout=timeout) if ok else None

    if not isinstance(command, str) or not command.strip():
        bad("trainer.command", f"expected a non-empty command line, got {_show(command)}")
        return None
    try:
        placeholders = [f for _, f, _, _ in string.Formatter().parse(command) if f is not None]
    except ValueError as exc:
        bad("trainer.command", f"expected {{placeholders}} with balanced braces ({exc})")
        return None
    for placeholder in placeholders:
        if placeholder in COMMAND_PLACEHOLDERS:
            continue
        missing = [a.name for a in arms if placeholder not in a.config]
        if not placeholder.isidentifier() or missing:
            where = f" (missing in arms: {', '.join(missing)})" if missing else ""
            bad(
                "trainer.command",
                f"expected placeholder {{{placeholder}}} to be {{seed}}, {{run_dir}} or a config key of every arm{where}",
            )
            ok = False

    metrics: dict[str, str] = {}
    raw_metrics = raw.get("metrics", {})
    if not isinstance(raw_metrics, dict):
        bad("trainer.metrics", f"expected a mapping of metric name to regular expression, got {_show(raw_metrics)}")
        return None
    for metric_name, pattern in raw_metrics.items():
        where = f"trainer.metrics.{metric_name}"
        if not isinstance(metric_name, str) or not METRIC_RE.match(metric_name):
            bad(where, "expected a metric name (letters, digits, _ . / -)")
            ok = False
            continue
        try:
            groups = re.compile(pattern).groups if isinstance(pattern, str) else -1
        except re.error as exc:
            bad(where, f"expected a valid regular expression ({exc})")
            ok = False
            continue
        if groups != 1:
            bad(where, f"expected a regular expression with exactly one capture group for the value, got {_show(pattern)}")
            ok = False
            continue
        metrics[metric_name] = pattern
    return TrainerSpec(command=command.strip(), metrics=metrics, timeout=timeout, varies=varies) if ok else None
