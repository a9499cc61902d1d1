"""``drill report RUN_ID``: a run's report again, from its run directory, for any run (one
that finished, was resumed or aborted, or whose process died: then from its journal)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from drill.errors import InputError

log = logging.getLogger(__name__)


def _run_dir(run_id: str) -> Path:
    """A run id (see 'drill status'), or the path of a run directory when it has a '/'."""
    from drill.engine.rundir import existing_run, state_dir

    if "/" in run_id:
        given = Path(run_id)
        if given.is_dir() and any((given / f).is_file() for f in ("report.json", "journal.jsonl")):
            return given
        raise InputError(f"error: {run_id!r} is not a run directory (no report.json or journal)")
    return existing_run(state_dir(), run_id)  # a malformed or unknown id is exit 2


def report(
    run_id: Annotated[str, typer.Argument(help="A run id (see 'drill status') or a run dir.")],
    html: Annotated[
        bool, typer.Option("--html", help="Write report.html (self-contained) instead.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="With --html: the file; default: in the run dir."),
    ] = None,
) -> None:
    """Print a run's report.json data, or regenerate its report.html (--html)."""
    from drill.report.html_source import report_data, write_html

    if output is not None and not html:
        raise InputError("error: -o/--output goes with --html")
    run_dir = _run_dir(run_id)
    data, source = report_data(run_dir)
    if not html:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for path in write_html(data, run_dir, [output or run_dir], source=source):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
