"""Facts derived from a RunRecord that every report format must state the same way:
timestamps, durations, the measured RTO, the exit code of an outcome."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from drill.engine.records import Outcome, ProbeResult, RunRecord, StepRecord
from drill.errors import ExitCode
from drill.report import rto

log = logging.getLogger(__name__)

SERVICE = "service"

_EXIT_CODES: dict[Outcome, ExitCode] = {
    Outcome.SUCCEEDED: ExitCode.OK,
    Outcome.DRY_RUN: ExitCode.OK,
    Outcome.ROLLED_BACK: ExitCode.FAILED,
    Outcome.DRY_RUN_FAILED: ExitCode.FAILED,
    Outcome.ROLLBACK_FAILED: ExitCode.OPERATOR_NEEDED,
    Outcome.STOPPED: ExitCode.OPERATOR_NEEDED,
    Outcome.PRECHECK_FAILED: ExitCode.PRECHECK_FAILED,
}


def exit_code_for(outcome: Outcome | None) -> ExitCode:
    """The process exit code for a run's outcome.

    A run without an outcome never finished (crash, kill): someone must look at the devices.

    >>> int(exit_code_for(Outcome.ROLLED_BACK)), int(exit_code_for(None))
    (1, 3)
    """
    if outcome is None:
        return ExitCode.OPERATOR_NEEDED
    return _EXIT_CODES[outcome]


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC: the engine records UTC, a naive one lost its tz."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a ``Z``.

    >>> from datetime import timedelta, timezone
    >>> iso_utc(datetime(2026, 11, 24, 17, 15, 0, 123456, tzinfo=timezone(timedelta(hours=1))))
    '2026-11-24T16:15:00.123Z'
    """
    if moment is None:
        return None
    utc = as_utc(moment)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Elapsed seconds rounded to the millisecond; None when either end is unknown."""
    if start is None or end is None:
        return None
    return round((as_utc(end) - as_utc(start)).total_seconds(), 3)


def step_duration_s(step: StepRecord) -> float | None:
    return seconds_between(step.started, step.ended)


def service_probes(record: RunRecord) -> list[ProbeResult]:
    return [p for p in record.probes if p.kind == SERVICE]


def measured_rto_s(record: RunRecord) -> float | None:
    """The longest interruption any service probe saw, in seconds; with the runbook's
    ``rto.probe``/``rto.after``, that probe's inside the failure window (drill/report/rto.py).

    None when there is no service probe: packet loss is not a service interruption. A probe
    that failed (``error``) still counts for what it measured before it failed, so the value
    is then a lower bound and :func:`rto_met` refuses to call the target met.
    """
    if rto.uses_window(record):  # the runbook's rto block picks a probe and a window
        return rto.measured_s(record)
    probes = service_probes(record)
    if not probes:
        return None
    return round(max(p.max_gap_ms for p in probes) / 1000.0, 3)


def rto_met(record: RunRecord) -> bool | None:
    """Whether the measured interruption stayed within the target; None when either is
    unknown, or when a service probe failed and what it saw stayed under the target."""
    measured = measured_rto_s(record)
    if measured is None or record.rto_target_s is None:
        return None
    if measured > record.rto_target_s:
        return False  # a lower bound already over the target is a miss
    if any(p.error for p in service_probes(record)):
        return None
    return True


def restore_incomplete(record: RunRecord) -> list[str]:
    """Hosts whose configuration after rollback differs from the snapshot, sorted."""
    return sorted(host for host, result in record.restore.items() if not result.exact)
