"""``drill run``, ``drill plan`` and ``drill graph``: thin commands around drill.engine; and
what ``drill resume``/``abort`` (drill.cli.recovery_commands) share with ``run``: loading,
nornir, host-key policy, locks, reports and exit codes."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from drill.cli.extensions import Extensions
from drill.engine.context import RunOptions
from drill.engine.events import Observer
from drill.engine.machine import mermaid
from drill.engine.plan import build_plan
from drill.errors import DrillError, ExitCode, InputError
from drill.report.console import ConsoleObserver

if TYPE_CHECKING:
    from nornir.core import Nornir

    from drill.engine.records import Outcome, RunRecord
    from drill.engine.runner import Engine
    from drill.runbook.loader import LoadedRunbook

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
CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="Flow catalog for the isolate: phase (default: the runbook's flows.catalog).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure-host-keys",
        help="Do not check SSH host keys (host_key_policy=ignore); recorded in the report.",
    ),
]


def load(runbook: Path, inventory: Path | None, var: list[str] | None) -> LoadedRunbook:
    from drill.runbook.loader import load_runbook, parse_var_args

    return load_runbook(
        runbook, inventory_override=inventory, var_overrides=parse_var_args(var or [])
    )


def nornir_for(loaded: LoadedRunbook, workers: int) -> Nornir:
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


# --- shared by run, resume and abort -------------------------------------------------


def apply_host_key_policy(nr: Nornir, insecure: bool) -> str:
    """Relax host-key checks on every host if asked; return the policy the report records.

    The driver checks against known_hosts by default (``strict``); an inventory may say
    otherwise per host (optional_args ``host_key_policy``).
    """
    from nornir.core.inventory import ConnectionOptions

    policies: set[str] = set()
    for host in nr.inventory.hosts.values():
        params = host.get_connection_parameters("napalm")
        extras = dict(params.extras or {})
        optional = dict(extras.get("optional_args") or {})
        if insecure:
            optional["host_key_policy"] = "ignore"
            extras["optional_args"] = optional
            # nornir does not deep-merge extras: the host gets the whole resolved set
            host.connection_options["napalm"] = ConnectionOptions(
                hostname=params.hostname,
                port=params.port,
                username=params.username,
                password=params.password,
                platform=params.platform,
                extras=extras,
            )
        policies.add(str(optional.get("host_key_policy", "strict")))
    if not policies:
        return "strict"
    return policies.pop() if len(policies) == 1 else "mixed: " + ", ".join(sorted(policies))


def needs_operator(outcome: Outcome | None) -> bool:
    """Devices may be left changed: the locks keep naming the run."""
    return outcome is None or outcome.value == "rollback_failed"


def run_locked(engine: Engine, hosts: list[str], takeover: bool = False) -> RunRecord:
    """Hold the hosts' locks around ``engine.run()``. A refused run leaves no run dir."""
    from drill.engine.locks import HostLocks
    from drill.engine.rundir import state_dir
    from drill.errors import RefusedError

    locks = HostLocks(state_dir(), hosts, engine.run_id, takeover=takeover)
    try:
        locks.acquire()
    except RefusedError:
        if not takeover:
            engine.journal.close()
            shutil.rmtree(engine.rundir.path, ignore_errors=True)
        raise
    record = None
    try:
        record = engine.run()
    finally:
        locks.release(keep=needs_operator(record.outcome if record is not None else None))
    return record


def finish(
    record: RunRecord,
    engine: Engine,
    console: ConsoleObserver,
    secrets: tuple[str, ...],
    report_dir: Path | None,
    junit: Path | None,
    as_json: bool,
) -> None:
    """Reports, summary, exit code: the same for run, resume and abort."""
    from drill.report.console import json_summary
    from drill.report.facts import exit_code_for
    from drill.report.junit import write_junit
    from drill.report.report import write_html_reports, write_report

    written = [write_report(record, engine.rundir.path, secrets=secrets)]
    if report_dir is not None:
        written.append(write_report(record, report_dir, secrets=secrets))
    written += write_html_reports(record, engine.rundir.path, report_dir, secrets=secrets)
    if junit is not None:
        written.append(write_junit(record, junit, secrets=secrets))
    console.summary(record)
    console.console.print(Text(f"run directory: {engine.rundir.path}", style="dim"), soft_wrap=True)
    for path in written:
        console.console.print(Text(f"report: {path}", style="dim"), soft_wrap=True)
    if as_json:
        summary = json_summary(record, secrets=secrets)
        summary["run_dir"] = str(engine.rundir.path)
        typer.echo(json.dumps(summary, indent=2))
    code = exit_code_for(record.outcome)
    if code is not ExitCode.OK:
        raise SystemExit(int(code))


