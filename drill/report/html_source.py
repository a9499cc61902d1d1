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
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from drill.engine.records import (
    HostResult,
    Outcome,
    Phase,
    ProbeResult,
    RestoreResult,
    RunRecord,
    StepRecord,
    StepStatus,
)
from drill.errors import Diagnostic, InputError
from drill.probes.bins import ProbeBins, read_all
from drill.report.files import write_atomic
from drill.report.html import HTML_NAME, render_html
from drill.report.report import REPORT_NAME, build_report

log = logging.getLogger(__name__)

PROBES_DIR = "probes"
E = TypeVar("E", bound=StrEnum)
D = TypeVar("D")


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
    report_file = run_dir / REPORT_NAME
    if report_file.exists():
        try:
            data = json.loads(report_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            where = Diagnostic(str(report_file), exc.lineno, exc.colno, f"not JSON: {exc.msg}")
            raise InputError([where]) from None
        except (OSError, ValueError) as exc:
            raise InputError([Diagnostic(str(report_file), 1, 1, f"unreadable: {exc}")]) from None
        if isinstance(data, dict):
            return data, "report.json"
        raise InputError([Diagnostic(str(report_file), 1, 1, "not a report object")])
    journal = run_dir / "journal.jsonl"
    if not journal.exists():
        raise InputError(f"error: {run_dir}: neither report.json nor journal.jsonl")
    return build_report(record_from_journal(run_dir)), "journal"


def record_from_journal(run_dir: Path) -> RunRecord:
    """What the journal of a run that never finished says: steps (without diffs, which the
    journal does not keep), restores, notes, the devices it may have left changed, and the
    probes' totals from their bins. This is the only reader of journal events here."""
    from drill.engine.journal import read_journal
    from drill.engine.resume import Trace

    events = read_journal(run_dir / "journal.jsonl")
    start = next((e for e in events if e.get("event") == "run_started"), {})
    record = RunRecord(
        run_id=str(start.get("run_id", run_dir.name)),
        runbook_name=str(start.get("runbook", "")),
        runbook_path=str(start.get("runbook_path", "")),
        runbook_sha256=str(start.get("sha256", "")),
        mode=str(start.get("mode", "")),
        dry_run=bool(start.get("dry_run")),
        operator=str(start.get("operator", "")),
        change_id=_opt(start.get("change_id")),
        started=_when(start.get("ts")) or datetime.fromtimestamp(0).astimezone(),
        rto_target_s=_rto_of(run_dir / "runbook.yml"),
    )
    steps: dict[str, StepRecord] = {}
    for event in events:
        _apply(record, steps, event)
    record.steps = list(steps.values())
    if record.outcome is None:
        for host, names in sorted(Trace.from_events(events).left_changed().items()):
            record.notes.append(
                f"OPERATOR: {host} may be left changed by step(s) "
                f"{', '.join(repr(n) for n in names)}: the run never finished; "
                f"'drill resume {record.run_id}' or 'drill abort {record.run_id}'"
            )
    record.probes = [_probe_totals(b) for _, b in sorted(load_bins(run_dir).items())]
    return record


def _apply(record: RunRecord, steps: dict[str, StepRecord], e: dict[str, Any]) -> None:
    kind, key = e.get("event"), str(e.get("step", ""))
    if kind == "step_started":
        steps.pop(key, None)  # a resumed run re-ran it: keep run order
        steps[key] = StepRecord(
            name=str(e.get("name", "")),
            kind=str(e.get("step_kind", "")),
            phase=_enum(Phase, e.get("phase"), Phase.STEP),
            status=StepStatus.INTERRUPTED,  # until it ends
            started=_when(e.get("ts")),
            hosts={str(h): HostResult() for h in e.get("hosts") or []},
            message="started, never ended: the process died",
        )
    elif kind == "host_result" and key in steps:
        steps[key].hosts[str(e.get("host"))] = HostResult(
            changed=bool(e.get("changed")), failed=bool(e.get("failed")), error=_opt(e.get("error"))
        )
    elif kind == "step_ended" and key in steps:
        step = steps[key]
        step.status = _enum(StepStatus, e.get("status"), StepStatus.INTERRUPTED)
        step.ended, step.message = _when(e.get("ts")), _opt(e.get("message"))
    elif kind == "restore":
        record.restore[str(e.get("host"))] = RestoreResult(
            bool(e.get("exact")), str(e.get("diff") or "")
        )
    elif kind == "note":
        record.notes.append(str(e.get("text", "")))
    elif kind == "run_ended":
        record.outcome = _enum(Outcome, e.get("outcome"), None)
        record.ended = _when(e.get("ts"))


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


def _enum(cls: type[E], value: object, default: D) -> E | D:
    try:
        return cls(str(value))
    except ValueError:
        return default


def _when(stamp: object) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
