"""``drill status``, ``drill resume``, ``drill abort``, ``drill unlock``: runs whose process
died, read back from their journal (drill.engine.resume); and what ``drill run`` shares with
them (locks, host-key policy, the owner file, reports and exit codes)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.text import Text

from drill.errors import ExitCode, InputError

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
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure-host-keys",
        help="Do not check SSH host keys (host_key_policy=ignore); recorded in the report.",
    ),
]


# --- shared with `drill run` ----------------------------------------------------------


def apply_host_key_policy(nr: Any, insecure: bool) -> str:
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


def needs_operator(outcome: Any) -> bool:
    """Devices may be left changed: the locks keep naming the run."""
    return outcome is None or str(getattr(outcome, "value", outcome)) == "rollback_failed"


def run_locked(engine: Any, hosts: list[str], takeover: bool = False) -> Any:
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
    record: Any,
    engine: Any,
    console: Any,
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
    console.console.print(Text(f"run directory: {engine.rundir.path}", style="dim"))
    for path in written:
        console.console.print(Text(f"report: {path}", style="dim"))
    if as_json:
        summary = json_summary(record, secrets=secrets)
        summary["run_dir"] = str(engine.rundir.path)
        typer.echo(json.dumps(summary, indent=2))
    code = exit_code_for(record.outcome)
    if code is not ExitCode.OK:
        raise SystemExit(int(code))


def observers(console: Any) -> list[Any]:
    from drill.engine.faults_hooks import from_env

    hooks = from_env()
    return [console, *([hooks] if hooks is not None else [])]


# --- status / resume / abort / unlock -------------------------------------------------


def status(
    run_id: Annotated[str | None, typer.Argument(help="A run id; none: recent runs.")] = None,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Runs to list.")] = 20,
) -> None:
    """State of a run from its journal (also of a run whose process died)."""
    from drill.engine.locks import holders
    from drill.engine.resume import find_run, run_dirs, run_info
    from drill.engine.rundir import state_dir

    base = state_dir()
    if run_id is not None:
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
        style = "red bold" if info.state.startswith("dead") else ""
        pid = f"pid {info.pid} {'alive' if info.alive else 'gone'}" if info.pid else "pid ?"
        line = Text(f"{info.run_id}  {info.runbook}  ", style=style)
        line.append(info.state, style=style or "bold")
        line.append(f"  ({pid}, started {info.started})", style="dim")
        out.print(line, soft_wrap=True)
        if info.state.startswith("dead"):
            out.print(
                f"  -> 'drill resume {info.run_id}' or 'drill abort {info.run_id}'",
                style="yellow",
            )
    for holder in holders(base):
        if not holder.alive and (run_id is None or holder.run_id == run_id):
            out.print(Text(f"lock left: {holder.describe()}", style="yellow"), soft_wrap=True)


def _recover(
    action: Literal["resume", "abort"],
    run_id: str,
    inventory: Path | None,
    yes: bool,
    report_dir: Path | None,
    junit: Path | None,
    as_json: bool,
    insecure_host_keys: bool,
) -> None:
    from drill.cli.run_commands import _load, _nornir
    from drill.engine.context import RunOptions
    from drill.engine.owner import current, read_owner, write_owner
    from drill.engine.resume import RecoveryEngine, Trace, check_recoverable, find_run, run_info
    from drill.engine.rundir import RunDir, state_dir
    from drill.engine.runner import inventory_secrets
    from drill.report.console import ConsoleObserver

    path = find_run(state_dir(), run_id)
    info = run_info(path)
    check_recoverable(info, action)
    trace = Trace.read(path)
    owner = read_owner(path)
    runbook = Path(owner.runbook if owner else trace.runbook_path)
    inv = inventory or (Path(owner.inventory) if owner and owner.inventory else None)
    var = owner.var if owner else []
    loaded = _load(runbook, inv, var)
    if trace.sha256 and loaded.sha256 != trace.sha256:
        raise InputError(
            f"error: {runbook} changed since run {run_id} started (sha256 differs); "
            "restore the runbook as run (a masked copy is in the run directory)"
        )
    workers = owner.workers if owner else 20
    nr = _nornir(loaded, workers)
    insecure = insecure_host_keys or bool(owner and owner.insecure_host_keys)
    policy = apply_host_key_policy(nr, insecure)
    secrets = inventory_secrets(nr)
    console = ConsoleObserver(Console(stderr=True), secrets=secrets)
    interactive = sys.stdin.isatty()
    options = RunOptions(
        assume_yes=yes,
        interactive=interactive,
        confirm=(lambda prompt: typer.confirm(prompt, default=False)) if interactive else None,
    )
    engine = RecoveryEngine(
        loaded,
        nr,
        options,
        RunDir(path),
        action,
        observers=observers(console),
    )
    engine.record.host_key_policy = policy
    write_owner(path, current(runbook, inv, var, workers, insecure))
    hosts = list(loaded.all_hosts())
    record = run_locked(engine, hosts, takeover=True)
    finish(record, engine, console, secrets, report_dir, junit, as_json)


def resume(
    run_id: RunIdArg,
    inventory: InventoryOpt = None,
    yes: YesOpt = False,
    report_dir: ReportDirOpt = None,
    junit: JunitOpt = None,
    as_json: JsonOpt = False,
    insecure_host_keys: InsecureOpt = False,
) -> None:
    """Continue a dead run from its journal (re-verifying the step it died in)."""
    _recover("resume", run_id, inventory, yes, report_dir, junit, as_json, insecure_host_keys)


def abort(
    run_id: RunIdArg,
    inventory: InventoryOpt = None,
    report_dir: ReportDirOpt = None,
    junit: JunitOpt = None,
    as_json: JsonOpt = False,
    insecure_host_keys: InsecureOpt = False,
) -> None:
    """Roll back everything a dead run changed, and prove the restore."""
    _recover("abort", run_id, inventory, True, report_dir, junit, as_json, insecure_host_keys)


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
