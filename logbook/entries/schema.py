"""The schema of a hypothesis file, as pydantic models.

One place says what an entry file may hold: the models below validate parsed YAML/TOML, give the
JSON Schema that `logbook schema` prints (editors use it for completion and red squiggles), and
carry the blocks other parts of the logbook read (``executor``/``slurm``, ``variance_study``).

Field descriptions are what an editor shows on hover and, for nested fields, the "expected ..."
half of an error line (:mod:`logbook.entries.problems` turns pydantic's errors into those lines).
Strings are matched whole (``metric: "loss\\n"`` is no metric name), numbers must be finite and
are never booleans, and a command is split and formatted the way the command trainer will do it.
Checks that span fields (the baseline names an arm, command placeholders are config keys of every
arm) run once the fields are valid.
"""

from __future__ import annotations

import re
import shlex
import string
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictBool, StrictInt, Tag,
    field_validator, model_validator,
)
from pydantic_core import PydanticCustomError

GOALS = ("minimize", "maximize")
MIN_SEEDS = 5  # the verdict needs at least five finite seeds per arm
MAX_SEEDS = 10_000
MAX_ARMS = 64
MAX_TAGS = 32
STUDY_SOURCES = ("init", "data", "noise", "split")  # the seed streams a variance study can vary
COMMAND_PLACEHOLDERS = ("seed", "run_dir", *(f"seed_{s}" for s in STUDY_SOURCES))
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


def show_value(value: Any) -> str:
    """A value as an error line quotes it: its repr, cut to 60 characters."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = "a number too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


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
            "auto is refused (a δ derived from the data being judged is circular: with more seeds a real "
            "improvement is ever more often called negative): expected δ in metric units, "
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


def command_problem(command: str) -> str | None:
    """Why ``command`` cannot be run, or None: it is split as the command trainer splits it
    (shlex) and every word is formatted with a sample seed and run folder, as the trainer will."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"expected a command line that splits into words like a shell's ({exc})"
    for word in words:
        try:
            parsed = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(word) if name is not None]
        except ValueError as exc:
            return f"expected {{placeholders}} with balanced braces ({exc})"
        for name, spec, conversion in parsed:
            if not name.isidentifier():
                return f"expected placeholders that are plain names like {{seed}}, got {{{name}}}"
            if conversion not in (None, "r", "s", "a"):
                return f"expected a conversion !r, !s or !a in {{{name}}}, got !{conversion}"
            if "{" in spec or any(len(n) > 6 or int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", spec)):
                return f"expected a format spec without nested fields and widths up to {MAX_FORMAT_WIDTH}, got {{{name}:{spec}}}"
        sample = {name: "x" for name, _, _ in parsed} | {"seed": str(SAMPLE_SEED), "run_dir": "/tmp/run"}
        try:
            word.format_map(sample)  # config values reach the command as text, as here
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return f"expected a word that formats with a sample seed ({exc.__class__.__name__}: {exc})"
    return None


def config_placeholders(command: str) -> list[str]:
    """The placeholders of a runnable command that must be config keys, in order of appearance."""
    names = [name for word in shlex.split(command) for _, name, _, _ in string.Formatter().parse(word) if name]
    return [name for name in dict.fromkeys(names) if name not in COMMAND_PLACEHOLDERS]


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
    varies: Annotated[list[Literal["init", "data", "noise", "split"]], Field(
        max_length=4, description="expected, with a command, the sources its script reads from LOGBOOK_SEED_<SOURCE>")] = []

    @field_validator("command")
    @classmethod
    def _splits_and_formats(cls, command: str | None) -> str | None:
        problem = command_problem(command) if command is not None else None
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
                              f"got {show_value(pattern)}", at=metric_name)
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
    """How jobs are submitted when ``executor: slurm`` (read by the Slurm executor,
    ``logbook.entries.slurmconfig``, which also reads the same keys from ``logbook.toml`` and flags)."""

    partition: Annotated[matching(NAME), Field(description="expected a partition name")] | None = None
    gpus_per_task: Annotated[StrictInt, Field(ge=0, le=64, description="expected a whole number of GPUs, 0 to 64")] | None = None
    cpus_per_task: Annotated[StrictInt, Field(ge=1, le=1024, description="expected a whole number of CPUs, 1 to 1024")] | None = None
    mem: Annotated[matching(r"[0-9]+[KMGT]?"), Field(description="expected memory per task such as 4G or 16000M")] | None = None
    time: Annotated[Union[Annotated[StrictInt, Field(ge=1)], matching(r"[0-9]+(-[0-9]{1,2})?(:[0-9]{1,2}){0,2}")], Field(
        description="expected a time limit in minutes, or like 4:00:00 or 1-12:00:00")] | None = None
    account: Annotated[matching(NAME), Field(description="expected an account name")] | None = None
    qos: Annotated[matching(NAME), Field(description="expected a QOS name")] | None = None
    constraint: Annotated[matching(r"[A-Za-z0-9_.&|!()\[\]*,-]+"), Field(
        description="expected a node feature constraint like a100|h100")] | None = None
    sbatch: Annotated[list[matching(r"--?[A-Za-z][A-Za-z0-9_-]*(=[^\s]*)?")], Field(
        max_length=32, description="expected a list of extra sbatch options like --exclusive or --nice=10")] | None = None
    max_running: Annotated[StrictInt, Field(
        ge=1, le=100_000, description="expected how many array tasks may run at once (the %K of --array), at least 1")] | None = None
    max_requeues: Annotated[StrictInt, Field(
        ge=0, le=100, description="expected automatic requeues after TIMEOUT, PREEMPTED or NODE_FAIL, 0 or more")] | None = None
    shared_fs: Annotated[StrictBool, Field(
        description="expected true when the logbook folder is on a file system every node sees")] | None = None


