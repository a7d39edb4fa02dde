"""Hypothesis files: read YAML or TOML safely, validate against the schema, return plain dataclasses.

Every problem is reported, not just the first, each as ``FILE: field: what was expected``; the
caller gets one InputError holding all the lines and nothing is written anywhere. What a file may
hold is declared once, in :mod:`logbook.entries.schema`; this module guards the way there: the
file's size, the parser (duplicate and complex keys, deep nesting, over-long numbers) and every
value in the document (control characters, nesting depth, the number of values, JSON types).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import ValidationError

from logbook.entries.problems import metric_overlaps, problems
from logbook.entries.schema import EntryFile, Trainer, show_value
from logbook.errors import InputError

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 20  # levels of mappings and lists anywhere in the file (arm configs included)
MAX_VALUES = 100_000  # values in the whole document, counting every alias where it is used
MULTILINE_FIELDS = ("hypothesis", "notes", "trainer.command")  # tab and newline allowed here only
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1
CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f]")
JSON_TYPES = "numbers, strings, booleans, lists, mappings"


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
    min_effect: float | None  # δ in metric units; None until a pilot-derived δ is resolved at registration
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
    min_effect_pilot: dict[str, Any] | None = None  # {from_pilot: ENTRY, sd_multiple: m}, resolved at registration
    executor: str = "local"
    slurm: dict[str, Any] | None = None  # the `slurm` block as written, for the Slurm executor
    variance_study: dict[str, Any] | None = None  # the `variance_study` block as written
    warnings: tuple[str, ...] = ()  # `FILE: field: warning: ...` lines about a valid file (printed, never fatal)

    @property
    def candidates(self) -> tuple[ArmSpec, ...]:
        return tuple(a for a in self.arms if a.role == "candidate")



# libyaml's parser is an order of magnitude faster than the pure-Python one (a 1 MB file in well
# under a second), but it recurses in C: the bracket pre-check below keeps it far from the C stack.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BRACKETS = 1_000  # unclosed [ or { counted over the raw text, quotes ignored: an upper bound


class _SafeKeyLoader(_BaseLoader):
    """YAML's safe loader, but keys must be plain scalars, each given once in its mapping."""


