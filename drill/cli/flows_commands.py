"""``drill flows record|import|catalog|check``: thin commands over drill.flows."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated

import typer

from drill.errors import InputError

log = logging.getLogger(__name__)

flows_app = typer.Typer(
    name="flows",
    help="Record flows (NetFlow v9/IPFIX), catalog them by service, check a site evacuation.",
    no_args_is_help=True,
)

OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Where to write (JSON Lines); `-` for stdout.")
]


@contextmanager
def _atomic_text(path: Path) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and rename it: no half-written output."""
    if str(path) == "-":
        yield sys.stdout
        return
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise InputError(f"error: {path}: cannot write: {exc.strerror}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; the output is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@flows_app.command("record")
def record(
    duration: Annotated[
        str, typer.Option("--for", help="How long to collect: 30s, 5m, 1h.", show_default=False)
    ],
    output: OutputOpt,
    listen: Annotated[
        str, typer.Option("--listen", help="ADDR:PORT the collector listens on (UDP).")
    ] = "0.0.0.0:2055",
) -> None:
    """Collect NetFlow v9 and IPFIX with nfcapd for a window; write normalized records."""
    from drill.flows.collector import parse_listen
    from drill.flows.collector import record as collect
    from drill.runbook.durations import Duration

    try:
        seconds = float(Duration.parse(duration))
    except ValueError as exc:
        raise InputError(f"error: --for: {exc}") from None
    where = parse_listen(listen)

    def started(pid: int) -> None:
        typer.echo(f"collecting on udp {listen} for {duration} (nfcapd pid {pid}) ...", err=True)

    with _atomic_text(output) as out:
        result = collect(where, seconds, out, on_start=started)
    s = result.stats
    typer.echo(
        f"{result.records} flow records from {len(result.exporters)} exporter(s) "
        f"({', '.join(result.exporters) or 'none'}) -> {output}; nfcapd: {s.flows} flows, "
        f"{s.packets} packets, {s.sequence_errors} sequence errors, {s.bad_packets} bad packets",
        err=True,
    )


@flows_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="nfdump export: -o json or -o csv output.")],
    output: OutputOpt = Path("-"),
    timezone: Annotated[
        str,
        typer.Option("--timezone", help="Zone of the export's times (nfdump prints local time)."),
    ] = "UTC",
) -> None:
    """Normalize an nfdump JSON or CSV export into drill's flow records (JSON Lines)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from drill.flows.nfdump import read_export
    from drill.flows.records import write_jsonl

    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"error: --timezone {timezone!r}: not a time zone name (e.g. UTC, Asia/Seoul)"
        ) from None
    with _atomic_text(output) as out:
        count = write_jsonl(read_export(file, zone), out)
    typer.echo(f"{count} flow records from {file} -> {output}", err=True)


@flows_app.command("catalog")
def catalog(
    flows: Annotated[list[Path], typer.Argument(help="Flow records (JSON Lines), one or more.")],
    services: Annotated[Path, typer.Option("--services", help="The services file (YAML).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write catalog.json.")],
) -> None:
    """Aggregate flow records into service@site -> service@site flows, with unknown endpoints."""
    from drill.flows.catalog import write_catalog
    from drill.flows.parallel import catalog_files
    from drill.flows.services import load_services

    builder = catalog_files(flows, load_services(services))
    result = builder.catalog([str(p) for p in flows], str(services))
    write_catalog(result, output)
    cross = sum(1 for f in result.flows if f.cross_site)
    typer.echo(
        f"{builder.records} records -> {len(result.flows)} catalog flows ({cross} cross-site), "
        f"{len(result.unknown_endpoints)} unknown endpoint(s) -> {output}",
        err=True,
    )


@flows_app.command("check")
def check(
    runbook: Annotated[Path, typer.Argument(help="The runbook (YAML).")],
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="catalog.json (default: the runbook's flows.catalog)."),
    ] = None,
    evacuate: Annotated[
        str | None,
        typer.Option("--evacuate", help="Site to evacuate (default: the runbook's evacuate)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Flows that will still need the evacuated site: exit 1 if a dr: required service has one."""
    from drill.flows.plan_section import run_check
    from drill.runbook.loader import load_runbook

    loaded = load_runbook(runbook)
    result = run_check(loaded, runbook, catalog_override=catalog, site_override=evacuate)
    if result is None:
        raise InputError(
            f"error: {runbook}: no site to evacuate or no catalog: give --evacuate and --catalog, "
            "or declare `evacuate:` and `flows: {catalog: ...}` in the runbook"
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for line in result.lines():
            typer.echo(line)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the drill app."""
    app.add_typer(flows_app, name="flows")
