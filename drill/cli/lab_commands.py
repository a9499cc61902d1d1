"""``drill lab up|down|status|exec|fault``: thin commands over :class:`drill.lab.lab.Lab`."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from drill.errors import ExitCode, InputError

log = logging.getLogger(__name__)

lab_app = typer.Typer(
    name="lab",
    help="Run a containerlab topology with network namespaces (no Docker needed).",
    no_args_is_help=True,
)

TopologyArg = Annotated[
    Path, typer.Argument(help="Lab directory (with one *.clab.yml) or the topology file.")
]


@lab_app.command("up")
def up(
    topology: TopologyArg,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for convergence.")] = 30.0,
) -> None:
    """Create the lab (idempotent); return once it has converged, or clean up and fail."""
    from drill.lab.lab import Lab

    lab = Lab(topology)
    result = lab.up(timeout=timeout)
    if result.already_up:
        typer.echo(f"lab {lab.name} is already up")
    else:
        typer.echo(f"lab {lab.name} is up and converged in {result.seconds:.1f} s")
    if result.inventory is not None:
        typer.echo(
            f"nornir inventory: {result.inventory}/ (hosts.yaml, groups.yaml, defaults.yaml)"
        )


@lab_app.command("down")
def down(topology: TopologyArg) -> None:
    """Remove every namespace, process, link and file the lab made."""
    from drill.lab.lab import Lab

    lab = Lab(topology)
    lab.down()
    typer.echo(f"lab {lab.name} is down")


@lab_app.command("status")
def status(
    topology: TopologyArg,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Nodes, daemons, BGP, BFD and VRRP state, and active faults, at a glance."""
    from drill.lab.lab import Lab
    from drill.lab.status import lab_status, render_status

    report = lab_status(Lab(topology))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render_status(report))
    if not report["up"]:
        raise SystemExit(int(ExitCode.FAILED))


@lab_app.command(
    "exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def exec_(
    topology: TopologyArg,
    node: Annotated[str, typer.Argument(help="Node name, as in the topology.")],
    command: Annotated[list[str], typer.Argument(help="Command and its arguments (after --).")],
) -> None:
    """Run a command on a node, as `containerlab exec` does; its exit code is passed through."""
    from drill.lab.lab import Lab

    lab = Lab(topology)
    if not command:
        raise InputError(
            "error: give the command after `--`, e.g. `-- vtysh -c 'show bgp summary'`"
        )
    proc = subprocess.run(_checked_exec_argv(lab, node, command), check=False)
    # SystemExit, not typer.Exit: in non-standalone mode click turns Exit into a return value.
    raise SystemExit(proc.returncode)


def _checked_exec_argv(lab: object, node: str, command: list[str]) -> list[str]:
    from drill.lab.lab import Lab
    from drill.lab.privileges import require_root

    assert isinstance(lab, Lab)
    require_root("drill lab exec")
    return lab.exec_argv(node, command)


@lab_app.command("fault")
def fault(
    topology: TopologyArg,
    kind: Annotated[
        str | None, typer.Argument(help="link, node, mgmt or site.", show_default=False)
    ] = None,
    target: Annotated[
        str | None,
        typer.Argument(
            help="A:B (or A:IFACE:B:IFACE... as node:iface) for link; a drill.site label for "
            "site; N otherwise."
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="down (links down; the default) or blackhole (drop all; a site's only mode).",
            show_default=False,
        ),
    ] = None,
    for_: Annotated[
        str | None,
        typer.Option(
            "--for",
            help="site only: how long the site stays cut off (30s, 5m); the lab lifts the cut "
            "by itself, the command returns at once.",
            show_default=False,
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Undo the given fault, or all faults.")
    ] = False,
) -> None:
    """Inject a fault (link, node, management, or a whole site under a lab-side timer) or
    clear one/all: `--clear [KIND TARGET]`."""
    from drill.lab.faults import SITE, apply_fault, clear_faults
    from drill.lab.isolation import isolate_site, lift_isolation
    from drill.lab.lab import Lab

    lab = Lab(topology)
    if clear:
        if for_ is not None:
            raise InputError("error: --for is for cutting a site, not for --clear")
        if kind == SITE and target is not None:
            lifted = lift_isolation(lab, target)
            typer.echo("cleared: " + (f"{SITE} {target} blackhole" if lifted else "nothing"))
            return
        cleared = clear_faults(lab, kind, target)
        typer.echo("cleared: " + (", ".join(cleared) if cleared else "nothing"))
        return
    if kind is None or target is None:
        raise InputError(
            "error: give a fault (`link A:B`, `node N`, `mgmt N` or `site S --for 60s`) or --clear"
        )
    if kind == SITE:
        seconds = _site_seconds(for_, mode)
        record = isolate_site(lab, target, seconds)
        typer.echo(
            f"fault: {record.key} {record.mode} for {for_}; the lab lifts it by itself "
            f"(at {_clock(record.expires_at)})"
        )
        return
    if for_ is not None:
        raise InputError(f"error: --for is for `site`, not `{kind}` (clear it with --clear)")
    record = apply_fault(lab, kind, target, mode or "down")
    typer.echo(f"fault: {record.key} {record.mode}")


def _site_seconds(for_: str | None, mode: str | None) -> float:
    from drill.runbook.durations import Duration

    if for_ is None:
        raise InputError(
            "error: a site cut needs --for DURATION (e.g. --for 60s): the lab lifts it"
        )
    if mode not in (None, "blackhole"):
        raise InputError(f"error: a site is cut silently: --mode blackhole only, not `{mode}`")
    try:
        seconds = float(Duration.parse(for_))
    except ValueError as exc:
        raise InputError(f"error: --for: {exc}") from None
    if seconds <= 0:
        raise InputError("error: --for must be longer than 0s")
    return seconds


def _clock(epoch: float | None) -> str:
    import datetime as dt

    if epoch is None:
        return "?"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S UTC")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the drill app."""
    app.add_typer(lab_app, name="lab")