class VarianceStudy(Strict):
    """Which sources of randomness to vary one at a time (read by variance studies)."""

    sources: Annotated[list[Literal["init", "data", "noise", "split"]], Field(
        min_length=1, max_length=4, description="expected a list of init, data, noise, split")]
    seeds: Annotated[StrictInt, Field(ge=2, le=MAX_SEEDS, description=f"expected a whole number of seeds from 2 to {MAX_SEEDS}")]
    verdict_varies: Annotated[list[Literal["init", "data", "noise", "split"]], Field(
        min_length=1, max_length=4,
        description="expected the sources the verdict's own seeds vary (default: all the trainer varies); the others are held")] | None = None


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
            raise refused(f"expected the name of an arm ({', '.join(names)}), got {show_value(self.baseline)}", at="baseline")
        command = self.trainer.command if isinstance(self.trainer, Trainer) else None
        for placeholder in config_placeholders(command) if command else []:
            missing = [name for name, config in self.arms.items() if placeholder not in (config or {})]
            if missing:
                raise refused(
                    f"expected placeholder {{{placeholder}}} to be {{seed}}, {{run_dir}} or a config key of every arm "
                    f"(missing in arms: {', '.join(missing)})", at="trainer.command",
                )
        if self.variance_study is not None and isinstance(self.trainer, Trainer):
            # a command varies the sources whose {seed_<source>} it uses or that it lists in varies
            supported = {s for s in STUDY_SOURCES if command and "{seed_" + s + "}" in command} | set(self.trainer.varies)
            missing = [s for s in self.variance_study.sources if s not in supported]
            if command and missing:
                raise refused(f"expected sources the command can vary (placeholders {{seed_<source>}} or trainer.varies); "
                              f"it cannot vary {', '.join(missing)}", at="variance_study.sources")
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a hypothesis file, for editors' YAML language servers."""
    schema = EntryFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://negative-results-logbook.invalid/entry.schema.json"
    return schema
