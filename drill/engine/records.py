"""What a run produced: the engine fills these, the journal, console, report and JUnit read
them. Plain dataclasses so every observer sees the same facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Phase(StrEnum):
    PRECHECK = "precheck"
    STEP = "step"
    POSTCHECK = "postcheck"
    ROLLBACK = "rollback"
    VERIFY = "verify"
    REVERIFY = "reverify"  # resume: is the effect of the step a dead run was in already there?
    ISOLATE = "isolate"  # the isolation rehearsal, after the postchecks


class StepStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    PRECHECK_FAILED = "precheck_failed"
    STOPPED = "stopped"
    DRY_RUN = "dry_run"
    DRY_RUN_FAILED = "dry_run_failed"


@dataclass
class HostResult:
    changed: bool = False
    diff: str = ""  # already masked: never holds secrets
    failed: bool = False
    error: str | None = None


@dataclass
class StepRecord:
    name: str
    kind: str
    phase: Phase
    status: StepStatus = StepStatus.OK
    started: datetime | None = None
    ended: datetime | None = None
    hosts: dict[str, HostResult] = field(default_factory=dict)
    message: str | None = None  # why it failed / was skipped, for people


@dataclass
class RestoreResult:
    exact: bool
    diff: str = ""  # snapshot vs running after rollback, masked; empty when exact


@dataclass
class Outage:
    """A run of lost probe packets/requests, in wall-clock seconds since the epoch."""

    start: float  # send time of the last packet that got through before the losses
    end: float  # send time of the first packet that got through after them
    lost: int

    def gap_ms(self, interval_s: float) -> float:
        return max(0.0, (self.end - self.start - interval_s) * 1000.0)


@dataclass
class SessionLoss:
    """One session probe connection that ended during the drill (epoch seconds)."""

    session: int  # index of the connection in the probe, 0-based
    at: float  # send time of the first message that got no (good) answer
    detected: float  # when the agent gave up on it
    reason: str  # "reset" (RST), "closed" (FIN from the peer), "stalled", "bad-echo"
    step: str | None = None  # the step running at ``at``; set by attribution


@dataclass
class SessionStats:
    """A session probe's own counts; ``ProbeResult.sent``/``lost`` count its messages."""

    requested: int
    opened: int
    losses: list[SessionLoss] = field(default_factory=list)
    open_failures: dict[str, int] = field(default_factory=dict)  # why a session never opened

    @property
    def lost(self) -> int:
        return len(self.losses)

    @property
    def survived(self) -> int:
        return self.opened - self.lost

    def count(self, *reasons: str) -> int:
        return sum(1 for loss in self.losses if loss.reason in reasons)


@dataclass
class ProbeResult:
    name: str
    kind: str  # "packet" | "service" | "session"
    rate: float
    sent: int
    lost: int
    max_gap_ms: float
    outages: list[Outage] = field(default_factory=list)
    by_step: dict[str, dict[str, float]] = field(default_factory=dict)  # {step: {lost, max_gap_ms}}
    backends: dict[str, int] = field(default_factory=dict)  # service probe: answers per backend
    error: str | None = None
    sessions: SessionStats | None = None  # session probes only


@dataclass
class RtoPlan:
    """The runbook's ``rto`` as the report needs it (drill/runbook/rto.py derives it)."""

    target_s: float | None = None
    bound_s: float | None = None
    bound_terms: dict[str, float] = field(default_factory=dict)  # each detection, plus
    probe: str | None = None  # measured from this probe; None: the service probes
    after: str | None = None  # from the start of this step (the fault)
    before: str | None = None  # interruptions starting before this step (the failback)


@dataclass
class FlowWindow:
    attempts: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # why attempts failed, by reason


@dataclass
class FlowOutcome:
    """One generated flow probe of an isolation rehearsal and its verdict."""

    flow: str  # "auth@dc2 -> settlement@dc1 tcp/8300"
    tier: str  # "required" | "deferred"
    status: str  # ok, broken, expected, down-before, not-recovered, no-data
    fails_drill: bool
    headline: str
    method: str  # tcp | dns | icmp
    host: str
    vantage: str
    source: str
    target: str
    port: int
    target_note: str
    before: FlowWindow
    during: FlowWindow
    after: FlowWindow
    recovered_s: float | None
    evidence: dict[str, object]  # from the catalog: records, packets, bytes, first/last seen


@dataclass
class IsolationResult:
    site: str
    lab: str  # "" when the cut is on devices
    catalog: str
    for_s: float
    catalog_sha256: str = ""
    means: str = "lab"  # "lab" (the lab's timer) or "devices" (cut steps, revert timers)
    cut_at: datetime | None = None
    lifted_at: datetime | None = None
    lifted_by: str = ""  # "lab timer" | "device revert timer" | "drill" (interrupted, late)
    flows: list[FlowOutcome] = field(default_factory=list)
    unprobed: list[dict[str, str]] = field(default_factory=list)  # flow, tier, reason
    gone_with_site: int = 0
    probe_cpu_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(f.fails_drill for f in self.flows)


@dataclass
class RunRecord:
    run_id: str
    runbook_name: str
    runbook_path: str
    runbook_sha256: str
    mode: str
    dry_run: bool
    operator: str
    change_id: str | None
    started: datetime
    ended: datetime | None = None
    outcome: Outcome | None = None
    steps: list[StepRecord] = field(default_factory=list)
    restore: dict[str, RestoreResult] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)
    rto_target_s: float | None = None
    rto: RtoPlan = field(default_factory=RtoPlan)
    host_key_policy: str = "strict"
    isolation: IsolationResult | None = None
    notes: list[str] = field(default_factory=list)  # loud warnings: what is left changed, etc.
