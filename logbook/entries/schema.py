"""The schema of a hypothesis file, as pydantic models.

One place says what an entry file may hold: the models below validate parsed YAML/TOML, give the
JSON Schema that `logbook schema` prints (editors use it for completion and red squiggles), and
carry the blocks other parts of the logbook read (``executor``/``slurm``, ``variance_study``).

Every field's ``description`` doubles as the "expected ..." half of its error line, so a refused
value reads ``FILE: field.path: expected ..., got VALUE``. Checks that span fields (the baseline
names an arm, command placeholders are config keys of every arm) run once the fields are valid.
"""

from __future__ import annotations

import re
import shlex
import string
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictBool, StrictInt, Tag,
    ValidationError, field_validator, model_validator,
)
from pydantic_core import PydanticCustomError

GOALS = ("minimize", "maximize")
MIN_SEEDS = 5  # the verdict needs at least five finite seeds per arm
MAX_SEEDS = 10_000
MAX_ARMS = 64
MAX_TAGS = 32
COMMAND_PLACEHOLDERS = ("seed", "run_dir")
SAMPLE_SEED = 1234567  # commands are formatted with it to prove they can be formatted at all
MAX_FORMAT_WIDTH = 1000  # a larger width or precision in a placeholder is refused (it would allocate)

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
METRIC = r"[A-Za-z_][A-Za-z0-9_./-]*"
TRAINER_REF = r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
ENTRY_REF = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
TRAINER = f"(?:{NAME})|(?:{TRAINER_REF})"
TAG_PREFIX = "="  # union members are tagged "=name" so error paths can drop them


def refused(message: str, at: str = "") -> PydanticCustomError:
    """An error whose message is the whole "expected ..." text, about the field path ``at`` below
    the place where it is raised (a check across fields names the field it is about)."""
    return PydanticCustomError("entry", "{message}", {"message": message, "at": at})


def _full_match(pattern: str):
    """A before-validator: strings must match ``pattern`` entirely (no trailing newline sneaks in)."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError("pattern")
        return value

    return BeforeValidator(check)


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _id_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def matching(pattern: str, **field: Any) -> Any:
    """A string that matches ``pattern`` entirely; the pattern also goes into the JSON Schema."""
    # `(?![\s\S])` rather than `$`: Python's `$` (used by some schema validators) allows a final newline
    exact = {"pattern": f"^(?:{pattern})(?![\\s\\S])"}
    return Annotated[str, Field(json_schema_extra=exact, **field), _full_match(pattern)]


def number(**field: Any) -> Any:
    """A finite number, not a boolean, with constraints such as ``gt=0`` (numeric strings are read too)."""
    return Annotated[float, Field(allow_inf_nan=False, **field), BeforeValidator(_no_bool)]


Line = Annotated[str, BeforeValidator(_strip), Field(min_length=1, pattern=r"^[^\n]*$")]
Text = Annotated[str, BeforeValidator(_strip), Field(min_length=1)]
TrainerRef = matching(TRAINER, max_length=200)
MetricName = matching(METRIC, max_length=100)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PilotDelta(Strict):
    """δ derived at registration from a registered pilot entry's finished runs."""

    from_pilot: Annotated[matching(ENTRY_REF, max_length=100), BeforeValidator(_id_text), Field(
        description="expected the id or slug of a registered pilot entry whose runs have finished")]
    sd_multiple: Annotated[number(gt=0, le=10), Field(description="expected a number above 0 and at most 10: δ = this × the pilot's pooled sd")]


DeltaNumber = Annotated[number(ge=0), Field(description="expected a finite number ≥ 0 (in metric units), or {from_pilot: ENTRY, sd_multiple: 0.5}")]


