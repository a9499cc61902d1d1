"""``drill run``, ``drill plan`` and ``drill graph``: thin commands around drill.engine."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from drill.cli import recovery_commands as recovery
from drill.engine.context import RunOptions
from drill.engine.machine import mermaid
from drill.engine.plan import build_plan

log = logging.getLogger(__name__)

RunbookArg = Annotated[
    Path, typer.Argument(help="The runbook (YAML).", exists=False, dir_okay=False)
]
InventoryOpt = Annotated[
    Path | None,
    typer.Option("--inventory", "-i", help="nornir config file or SimpleInventory dir."),
]
VarOpt = Annotated[
    list[str] | None, typer.Option("--var", help="Override a runbook var: NAME=VALUE.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def _load(runbook: Path, inventory: Path | None, var: list[str] | None) -> Any:
    from drill.runbook.loader import load_runbook, parse_var_args

    return load_runbook(
        runbook, inventory_override=inventory, var_overrides=parse_var_args(var or [])
    )


def _nornir(loaded: Any, workers: int) -> Any:
    """nornir for the runbook's inventory: threaded runner, nornir's log file off."""
    from nornir import InitNornir
    from nornir.core import Nornir
    from nornir.core.configuration import Config
    from nornir.core.inventory import Defaults, Groups, Hosts, Inventory
    from nornir.plugins.runners import ThreadedRunner

    from drill.runbook.inventory import nornir_config

    runner = {"plugin": "threaded", "options": {"num_workers": workers}}
    path = getattr(loaded, "inventory_path", None)
    if path is None:
        empty = Inventory(hosts=Hosts(), groups=Groups(), defaults=Defaults())
        return Nornir(inventory=empty, runner=ThreadedRunner(num_workers=workers), config=Config())
    config = nornir_config(Path(path))
    config["runner"] = runner
    config["logging"] = {"enabled": False}
    return InitNornir(**config)


def plan(
    runbook: RunbookArg,
    inventory: InventoryOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what a run would do: order, target hosts per step, and the rollback plan."""
    from drill.flows.plan_section import run_check

    loaded = _load(runbook, inventory, var)
    the_plan = build_plan(loaded)
    flows = run_check(loaded, runbook)  # the runbook's evacuate + flows.catalog, if declared
    if as_json:
        doc = the_plan.as_dict() | ({"flows": flows.to_dict()} if flows else {})
        typer.echo(json.dumps(doc, indent=2))
        return
    out = Console()
    out.print(Text(f"runbook {the_plan.runbook} (mode {the_plan.mode})", style="bold"))
    for step in the_plan.steps:
        hosts = ", ".join(step.hosts) if step.hosts else "local"
        line = Text(f"  {step.phase.value:<9} {step.number:>2}. ", style="cyan")
        line.append(step.name, style="bold")
        line.append(f" [{step.kind}] on {hosts}")
        if step.detail:
            line.append(f" ({step.detail})", style="dim")
        if step.phase.value == "step" and step.on_failure != "rollback":
            line.append(f" on_failure: {step.on_failure}", style="yellow")
        out.print(line, soft_wrap=True)
    out.print(Text("rollback plan (if a step or postcheck fails):", style="bold"))
    for index, line_text in enumerate(the_plan.rollback, start=1):
        out.print(Text(f"  {index}. {line_text}"), soft_wrap=True)
    if flows is not None:
        out.print(Text(f"flows that still need {flows.site} (drill flows check):", style="bold"))
        for line_text in flows.lines():
            out.print(Text(f"  {line_text}"), soft_wrap=True)


def graph() -> None:
    """Print the run lifecycle as a Mermaid state diagram."""
    typer.echo(mermaid(), nl=False)


def run(
    runbook: RunbookArg,
    inventory: InventoryOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Prechecks for real; show diffs; commit nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Answer approval steps.")] = False,
    var: VarOpt = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Also write report.json here.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    as_json: JsonOpt = False,
    change_id: Annotated[
        str | None, typer.Option("--change-id", help="Change ticket, kept in the report.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Hosts in parallel.")] = 20,
    insecure_host_keys: recovery.InsecureOpt = False,
) -> None:
    """Run a drill: prechecks, steps, postchecks; on failure roll back and prove it."""
    from drill.engine.owner import current, write_owner
    from drill.engine.runner import Engine, inventory_secrets
    from drill.report.console import ConsoleObserver

    loaded = _load(runbook, inventory, var)
    nr = _nornir(loaded, workers)
    policy = recovery.apply_host_key_policy(nr, insecure_host_keys)
    secrets = inventory_secrets(nr)
    console = ConsoleObserver(Console(stderr=True), secrets=secrets)
    interactive = sys.stdin.isatty()
    options = RunOptions(
        dry_run=dry_run,
        assume_yes=yes,
        interactive=interactive,
        change_id=change_id,
        confirm=(lambda prompt: typer.confirm(prompt, default=False)) if interactive else None,
    )
    engine = Engine(loaded, nr, options, observers=recovery.observers(console))
    engine.record.host_key_policy = policy
    inv = inventory or getattr(loaded, "inventory_path", None)
    owner = current(runbook, inv, var, workers, insecure_host_keys)
    write_owner(engine.rundir.path, owner)
    all_hosts = getattr(loaded, "all_hosts", None)
    hosts = list(all_hosts()) if all_hosts is not None else sorted(nr.inventory.hosts)
    record = recovery.run_locked(engine, hosts)
    recovery.finish(record, engine, console, secrets, report_dir, junit, as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the drill app."""
    app.command("run")(run)
    app.command("plan")(plan)
    app.command("graph")(graph)
    recovery.register(app)