def _construct_mapping(loader: _SafeKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`: merged keys may be overridden by the keys written here
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "expected a plain key, not a list or mapping", key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_SafeKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_text(text: str, fmt: str, label: str) -> Any:
    """Parse ``text`` as ``fmt`` ('yaml' or 'toml'); any failure becomes a one-line InputError."""
    if _bracket_depth(text) > MAX_BRACKETS:
        raise InputError(f"{label}: (syntax): expected at most {MAX_DEPTH} levels of nesting")
    try:
        if fmt == "toml":
            return tomllib.loads(text)
        return yaml.load(text, Loader=_SafeKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{label}: (syntax): expected valid TOML ({exc})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{label}: (syntax): expected valid YAML{where} ({exc.problem or exc.context})") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: (syntax): expected valid YAML ({' '.join(str(exc).split())})") from exc
    except RecursionError as exc:
        raise InputError(f"{label}: (syntax): expected at most {MAX_DEPTH} levels of nesting") from exc
    except (ValueError, OverflowError) as exc:  # e.g. an integer beyond Python's digit limit
        reason = str(exc).split(";")[0]
        raise InputError(f"{label}: (syntax): expected numbers of a sensible size ({reason})") from exc


def _bracket_depth(text: str) -> int:
    """The deepest run of unclosed flow brackets, counting every bracket character."""
    depth = deepest = 0
    for match in re.finditer(r"[\[{]+|[\]}]+", text):
        run = len(match.group())
        depth = depth + run if match.group()[0] in "[{" else max(0, depth - run)
        deepest = max(deepest, depth)
    return deepest


def format_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".toml":
        return "toml"
    return None


def read_entry_text(path: Path, label: str) -> str:
    """The file's text, refused before parsing when it is not a small UTF-8 text file."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise InputError(f"{label}: (file): no such file") from exc
    except OSError as exc:
        raise InputError(f"{label}: (file): expected a readable file ({exc.strerror or exc})") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"{label}: (file): expected at most {MAX_FILE_BYTES:,} bytes (a hypothesis file is small)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: (file): expected UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def load_entry_file(path: str | Path) -> EntrySpec:
    """Read and validate a hypothesis file. Raises InputError with one line per problem."""
    path = Path(path)
    label = str(path)
    fmt = format_of(path)
    if fmt is None:
        raise InputError(f"{label}: (file): expected a .yaml, .yml or .toml hypothesis file")
    text = read_entry_text(path, label)
    data = parse_text(text, fmt, label)
    return validate(data, label=label, source_path=str(path.resolve()), source_text=text)


def scan(data: Any) -> Iterator[tuple[str, str, bool]]:
    """(path, what was expected, fatal) for every value that no field may hold: control characters,
    non-JSON types, non-text keys, nesting deeper than MAX_DEPTH, more than MAX_VALUES values.
    Fatal problems stop the validation (the document is too large or deep to walk further)."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    visited = 0
    while stack:
        path, value, depth = stack.pop()
        visited += 1
        if visited > MAX_VALUES:
            yield "(document)", f"expected at most {MAX_VALUES:,} values (aliases count where they are used)", True
            return
        where = path or "(document)"
        if isinstance(value, str):
            pattern = CONTROL if path in MULTILINE_FIELDS else CONTROL_OR_BREAK
            found = pattern.search(value.rstrip("\n"))
            if found:
                yield where, (f"expected text without control characters{'' if pattern is CONTROL else ' or line breaks'}"
                              f" (found U+{ord(found.group()):04X}), got {show_value(value)}"), False
        elif isinstance(value, float) and not math.isfinite(value):
            yield where, f"expected a finite number, got {value!r}", False
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                yield where, f"expected at most {MAX_DEPTH} levels of nesting", True
                return
            items = value.items() if isinstance(value, dict) else enumerate(value)
            children = []
            for key, child in items:
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(value, dict) and not isinstance(key, str):
                    yield child_path, f"expected text keys, got {show_value(key)}", False
                    continue
                if isinstance(value, dict) and CONTROL_OR_BREAK.search(key):
                    yield child_path, f"expected a key without control characters, got {show_value(key)}", False
                    continue
                children.append((child_path, child, depth + 1))
            stack.extend(reversed(children))
        elif value is not None and not isinstance(value, (bool, int, float)):
            yield where, f"expected JSON-compatible values ({JSON_TYPES}), got {type(value).__name__} {show_value(value)}", False


def validate(data: Any, *, label: str, source_path: str | None = None, source_text: str = "") -> EntrySpec:
    """Validate parsed hypothesis-file content. Raises InputError listing every problem."""
    if not isinstance(data, dict):
        raise InputError(f"{label}: (document): expected a mapping of fields (title, hypothesis, metric, ...)")
    found: dict[str, str] = {}
    for path, expected, fatal in scan(data):
        found.setdefault(path, expected)
        if fatal:
            raise InputError(f"{label}: {path}: {expected}")
    model = None
    try:
        model = EntryFile.model_validate(data)
    except ValidationError as exc:
        for path, expected in problems(exc):
            if not any(path == p or path.startswith(p + ".") for p in found):
                found[path] = expected
    if found:
        lines = [f"{label}: {path}: {expected}" for path, expected in found.items()]
        raise InputError(lines[0], lines)
    assert model is not None
    spec = to_spec(model, source_path=source_path, source_text=source_text)
    warnings = tuple(f"{label}: {path}: {text}" for path, text in metric_overlaps(spec.trainer.metrics))
    return replace(spec, warnings=warnings) if warnings else spec


def to_spec(model: EntryFile, *, source_path: str | None = None, source_text: str = "") -> EntrySpec:
    """The plain, frozen form of a validated file that the rest of the logbook uses."""
    names = list(model.arms)
    baseline = model.baseline or ("baseline" if "baseline" in names else names[0])
    arms = tuple(ArmSpec(n, "baseline" if n == baseline else "candidate", dict(c or {})) for n, c in model.arms.items())
    if isinstance(model.trainer, Trainer):
        trainer = TrainerSpec(name=model.trainer.name, command=model.trainer.command,
                              metrics=dict(model.trainer.metrics) if model.trainer.command else {},
                              timeout=model.trainer.timeout, varies=tuple(dict.fromkeys(model.trainer.varies)))
    else:
        trainer = TrainerSpec(name=model.trainer)
    pilot = model.min_effect if not isinstance(model.min_effect, float) else None
    return EntrySpec(
        title=model.title, hypothesis=model.hypothesis, metric=model.metric, goal=model.goal,
        min_effect=model.min_effect if pilot is None else None, alpha=model.alpha, seeds=model.seeds,
        trainer=trainer, arms=arms, baseline=baseline, tags=tuple(dict.fromkeys(model.tags)),
        deterministic=model.deterministic, notes=model.notes, source_path=source_path, source_text=source_text,
        min_effect_pilot=pilot.model_dump() if pilot is not None else None, executor=model.executor,
        slurm=model.slurm.model_dump(exclude_unset=True) if model.slurm else None,
        variance_study=model.variance_study.model_dump(exclude_unset=True) if model.variance_study else None,
    )