def observers(ctx: typer.Context, console: ConsoleObserver) -> list[Observer]:
    """The console, plus what a program embedding drill passed to main() (the drill
    command itself passes nothing; see :class:`drill.cli.extensions.Extensions`)."""
    found = ctx.find_object(Extensions)
    return [console, *(found.observers if found is not None else ())]


# --- commands ---------------------------------------------------------------------------


def plan(
    runbook: RunbookArg,
    inventory: InventoryOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """Show what a run would do: order, target hosts per step, and the rollback plan."""
    from drill.engine.isolation import plan_lines
    from drill.flows.plan_section import run_check

    loaded = load(runbook, inventory, var)
    the_plan = build_plan(loaded)
    flows = run_check(loaded, runbook, catalog_override=catalog)  # evacuate + flows.catalog
    addresses = {  # extended data (groups, defaults), as host_addresses() reads from nornir
        name: [str(a) for a in found]
        for name, host in loaded.inventory.hosts.items()
        if isinstance(found := host.data.get("addresses") or [], list)
    }
    try:
        isolation = plan_lines(loaded.model, loaded.path, catalog, addresses)
    except DrillError as exc:
        raise InputError(f"{runbook}: error: {exc}") from None
    if as_json:
        doc = the_plan.as_dict() | ({"flows": flows.to_dict()} if flows else {})
        doc |= {"isolation": isolation} if isolation else {}
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
    if isolation:
        out.print(Text("isolation rehearsal:", style="bold"))
        for line_text in isolation:
            out.print(Text(f"  {line_text}"), soft_wrap=True)


def graph() -> None:
    """Print the run lifecycle as a Mermaid state diagram."""
    typer.echo(mermaid(), nl=False)


def run(
    ctx: typer.Context,
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
    insecure_host_keys: InsecureOpt = False,
    catalog: CatalogOpt = None,
) -> None:
    """Run a drill: prechecks, steps, postchecks; on failure roll back and prove it."""
    from drill.engine import isolation
    from drill.engine.owner import current, write_owner
    from drill.engine.rundir import check_outputs
    from drill.engine.runner import Engine, inventory_secrets

    check_outputs(report_dir, junit)  # before any device: a run must never end unreported
    loaded = load(runbook, inventory, var)
    nr = nornir_for(loaded, workers)
    policy = apply_host_key_policy(nr, insecure_host_keys)
    secrets = inventory_secrets(nr)
    console = ConsoleObserver(Console(stderr=True), secrets=secrets)
    interactive = sys.stdin.isatty()
    options = RunOptions(
        dry_run=dry_run,
        assume_yes=yes,
        interactive=interactive,
        change_id=change_id,
        confirm=(lambda prompt: typer.confirm(prompt, default=False)) if interactive else None,
        catalog=catalog,
    )
    options.isolation_plan = isolation.preflight(loaded.model, loaded.path, catalog, nr)
    engine = Engine(loaded, nr, options, observers=observers(ctx, console))
    engine.record.host_key_policy = policy
    inv = inventory or getattr(loaded, "inventory_path", None)
    owner = current(runbook, inv, var, workers, insecure_host_keys, catalog)
    write_owner(engine.rundir.path, owner)
    all_hosts = getattr(loaded, "all_hosts", None)
    hosts = list(all_hosts()) if all_hosts is not None else sorted(nr.inventory.hosts)
    record = run_locked(engine, hosts)
    finish(record, engine, console, secrets, report_dir, junit, as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the drill app."""
    app.command("run")(run)
    app.command("plan")(plan)
    app.command("graph")(graph)
