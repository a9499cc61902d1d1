"""``drill status``, ``drill resume``, ``drill abort``, ``drill unlock``: runs whose process
died, read back from their journal (drill.engine.runs, drill.engine.recovery). What they
share with ``drill run`` lives with it, in drill.cli.run_commands."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from drill.cli.run_commands import (
    InsecureOpt,
    apply_host_key_policy,
    finish,
    load,
    nornir_for,
    observers,
    run_locked,
)
from drill.engine.recovery import Action
from drill.errors import InputError

log = logging.getLogger(__name__)

RunIdArg = Annotated[str, typer.Argument(help="The run id (see 'drill status').")]
InventoryOpt = Annotated[
    Path | None,
    typer.Option("--inventory", "-i", help="Inventory; default: the one the run used."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
ReportDirOpt = Annotated[
    Path | None, typer.Option("--report-dir", help="Also write report.json here.")
]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Answer approval steps.")]


# --- status / resume / abort / unlock -------------------------------------------------


def status(
    run_id: Annotated[str | None, typer.Argument(help="A run id; none: recent runs.")] = None,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Runs to list.")] = 20,
) -> None:
    """State of a run from its journal (also of a run whose process died)."""
    from drill.engine.locks import holders
    from drill.engine.rundir import existing_run, state_dir
    from drill.engine.runs import find_run, run_dirs, run_info

    base = state_dir()
    if run_id is not None:
        existing_run(base, run_id)  # a malformed or unknown id is exit 2, never a path
        infos = [run_info(find_run(base, run_id))]
    else:
        infos = [run_info(p) for _, p in zip(range(limit), run_dirs(base), strict=False)]
    if as_json:
        typer.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    out = Console()
    if not infos:
        out.print(f"no runs in {base / 'runs'}")
    for info in infos:
        style = "red bold" if info.state.startswith("dead") or info.state == "corrupt" else ""
        pid = f"pid {info.pid} {'alive' if info.alive else 'gone'}" if info.pid else "pid ?"
        line = Text(f"{info.run_id}  {info.runbook}  ", style=style)
        line.append(info.state, style=style or "bold")
        line.append(f"  ({pid}, started {info.started})", style="dim")
        out.print(line, soft_wrap=True)
        if info.problem:
            out.print(Text(f"  journal: {info.problem}", style="yellow"), soft_wrap=True)
        if info.isolation:
            out.print(Text(f"  isolation: {info.isolation}", style="yellow"), soft_wrap=True)
        if info.state.startswith("dead"):
            out.print(
                f"  -> 'drill resume {info.run_id}' or 'drill abort {info.run_id}'",
                style="yellow",
            )
    for holder in holders(base):
        if not holder.alive and (run_id is None or holder.run_id == run_id):
            out.print(Text(f"lock left: {holder.describe()}", style="yellow"), soft_wrap=True)


def _recover(
    ctx: typer.Context,
    action: Action,
    run_id: str,
    inventory: Path | None,
    yes: bool,
    report_dir: Path | None,
    junit: Path | None,
    as_json: bool,
    insecure_host_keys: bool,
) -> None:
    from drill.engine import isolation
    from drill.engine.context import RunOptions
    from drill.engine.owner import current, read_owner, write_owner
    from drill.engine.recovery import Recovery
    from drill.engine.rundir import RunDir, check_outputs, existing_run, state_dir
    from drill.engine.runner import Engine, inventory_secrets
    from drill.engine.runs import check_recoverable, find_run, run_info
    from drill.engine.trace import Trace
    from drill.report.console import ConsoleObserver

    existing_run(state_dir(), run_id)  # a malformed or unknown id is exit 2, never a path
    check_outputs(report_dir, junit)
    path = find_run(state_dir(), run_id)
    info = run_info(path)
    check_recoverable(info, action)
    assert info.journal is not None
    trace = Trace.of(info.journal)
    owner = read_owner(path)
    runbook = Path(owner.runbook if owner else trace.runbook_path)
    inv = inventory or (Path(owner.inventory) if owner and owner.inventory else None)
    var = owner.var if owner else []
    loaded = load(runbook, inv, var)
    if trace.sha256 and loaded.sha256 != trace.sha256:
        raise InputError(
            f"error: {runbook} changed since run {run_id} started (sha256 differs); "
            "restore the runbook as run (a masked copy is in the run directory)"
        )
    workers = owner.workers if owner else 20
    nr = nornir_for(loaded, workers)
    insecure = insecure_host_keys or bool(owner and owner.insecure_host_keys)
    policy = apply_host_key_policy(nr, insecure)
    secrets = inventory_secrets(nr)
    console = ConsoleObserver(Console(stderr=True), secrets=secrets)
    interactive = sys.stdin.isatty()
    catalog = Path(owner.catalog) if owner and owner.catalog else None
    options = RunOptions(
        assume_yes=yes,
        interactive=interactive,
        confirm=(lambda prompt: typer.confirm(prompt, default=False)) if interactive else None,
        catalog=catalog,
    )
    if action == "resume":  # an abort only undoes: it runs no rehearsal, needs no catalog
        options.isolation_plan = isolation.preflight(loaded.model, loaded.path, catalog, nr)
    engine = Engine(
        loaded,
        nr,
        options,
        observers=observers(ctx, console),
        recovery=Recovery.of(trace, action),
        rundir=RunDir(path),
    )
    engine.record.host_key_policy = policy
    write_owner(path, current(runbook, inv, var, workers, insecure, catalog))
    hosts = list(loaded.all_hosts())
    record = run_locked(engine, hosts, takeover=True)
    finish(record, engine, console, secrets, report_dir, junit, as_json)


def resume(
    ctx: typer.Context,
    run_id: RunIdArg,
    inventory: InventoryOpt = None,
    yes: YesOpt = False,
    report_dir: ReportDirOpt = None,
    junit: JunitOpt = None,
    as_json: JsonOpt = False,
    insecure_host_keys: InsecureOpt = False,
) -> None:
    """Continue a dead run from its journal (re-verifying the step it died in)."""
    _recover(ctx, "resume", run_id, inventory, yes, report_dir, junit, as_json, insecure_host_keys)


def abort(
    ctx: typer.Context,
    run_id: RunIdArg,
    inventory: InventoryOpt = None,
    report_dir: ReportDirOpt = None,
    junit: JunitOpt = None,
    as_json: JsonOpt = False,
    insecure_host_keys: InsecureOpt = False,
) -> None:
    """Roll back everything a dead run changed, and prove the restore."""
    _recover(ctx, "abort", run_id, inventory, True, report_dir, junit, as_json, insecure_host_keys)


def unlock(run_id: RunIdArg) -> None:
    """Clear the device locks a dead run left (its devices may still be changed)."""
    from drill.engine.locks import unlock as clear
    from drill.engine.rundir import state_dir

    freed = clear(state_dir(), run_id)
    if not freed:
        typer.echo(f"run {run_id} holds no locks")
        return
    typer.echo(f"unlocked {', '.join(freed)} (run {run_id}); check those devices")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("resume")(resume)
    app.command("abort")(abort)
    app.command("unlock")(unlock)
