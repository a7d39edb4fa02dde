"""Pydantic's validation errors as the logbook's error lines: ``field.path: what was expected``.

A refused value is described by its field: top-level fields by the phrases below (which keep the
messages people already know), nested ones by their schema descriptions, so the schema stays the
one place that says what each field holds. Union tags and dict-key markers are dropped from paths.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from logbook.entries.schema import MAX_SEEDS, MIN_SEEDS, TAG_PREFIX, EntryFile, show_value

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
            message = f"{_expected(parts)}, got {show_value(value)}"
        shown = [p for p in parts if p != "[key]"]
        out.setdefault(".".join(shown) or "(document)", message)
    return list(out.items())


# ---- warnings: valid files that probably do not mean what they say ---------------------------

def sample_line(pattern: str) -> str | None:
    """A line that ``pattern`` matches, built from its own pieces (literals as written, the first
    character of each class, each repeat at its minimum but at least once), or None when the
    pattern is too intricate to build one for (then it is not checked)."""
    try:
        import re._parser as parser  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons keep it as sre_parse
        import sre_parse as parser  # type: ignore[no-redef]
    constants = parser  # the opcode names are re-exported by the parser module

    def build(items: Any) -> str:
        out = []
        for op, arg in items:
            if op is constants.LITERAL:
                out.append(chr(arg))
            elif op is constants.ANY:
                out.append("x")
            elif op is constants.IN:
                out.append(first_of(arg))
            elif op in (constants.MAX_REPEAT, constants.MIN_REPEAT, getattr(constants, "POSSESSIVE_REPEAT", None)):
                low, _high, body = arg
                out.append(build(body) * max(1, low))
            elif op is constants.SUBPATTERN:
                out.append(build(arg[-1]))
            elif op is constants.BRANCH:
                out.append(build(arg[1][0]))
            elif op is constants.AT:
                continue
            else:
                raise ValueError(op)
        return "".join(out)

    def first_of(items: Any) -> str:
        for op, arg in items:
            if op is constants.LITERAL:
                return chr(arg)
            if op is constants.RANGE:
                return chr(arg[0])
            if op is constants.CATEGORY:
                return {"CATEGORY_DIGIT": "1", "CATEGORY_SPACE": " ", "CATEGORY_WORD": "a"}.get(str(arg), "a")
        raise ValueError(items)

    try:
        line = build(parser.parse(pattern))
    except (ValueError, TypeError, re.error, RecursionError, OverflowError):
        return None
    return line if re.search(pattern, line) else None


def metric_overlaps(metrics: dict[str, str]) -> list[tuple[str, str]]:
    """(field path, warning) for each metric whose pattern also matches another declared metric's
    sample line, e.g. ``loss: (…)`` matching ``test loss: 0``: the command trainer reads every
    line, so such a metric would silently take the other metric's values too."""
    out = []
    samples = {name: sample_line(pattern) for name, pattern in metrics.items()}
    for name, pattern in metrics.items():
        for other, line in samples.items():
            if other == name or line is None:
                continue
            try:
                hit = re.search(pattern, line)
            except re.error:
                continue
            if hit:
                out.append((f"trainer.metrics.{name}",
                            f"warning: the pattern {pattern!r} also matches {other}'s lines (such as {line!r}), so "
                            f"{name} would take {other}'s values too; anchor it (for example '^{pattern.lstrip('^')}') "
                            "or make it more specific"))
                break
    return out
