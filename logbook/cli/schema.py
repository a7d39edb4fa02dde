"""`logbook schema`: the JSON Schema of hypothesis files, for editors' YAML language servers."""

from __future__ import annotations

import json

import click


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of a hypothesis file (save it and point your editor at it)."""
    from logbook.entries.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