def _no_auto(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "auto":
        raise refused(
            "auto is refused: a δ derived from the data being judged is circular (with more seeds a real "
            "improvement is ever more often called negative); give δ in metric units, "
            "or {from_pilot: ENTRY, sd_multiple: 0.5} to derive it from a registered pilot's runs"
        )
    return value


def _delta_kind(value: Any) -> str:
    return f"{TAG_PREFIX}pilot" if isinstance(value, dict) else f"{TAG_PREFIX}number"


MinEffect = Annotated[
    Union[Annotated[DeltaNumber, Tag(f"{TAG_PREFIX}number")], Annotated[PilotDelta, Tag(f"{TAG_PREFIX}pilot")]],
    Discriminator(_delta_kind),
    BeforeValidator(_no_auto),
]


def check_command(command: str, config_keys: list[set[str]] | None = None) -> str | None:
    """Why ``command`` cannot be run, or None: it is split like the command trainer splits it
    (shlex), and every word is formatted with a sample seed and run folder."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"expected a command line that splits into words like a shell's ({exc})"
    fields: set[str] = set()
    for word in words:
        try:
            parsed = list(string.Formatter().parse(word))
        except ValueError as exc:
            return f"expected {{placeholders}} with balanced braces ({exc})"
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if not name.isidentifier():
                return f"expected placeholders that are plain names like {{seed}}, got {{{name}}}"
            if conversion not in (None, "r", "s", "a"):
                return f"expected a conversion !r, !s or !a in {{{name}}}, got !{conversion}"
            if "{" in spec or any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", spec)):
                return f"expected a format spec without nested fields and widths up to {MAX_FORMAT_WIDTH}, got {{{name}:{spec}}}"
            fields.add(name)
        sample = {name: "x" for name in fields} | {"seed": str(SAMPLE_SEED), "run_dir": "/tmp/run"}
        try:
            word.format_map(sample)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return f"expected a word that formats with a sample seed ({exc.__class__.__name__}: {exc})"
    for name in sorted(fields - set(COMMAND_PLACEHOLDERS), key=command.find):
        missing = [i for i, keys in enumerate(config_keys or []) if name not in keys]
        if config_keys is not None and missing:
            return name  # the caller names the arms
    return None


class Trainer(Strict):
    """A registered trainer (``name``) or a script run unchanged (``command`` + ``metrics``)."""

    name: Annotated[TrainerRef, Field(description="expected a registered trainer name or module:callable")] | None = None
    command: Annotated[str, BeforeValidator(_strip), Field(
        min_length=1, max_length=10_000,
        description="expected a command line with {seed}, {run_dir} and config keys as placeholders")] | None = None
    metrics: dict[MetricName, str] = Field(
        default_factory=dict, max_length=100,
        description="expected a mapping of metric name to a regular expression with one capture group")
    timeout: Annotated[number(gt=0), Field(description="expected a positive number of seconds per run")] | None = None

    @field_validator("command")
    @classmethod
    def _splits_and_formats(cls, command: str | None) -> str | None:
        problem = check_command(command) if command is not None else None
        if problem:
            raise refused(problem)
        return command

    @field_validator("metrics")
    @classmethod
    def _one_group_each(cls, metrics: dict[str, str]) -> dict[str, str]:
        for metric_name, pattern in metrics.items():
            try:
                groups = re.compile(pattern).groups
            except (re.error, OverflowError, RecursionError) as exc:
                raise refused(f"expected a valid regular expression ({exc})", at=metric_name) from exc
            if groups != 1:
                raise refused("expected a regular expression with exactly one capture group for the value, "
                              f"got {_show(pattern)}", at=metric_name)
        return metrics

    @model_validator(mode="after")
    def _name_or_command(self) -> Trainer:
        if (self.name is None) == (self.command is None):
            raise refused("expected exactly one of a trainer name (or module:callable) and a command")
        if self.name is not None and self.metrics:
            raise refused("expected only with a command trainer (a registered trainer reports its own metrics)", at="metrics")
        return self


def _trainer_kind(value: Any) -> str:
    return f"{TAG_PREFIX}spec" if isinstance(value, dict) else f"{TAG_PREFIX}name"


TrainerField = Annotated[
    Union[Annotated[TrainerRef, Tag(f"{TAG_PREFIX}name")], Annotated[Trainer, Tag(f"{TAG_PREFIX}spec")]],
    Discriminator(_trainer_kind),
]


class Slurm(Strict):
    """How jobs are submitted when ``executor: slurm`` (read by the Slurm executor)."""

    partition: Annotated[matching(NAME), Field(description="expected a partition name")] | None = None
    gpus_per_task: Annotated[StrictInt, Field(ge=0, le=64, description="expected a whole number of GPUs, 0 to 64")] | None = None
    cpus_per_task: Annotated[StrictInt, Field(ge=1, le=1024, description="expected a whole number of CPUs, 1 to 1024")] | None = None
    mem: Annotated[matching(r"[0-9]+[KMGT]?"), Field(description="expected memory per task like 16G or 4000M")] | None = None
    time: Annotated[matching(r"[0-9]+(-[0-9]{1,2})?(:[0-9]{1,2}){0,2}"), Field(
        description="expected a time limit like 60, 4:00:00 or 1-12:00:00")] | None = None
    account: Annotated[matching(NAME), Field(description="expected an account name")] | None = None
    qos: Annotated[matching(NAME), Field(description="expected a QOS name")] | None = None
    constraint: Annotated[matching(r"[A-Za-z0-9_.&|!()\[\]*,-]+"), Field(
        description="expected a node feature constraint like a100|h100")] | None = None
    array_parallelism: Annotated[StrictInt, Field(
        ge=1, le=100_000, description="expected how many array tasks may run at once, at least 1")] | None = None
    extra: Annotated[list[matching(r"--?[A-Za-z][A-Za-z0-9_-]*(=[^\s]*)?")], Field(
        max_length=32, description="expected a list of extra sbatch options like --exclusive or --nice=10")] = []


class VarianceStudy(Strict):
    """Which sources of randomness to vary one at a time (read by variance studies)."""

    sources: Annotated[list[Literal["init", "data", "noise", "split"]], Field(
        min_length=1, max_length=4, description="expected a list of init, data, noise, split")]
    seeds: Annotated[StrictInt, Field(ge=2, le=MAX_SEEDS, description=f"expected a whole number of seeds from 2 to {MAX_SEEDS}")]


ArmConfig = Annotated[dict[str, Any] | None, Field(description="expected a mapping of config keys to values")]


class EntryFile(Strict):
    """A hypothesis file: the claim, how it is judged, and what runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="logbook hypothesis file")

    title: Annotated[Line, Field(max_length=200, description="required: a one-line title of at most 200 characters")]
    hypothesis: Annotated[Text, Field(max_length=20_000, description="required: the claim in words")]
    metric: Annotated[MetricName, Field(description="required: the metric the verdict is about")]
    goal: Annotated[Literal["minimize", "maximize"], Field(description="required: minimize or maximize")]
    min_effect: Annotated[MinEffect, Field(
        description="required: δ, the smallest effect worth claiming, in metric units, or {from_pilot: ENTRY, sd_multiple: 0.5}")]
    alpha: Annotated[number(gt=0, lt=0.5), Field(description="optional: significance level between 0 and 0.5 (exclusive), default 0.05")] = 0.05
    seeds: Annotated[StrictInt, Field(ge=MIN_SEEDS, le=MAX_SEEDS, description=(
        f"required: a whole number of seeds per arm from {MIN_SEEDS} (the verdict needs five) to {MAX_SEEDS}"))]
    trainer: Annotated[TrainerField, Field(description="required: a trainer name, module:callable, or {command: ..., metrics: ...}")]
    arms: Annotated[dict[matching(NAME, max_length=100), ArmConfig], Field(
        min_length=2, max_length=MAX_ARMS,
        description=f"required: a mapping of at least two arms (a baseline and a candidate), at most {MAX_ARMS}")]
    baseline: Annotated[str, Field(description="optional: which arm is the baseline (default: the arm named baseline, else the first)")] | None = None
    tags: Annotated[list[Annotated[Line, Field(max_length=100)]], Field(
        max_length=MAX_TAGS, description=f"optional: a list of at most {MAX_TAGS} non-empty one-line tags")] = []
    deterministic: Annotated[StrictBool, Field(description="optional: ask trainers for deterministic algorithms")] = False
    notes: Annotated[str, BeforeValidator(_strip), Field(max_length=100_000, description="optional: free text")] = ""
    executor: Annotated[Literal["local", "slurm"], Field(description="optional: local (default) or slurm")] = "local"
    slurm: Annotated[Slurm, Field(description="optional: Slurm submission settings for executor: slurm")] | None = None
    variance_study: Annotated[VarianceStudy, Field(description="optional: {sources: [init, data, noise, split], seeds: N}")] | None = None

    @model_validator(mode="after")
    def _across_fields(self) -> EntryFile:
        names = list(self.arms)
        if self.baseline is not None and self.baseline not in names:
            raise refused(f"expected the name of an arm ({', '.join(names)}), got {_show(self.baseline)}", at="baseline")
        if isinstance(self.trainer, Trainer) and self.trainer.command is not None:
            keys = [set(config or {}) for config in self.arms.values()]
            placeholder = check_command(self.trainer.command, keys)
            if placeholder:
                missing = [n for n, k in zip(names, keys) if placeholder not in k]
                raise refused(
                    f"expected placeholder {{{placeholder}}} to be {{seed}}, {{run_dir}} or a config key of every arm "
                    f"(missing in arms: {', '.join(missing)})", at="trainer.command",
                )
        if self.variance_study is not None and self.variance_study.seeds > self.seeds:
            raise refused(f"expected at most the entry's {self.seeds} seeds per arm", at="variance_study.seeds")
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a hypothesis file, for editors' YAML language servers."""
    schema = EntryFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://negative-results-logbook.invalid/entry.schema.json"
    return schema



