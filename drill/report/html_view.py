"""What report.html shows, as typed records read from report.json's data.

The HTML is drawn from the same data as report.json (``build_report``'s output, or the file
itself when a report is regenerated), so the two can never state different facts. Every
string here is untrusted (device output, runbook and inventory names): the template
autoescapes it, the chart draws it as glyph outlines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostRow:
    host: str
    changed: bool
    failed: bool
    error: str | None
    diff: str


@dataclass(frozen=True)
class StepRow:
    number: int
    name: str
    kind: str
    phase: str
    status: str
    started: str | None
    ended: str | None
    duration_s: float | None
    message: str | None
    hosts: list[HostRow]


@dataclass(frozen=True)
class Approval:
    step: str
    who: str
    when: str | None
    status: str


@dataclass(frozen=True)
class RestoreRow:
    host: str
    exact: bool
    diff: str


@dataclass(frozen=True)
class OutageRow:
    start: str | None
    end: str | None
    lost: int
    gap_ms: float | None


@dataclass(frozen=True)
class ProbeRow:
    name: str
    kind: str
    rate: float
    sent: int
    lost: int
    max_gap_ms: float | None
    by_step: list[tuple[str, int, float | None]]
    backends: list[tuple[str, int]]
    outages: list[OutageRow]
    error: str | None

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0

    @property
    def worst_step(self) -> str | None:
        worst = max(self.by_step, key=lambda s: (s[2] or 0.0, s[1]), default=None)
        return worst[0] if worst is not None and (worst[2] or worst[1]) else None


@dataclass(frozen=True)
class ReportView:
    run_id: str
    tool_version: str
    runbook_name: str
    runbook_path: str
    runbook_sha256: str
    mode: str
    dry_run: bool
    operator: str
    change_id: str | None
    outcome: str | None
    exit_code: int
    started: str | None
    ended: str | None
    duration_s: float | None
    rto_target_s: float | None
    rto_measured_s: float | None
    rto_met: bool | None
    host_key_policy: str
    steps: list[StepRow]
    restore: list[RestoreRow]
    probes: list[ProbeRow]
    notes: list[str]
    leftovers: list[str] = field(default_factory=list)
    isolation: IsolationView | None = None
    source: str = "report.json"  # or "journal": rebuilt from a run that never finished

    @property
    def approvals(self) -> list[Approval]:
        """Who answered each approval step, and when (the step's end)."""
        return [
            Approval(s.name, _who(s.message, self.operator), s.ended, s.status)
            for s in self.steps
            if s.kind == "approval"
        ]

    @property
    def operator_notes(self) -> list[str]:
        return [n for n in self.notes if n not in self.leftovers]

    @property
    def started_at(self) -> datetime | None:
        return _parse(self.started)


@dataclass(frozen=True)
class FlowRow:
    flow: str
    tier: str
    status: str
    fails_drill: bool
    attempts: int
    failed: int
    failed_pct: float
    target: str
    target_note: str
    evidence: str


@dataclass(frozen=True)
class IsolationView:
    site: str
    for_s: float
    cut_at: str | None
    lifted_at: str | None
    lifted_by: str
    verdict: str
    hidden: list[str]
    flows: list[FlowRow]
    unprobed: list[tuple[str, str, str]]  # flow, tier, reason
    gone_with_site: int


def _isolation(data: object) -> IsolationView | None:
    if not isinstance(data, dict):
        return None
    flows = [_flow_row(f) for f in data.get("flows") or [] if isinstance(f, dict)]
    unprobed = [
        (str(u.get("flow", "")), str(u.get("tier", "")), str(u.get("reason", "")))
        for u in data.get("unprobed") or []
        if isinstance(u, dict)
    ]
    return IsolationView(
        site=str(data.get("site", "")),
        for_s=_opt_float(data.get("for_s")) or 0.0,
        cut_at=_opt_str(data.get("cut_at")),
        lifted_at=_opt_str(data.get("lifted_at")),
        lifted_by=str(data.get("lifted_by") or "?"),
        verdict=str(data.get("verdict", "")),
        hidden=[str(h) for h in data.get("hidden_dependencies") or []],
        flows=flows,
        unprobed=unprobed,
        gone_with_site=int(data.get("gone_with_site") or 0),
    )


def _flow_row(f: dict[str, Any]) -> FlowRow:
    during = f.get("during") or {}
    probe = f.get("probe") or {}
    ev = f.get("evidence") or {}
    return FlowRow(
        flow=str(f.get("flow", "")),
        tier=str(f.get("tier", "")),
        status=str(f.get("status", "")),
        fails_drill=bool(f.get("fails_drill")),
        attempts=int(during.get("attempts") or 0),
        failed=int(during.get("failed") or 0),
        failed_pct=_opt_float(during.get("failed_pct")) or 0.0,
        target=f"{probe.get('target', '')}:{probe.get('port', '')} from {probe.get('host', '')}",
        target_note=str(probe.get("target_note") or ""),
        evidence=(
            f"{ev.get('records', '?')} records, first seen {ev.get('first_seen', '?')}, "
            f"last seen {ev.get('last_seen', '?')}"
        ),
    )


def _who(message: str | None, operator: str) -> str:
    """Who answered an approval step, from its message.

    >>> _who("approved by alice", "alice"), _who("approved by --yes", "bob")
    ('alice', 'bob, with --yes (no prompt)')
    >>> _who("not approved by alice", "alice"), _who(None, "alice")
    ('alice (refused)', '(no answer recorded)')
    """
    if not message:
        return "(no answer recorded)"
    for prefix in ("approved by ", "not approved by "):
        if message.startswith(prefix):
            who = message[len(prefix) :]
            if who == "--yes":
                who = f"{operator}, with --yes (no prompt)"
            return who if prefix == "approved by " else f"{who} (refused)"
    return message


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def from_report(data: dict[str, Any], *, source: str = "report.json") -> ReportView:
    """Read report.json's data (schema_version 1); missing keys read as unknown."""
    runbook = data.get("runbook") or {}
    rto = data.get("rto") or {}
    notes = [str(n) for n in data.get("notes") or []]
    return ReportView(
        run_id=str(data.get("run_id", "")),
        tool_version=str(data.get("tool_version", "")),
        runbook_name=str(runbook.get("name", "")),
        runbook_path=str(runbook.get("path", "")),
        runbook_sha256=str(runbook.get("sha256", "")),
        mode=str(data.get("mode", "")),
        dry_run=bool(data.get("dry_run")),
        operator=str(data.get("operator", "")),
        change_id=_opt_str(data.get("change_id")),
        outcome=_opt_str(data.get("outcome")),
        exit_code=int(data.get("exit_code", 3)),
        started=_opt_str(data.get("started")),
        ended=_opt_str(data.get("ended")),
        duration_s=_opt_float(data.get("duration_s")),
        rto_target_s=_opt_float(rto.get("target_s")),
        rto_measured_s=_opt_float(rto.get("measured_s")),
        rto_met=rto.get("met") if isinstance(rto.get("met"), bool) else None,
        host_key_policy=str(data.get("host_key_policy", "")),
        steps=[_step(i, s) for i, s in enumerate(data.get("steps") or [], start=1)],
        restore=[
            RestoreRow(str(h), bool(r.get("exact")), str(r.get("diff") or ""))
            for h, r in (data.get("restore") or {}).items()
        ],
        probes=[_probe(p) for p in data.get("probes") or []],
        notes=notes,
        leftovers=[n for n in notes if n.startswith("OPERATOR:")],
        isolation=_isolation(data.get("isolation")),
        source=source,
    )


def _step(number: int, s: dict[str, Any]) -> StepRow:
    return StepRow(
        number=number,
        name=str(s.get("name", "")),
        kind=str(s.get("kind", "")),
        phase=str(s.get("phase", "")),
        status=str(s.get("status", "")),
        started=_opt_str(s.get("started")),
        ended=_opt_str(s.get("ended")),
        duration_s=_opt_float(s.get("duration_s")),
        message=_opt_str(s.get("message")),
        hosts=[_host(str(h), r) for h, r in (s.get("hosts") or {}).items()],
    )


def _probe(p: dict[str, Any]) -> ProbeRow:
    return ProbeRow(
        name=str(p.get("name", "")),
        kind=str(p.get("kind", "")),
        rate=float(p.get("rate") or 0.0),
        sent=int(p.get("sent") or 0),
        lost=int(p.get("lost") or 0),
        max_gap_ms=_opt_float(p.get("max_gap_ms")),
        by_step=[
            (str(step), int(v.get("lost") or 0), _opt_float(v.get("max_gap_ms")))
            for step, v in (p.get("by_step") or {}).items()
        ],
        backends=[(str(b), int(n)) for b, n in (p.get("backends") or {}).items()],
        outages=[_outage(o) for o in p.get("outages") or []],
        error=_opt_str(p.get("error")),
    )


def _host(host: str, r: dict[str, Any]) -> HostRow:
    return HostRow(
        host, bool(r.get("changed")), bool(r.get("failed")), _opt_str(r.get("error")),
        str(r.get("diff") or ""),
    )  # fmt: skip


def _outage(o: dict[str, Any]) -> OutageRow:
    return OutageRow(
        _opt_str(o.get("start")), _opt_str(o.get("end")), int(o.get("lost") or 0),
        _opt_float(o.get("gap_ms")),
    )  # fmt: skip


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
