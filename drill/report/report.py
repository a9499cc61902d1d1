"""report.json: the evidence of one drill run, for change boards, auditors and CI.

The layout is documented field by field in docs/report.md; ``SCHEMA_VERSION`` changes
whenever a field changes meaning or disappears (adding a field does not).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import drill
from drill.engine.records import ProbeResult, RunRecord, StepRecord
from drill.report.facts import (
    exit_code_for,
    iso_utc,
    measured_rto_s,
    rto_met,
    seconds_between,
    step_duration_s,
)
from drill.report.files import resolve_target, write_atomic
from drill.report.isolation import isolation_fields
from drill.report.rto import rto_fields
from drill.report.sessions import session_fields
from drill.secrets import mask_secrets

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REPORT_NAME = "report.json"


def build_report(record: RunRecord, *, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The report as plain JSON-ready data, keys in their documented order.

    Every string (keys included) goes through :func:`mask_secrets` with ``secrets`` (the
    inventory passwords): the engine masks diffs already, this is the last line of defence.
    """
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool_version": drill.__version__,
        "run_id": record.run_id,
        "operator": record.operator,
        "change_id": record.change_id,
        "runbook": {
            "name": record.runbook_name,
            "path": record.runbook_path,
            "sha256": record.runbook_sha256,
        },
        "mode": record.mode,
        "dry_run": record.dry_run,
        "outcome": record.outcome.value if record.outcome is not None else None,
        "exit_code": int(exit_code_for(record.outcome)),
        "started": iso_utc(record.started),
        "ended": iso_utc(record.ended),
        "duration_s": seconds_between(record.started, record.ended),
        "steps": [_step(step) for step in record.steps],
        "restore": {
            host: {"exact": result.exact, "diff": result.diff}
            for host, result in sorted(record.restore.items())
        },
        "probes": [_probe(probe) for probe in record.probes],
        "rto": {
            "target_s": record.rto_target_s,
            "measured_s": measured_rto_s(record),
            "met": rto_met(record),
            **rto_fields(record, measured_rto_s(record)),
        },
        "host_key_policy": record.host_key_policy,
        "isolation": isolation_fields(record.isolation),
        "notes": list(record.notes),
    }
    masked: dict[str, Any] = _mask_all(report, tuple(secrets))
    return masked


def render_report(record: RunRecord, *, secrets: Iterable[str] = ()) -> str:
    """report.json's text: 2-space indent, UTF-8 as is, a final newline."""
    report = build_report(record, secrets=secrets)
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_report(record: RunRecord, path: Path, *, secrets: Iterable[str] = ()) -> Path:
    """Write DIR/report.json (or ``path`` itself when it ends in .json) atomically and
    return where it went."""
    target = resolve_target(path, REPORT_NAME)
    write_atomic(target, render_report(record, secrets=secrets))
    log.info("report written to %s", target)
    return target


def write_html_reports(
    record: RunRecord, run_dir: Path, extra: Path | None = None, *, secrets: Iterable[str] = ()
) -> list[Path]:
    """report.html in ``run_dir`` (and in ``extra``, a directory or a file name) from the
    same data as report.json plus the probes' bins. The HTML is a view: if it cannot be
    drawn the run's outcome and report.json stand, and the reason is logged."""
    from drill.report.html_source import write_html

    targets = [run_dir, *([extra] if extra is not None else [])]
    try:
        return write_html(build_report(record, secrets=secrets), run_dir, targets, secrets=secrets)
    except Exception:
        log.exception("report.html could not be written; regenerate it with 'drill report %s "
                      "--html'", record.run_id)  # fmt: skip
        return []


def _step(step: StepRecord) -> dict[str, Any]:
    return {
        "name": step.name,
        "kind": step.kind,
        "phase": step.phase.value,
        "status": step.status.value,
        "started": iso_utc(step.started),
        "ended": iso_utc(step.ended),
        "duration_s": step_duration_s(step),
        "message": step.message,
        "hosts": {
            host: {
                "changed": result.changed,
                "diff": result.diff,
                "failed": result.failed,
                "error": result.error,
            }
            for host, result in sorted(step.hosts.items())
        },
    }


def _probe(probe: ProbeResult) -> dict[str, Any]:
    interval_s = 1.0 / probe.rate if probe.rate > 0 else 0.0
    body = {
        "name": probe.name,
        "kind": probe.kind,
        "rate": probe.rate,
        "sent": probe.sent,
        "lost": probe.lost,
        "max_gap_ms": round(probe.max_gap_ms, 1),
        # step order, not alphabetical: it reads as the drill's timeline
        "by_step": {
            step: {
                "lost": int(values.get("lost", 0)),
                "max_gap_ms": round(float(values.get("max_gap_ms", 0.0)), 1),
            }
            for step, values in probe.by_step.items()
        },
        "backends": dict(sorted(probe.backends.items())),
        "outages": [
            {
                "start": iso_utc(datetime.fromtimestamp(outage.start, UTC)),
                "end": iso_utc(datetime.fromtimestamp(outage.end, UTC)),
                "lost": outage.lost,
                "gap_ms": round(outage.gap_ms(interval_s), 1),
            }
            for outage in probe.outages
        ],
        "error": probe.error,
    }
    if probe.sessions is not None:
        body.update(session_fields(probe.sessions))
    return body


def _mask_all(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, dict):
        return {_mask_all(k, secrets): _mask_all(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(item, secrets) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; a report must still be written
    return value