# What a refused top-level value should have been; nested fields use their own descriptions.
EXPECTED = {
    "title": "expected a non-empty single line of at most 200 characters",
    "hypothesis": "expected a non-empty string",
    "metric": "expected a metric name (letters, digits, _ . / -)",
    "goal": "expected minimize or maximize",
    "min_effect": "expected a finite number ≥ 0 (in metric units), or {from_pilot: ENTRY, sd_multiple: 0.5}",
    "alpha": "expected a number between 0 and 0.5 (exclusive)",
    "seeds": f"expected a whole number of seeds per arm from {MIN_SEEDS} (the verdict needs five) to {MAX_SEEDS}",
    "trainer": "expected a registered trainer name or module:callable",
    "arms": "expected a mapping of at least two arms (a baseline and a candidate)",
    "arms.*": "expected a mapping of config keys to values",
    "arms.[key]": "expected an arm name of letters, digits, _ . - (starting with a letter or digit)",
    "trainer.metrics.[key]": "expected a metric name (letters, digits, _ . / -)",
    "baseline": "expected the name of an arm",
    "tags": "expected a list of non-empty one-line strings",
    "deterministic": "expected true or false",
    "notes": "expected a string",
    "executor": "expected local or slurm",
}


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = "a number too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _path(loc: tuple) -> list[str]:
    """An error location as the file's field path: union tags dropped, a bad mapping key named."""
    parts = [str(p) for p in loc if not str(p).startswith(TAG_PREFIX)]
    if parts and parts[-1] == "[key]":
        parts = parts[:-2] + [parts[-2], "[key]"]  # pydantic puts the key before the marker
    return parts


