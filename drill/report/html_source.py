"""Where report.html's data comes from, for a live run and for any run afterwards.

A run that finished (or was resumed or aborted) has ``report.json``: that is the source, so
the page and the JSON state the same facts. A run whose process died has only its journal:
:func:`record_from_journal` rebuilds what the journal knows (the one place this module reads
the journal's events). Probe data comes from ``probes/*.bins.jsonl`` in both cases.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from drill.engine.records import (
    ProbeResult,
    RestoreResult,
    RunRecord,
)
from drill.errors import Diagnostic, InputError
from drill.probes.bins import ProbeBins, read_all
from drill.report.files import write_atomic
from drill.report.html import HTML_NAME, render_html
from drill.report.report import REPORT_NAME, build_report

log = logging.getLogger(__name__)

PROBES_DIR = "probes"
MAX_REPORT_BYTES = 256 * 1024 * 1024  # as the journal reader's bound


def html_target(path: Path) -> Path:
    """``path`` if it names an .html file; beside it if it names report.json; else
    ``path/report.html``.

    >>> html_target(Path("out")).as_posix(), html_target(Path("out/x.json")).as_posix()
    ('out/report.html', 'out/x.html')
    >>> html_target(Path("out/x.html")).as_posix()
    'out/x.html'
    """
    if path.suffix == ".html" and not path.is_dir():
        return path
    if path.suffix == ".json" and not path.is_dir():
        return path.with_suffix(".html")
    return path / HTML_NAME


def load_bins(run_dir: Path) -> dict[str, ProbeBins]:
    return read_all(run_dir / PROBES_DIR)


def write_html(
    report: dict[str, Any],
    run_dir: Path,
    targets: Iterable[Path],
    *,
    source: str = "report.json",
    secrets: Iterable[str] = (),
) -> list[Path]:
    """Render once, write to every target (a directory or an .html file); return the files."""
    page = render_html(report, load_bins(run_dir), source=source, secrets=secrets)
    written = []
    for target in targets:
        path = html_target(target)
        write_atomic(path, page)
        log.info("HTML report written to %s", path)
        written.append(path)
    return written


def report_data(run_dir: Path) -> tuple[dict[str, Any], str]:
    """report.json's data for ``run_dir`` and where it came from (``report.json`` or
    ``journal``). InputError when neither is readable."""
    from drill.runbook.yamlpos import YamlError, read_text

    report_file = run_dir / REPORT_NAME
    if report_file.exists():
        try:
            # a planted FIFO or an endless file must not hang `drill report`
            data = json.loads(read_text(report_file, str(report_file), limit=MAX_REPORT_BYTES))
        except YamlError as exc:
            raise InputError(exc.diagnostics) from None
        except json.JSONDecodeError as exc:
            where = Diagnostic(str(report_file), exc.lineno, exc.colno, f"not JSON: {exc.msg}")
            raise InputError([where]) from None
        except ValueError as exc:
            raise InputError([Diagnostic(str(report_file), 1, 1, f"unreadable: {exc}")]) from None
        if isinstance(data, dict):
            return data, "report.json"
        raise InputError([Diagnostic(str(report_file), 1, 1, "not a report object")])
    journal = run_dir / "journal.jsonl"
    if not journal.exists():
        raise InputError(f"error: {run_dir}: neither report.json nor journal.jsonl")
    return build_report(record_from_journal(run_dir)), "journal"


def record_from_journal(run_dir: Path) -> RunRecord:
    """What the journal of a run that never finished says: steps with their per-host results,
    restores, notes, the devices it may have left changed, and the probes' totals from their
    bins. The journal is read through the engine's one typed reader and Trace."""
    from drill.engine.events import RestoreEntry, RunEndedEntry, RunStartedEntry
    from drill.engine.journal_reader import read_journal
    from drill.engine.trace import Trace

    journal = read_journal(run_dir / "journal.jsonl")
    trace = Trace.of(journal)
    start = next((e for e in journal.entries if isinstance(e, RunStartedEntry)), None)
    record = RunRecord(
        run_id=start.run_id if start else run_dir.name,
        runbook_name=start.runbook if start else "",
        runbook_path=start.runbook_path if start else "",
        runbook_sha256=start.sha256 if start else "",
        mode=start.mode if start else "",
        dry_run=start.dry_run if start else False,
        operator=start.operator if start else "",
        change_id=start.change_id if start else None,
        started=trace.started or datetime.fromtimestamp(0).astimezone(),
        rto_target_s=_rto_of(run_dir / "runbook.yml"),
    )
    record.steps = [step.record() for step in trace.steps.values()]
    for entry in journal.entries:
        if isinstance(entry, RestoreEntry):
            record.restore[entry.host] = RestoreResult(entry.exact, entry.diff)
        elif isinstance(entry, RunEndedEntry):
            record.outcome, record.ended = entry.outcome, entry.ts
    record.notes = list(trace.notes)
    for problem in journal.problems:
        record.notes.append(f"OPERATOR: journal {problem.where(journal.path)}: {problem.message}")
    if record.outcome is None:
        for host, names in sorted(trace.left_changed().items()):
            record.notes.append(
                f"OPERATOR: {host} may be left changed by step(s) "
                f"{', '.join(repr(n) for n in names)}: the run never finished; "
                f"'drill resume {record.run_id}' or 'drill abort {record.run_id}'"
            )
    record.probes = [_probe_totals(b) for _, b in sorted(load_bins(run_dir).items())]
    return record


def _probe_totals(data: ProbeBins) -> ProbeResult:
    head = data.header
    return ProbeResult(
        name=head.probe,
        kind=head.kind,
        rate=head.rate,
        sent=sum(b.sent for b in data.bins),
        lost=sum(b.lost for b in data.bins),
        max_gap_ms=float("nan"),  # unknown without the agent's result: null in the report
        error="the run never finished: totals from the per-bin file, interruption not measured",
    )


def _rto_of(runbook: Path) -> float | None:
    """The runbook's ``rto`` from the copy in the run directory, if it can be read."""
    import yaml

    from drill.runbook.durations import Duration

    try:
        data = yaml.safe_load(runbook.read_text(encoding="utf-8"))
        value = data.get("rto") if isinstance(data, dict) else None
        return None if value is None else float(Duration.parse(str(value)))
    except (OSError, ValueError, yaml.YAMLError):
        return None
