"""``drill validate`` and ``drill schema``: check a runbook without touching anything, and
print the JSON Schema editors use to complete and check runbooks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from drill.errors import InputError
from drill.runbook.loader import load_runbook, parse_var_args
from drill.runbook.model import Runbook

logger = logging.getLogger(__name__)

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"

RunbookArg = Annotated[
    Path, typer.Argument(help="The runbook YAML file.", metavar="RUNBOOK", show_default=False)
]
InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        "-i",
        help="nornir config file or SimpleInventory dir (overrides the runbook).",
    ),
]
VarOpt = Annotated[
    list[str] | None,
    typer.Option("--var", help="Override a declared runbook variable: NAME=VALUE (repeatable)."),
]


def validate_command(
    runbook: RunbookArg, inventory: InventoryOpt = None, var: VarOpt = None
) -> None:
    """Check a runbook, its inventory, templates and files. Connects to nothing."""
    loaded = load_runbook(
        runbook, inventory_override=inventory, var_overrides=parse_var_args(var or [])
    )
    model = loaded.model
    typer.echo(
        f"{runbook}: ok ({len(model.prechecks)} prechecks, {len(model.steps)} steps, "
        f"{len(model.postchecks)} postchecks, {len(loaded.all_hosts())} hosts)"
    )


def schema_document() -> dict[str, object]:
    """The runbook JSON Schema, as editors (yaml-language-server) want it."""
    schema = Runbook.model_json_schema(by_alias=True)
    return {
        "$schema": SCHEMA_URI,
        **schema,
        "title": "drill runbook (apiVersion drill/v1)",
    }


SchemaArg = Annotated[
    str, typer.Argument(help="Which file: runbook or services (drill flows).", metavar="[WHAT]")
]


def schema_command(what: SchemaArg = "runbook") -> None:
    """Print the JSON Schema of a runbook (default) or of a services file."""
    if what == "services":
        from drill.flows.services import services_schema

        doc = {"$schema": SCHEMA_URI, **services_schema(), "title": "drill services file"}
    elif what == "runbook":
        doc = schema_document()
    else:
        raise InputError(f"error: drill schema {what!r}: choose runbook or services")
    typer.echo(json.dumps(doc, indent=2, sort_keys=False))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the drill app."""
    app.command("validate")(validate_command)
    app.command("schema")(schema_command)