def _model_at(parts: list[str]) -> type[BaseModel] | None:
    """The model that the fields at ``parts`` lead to (None where the path leaves the models)."""
    model: Any = EntryFile
    for part in parts:
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = next((m for m in _members(info.annotation) if isinstance(m, type) and issubclass(m, BaseModel)), None)
        if model is None:
            return None
    return model


def _field(parts: list[str]) -> Any:
    """The FieldInfo of the field at ``parts``, or None."""
    model = _model_at(parts[:-1])
    return model.model_fields.get(parts[-1]) if model and parts else None


def _description(info: Any) -> str | None:
    """A field's description, also where it sits on the inner type of ``Annotated[X, Field(...)] | None``."""
    if info is None:
        return None
    if info.description:
        return info.description
    pending = list(getattr(info.annotation, "__args__", ()))
    while pending:
        member = pending.pop(0)
        found = next((m.description for m in getattr(member, "__metadata__", ()) if getattr(m, "description", None)), None)
        if found:
            return found
        pending.extend(getattr(member, "__args__", ()))
    return None


def _members(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [getattr(annotation, "__origin__", annotation)]
    return [m for a in args for m in _members(getattr(a, "__origin__", a))]


def _expected(parts: list[str]) -> str:
    key = ".".join(parts)
    wildcard = ".".join(parts[:1] + ["*"] + parts[2:]) if len(parts) > 1 else key
    if key in EXPECTED or wildcard in EXPECTED:
        return EXPECTED.get(key) or EXPECTED[wildcard]
    if parts[-1:] == ["[key]"] and ".".join([*parts[:-2], "[key]"]) in EXPECTED:
        return EXPECTED[".".join([*parts[:-2], "[key]"])]
    while parts and parts[-1].isdigit() and _field(parts) is None:
        parts = parts[:-1]  # an item of a list: say what the list expects
    description = _description(_field(parts)) or "expected a valid value"
    return description if description.startswith("expected") else "expected " + description.split(": ", 1)[-1]


def problems(error: ValidationError) -> list[tuple[str, str]]:
    """(field path, what was expected) for each error of a validation, one per path, in order."""
    out: dict[str, str] = {}
    for err in error.errors(include_url=False):
        parts = _path(tuple(err["loc"]))
        kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
        if kind == "entry":
            parts = parts + [p for p in ctx["at"].split(".") if p]
            message = ctx["message"]
        elif kind == "missing":
            info = _field(parts)
            message = f"missing; {info.description if info and info.description else 'required'}"
        elif kind == "extra_forbidden":
            model = _model_at(parts[:-1])
            known = ", ".join(model.model_fields) if model else "the documented fields"
            message = f"unknown field; expected one of {known}"
        elif kind in ("too_long", "string_too_long"):
            size = ctx.get("actual_length") or (len(value) if hasattr(value, "__len__") else "more")
            unit = "characters" if kind == "string_too_long" else "items"
            message = f"expected at most {ctx.get('max_length')} {unit}, got {size}"
        else:
            message = f"{_expected(parts)}, got {_show(value)}"
        shown = [p for p in parts if p != "[key]"]
        out.setdefault(".".join(shown) or "(document)", message)
    return list(out.items())
