"""What a journal says happened, rebuilt from its typed entries (later entries win: a resumed
run appends to the same journal).

A dead run leaves nothing else: the snapshots, each step's pre-change configs, which hosts a
commit may have touched (``commit_started`` is fsynced BEFORE a device is changed), which
rollback actions succeeded, the lifecycle state and the step in progress.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from drill.engine.events import (
    CommitStartedEntry,
    CommittedEntry,
    HostResultEntry,
    IsolationEntry,
    JournalEntry,
    NoteEntry,
    PreconfigEntry,
    RestoreEntry,
    RunEndedEntry,
    RunStartedEntry,
    SnapshotEntry,
    StateEntry,
    StepEndedEntry,
    StepKey,
    StepStartedEntry,
)
from drill.engine.journal_reader import JournalRead, read_journal
from drill.engine.machine import State
from drill.engine.records import HostResult, Outcome, Phase, StepRecord, StepStatus

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"


@dataclass
class StepTrace:
    key: StepKey
    name: str
    kind: str
    hosts: list[str]
    status: StepStatus | None = None  # None: started, never ended (the process died in it)
    started: datetime | None = None
    ended: datetime | None = None
    message: str | None = None
    results: dict[str, HostResult] = field(default_factory=dict)

    def record(self) -> StepRecord:
        """The step as the report shows it."""
        return StepRecord(
            self.name,
            self.kind,
            self.key.phase,
            status=self.status or StepStatus.INTERRUPTED,
            started=self.started,
            ended=self.ended,
            hosts=dict(self.results),
            message=self.message if self.status else "interrupted: the run's process died",
        )


@dataclass
class IsolationTrace:
    site: str
    lab: str
    until: datetime | None
    lifted_by: str | None = None  # None: the journal never saw the cut end


@dataclass
class Trace:
    run_id: str = ""
    runbook: str = ""
    runbook_path: str = ""
    sha256: str = ""
    started: datetime | None = None
    state: State = State.PENDING
    outcome: Outcome | None = None
    ended: bool = False
    snapshots: dict[str, str] = field(default_factory=dict)
    preconfig: dict[StepKey, dict[str, str]] = field(default_factory=dict)
    commits: dict[StepKey, list[str]] = field(default_factory=dict)
    confirmed: dict[StepKey, dict[str, bool | None]] = field(default_factory=dict)
    steps: dict[StepKey, StepTrace] = field(default_factory=dict)  # insertion = run order
    restored: dict[StepKey, set[str]] = field(default_factory=dict)  # rollback key -> ok hosts
    exact: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    isolation: IsolationTrace | None = None  # the last isolation cut

    @classmethod
    def read(cls, run_dir: Path) -> Trace:
        """The readable part of a run's journal (see :meth:`of` to also get its problems)."""
        return cls.of(read_journal(run_dir / JOURNAL))

    @classmethod
    def of(cls, journal: JournalRead) -> Trace:
        trace = cls()
        for entry in journal.entries:
            trace.apply(entry)
        return trace

    def apply(self, entry: JournalEntry) -> None:
        match entry:
            case RunStartedEntry():
                self.run_id, self.runbook = entry.run_id, entry.runbook
                self.runbook_path, self.sha256 = entry.runbook_path, entry.sha256
                self.started = self.started or entry.ts
            case StateEntry():
                self.state = entry.to
            case RunEndedEntry():
                self.outcome, self.ended = entry.outcome, True
            case SnapshotEntry() if entry.path:
                self.snapshots[entry.host] = entry.path
            case RestoreEntry():
                self.exact[entry.host] = entry.exact
            case NoteEntry():
                self.notes.append(entry.text)
            case IsolationEntry():
                self._apply_isolation(entry)
            case PreconfigEntry():
                self.preconfig.setdefault(entry.step, {})[entry.host] = entry.path
            case CommitStartedEntry():
                self._apply_commit(entry)
            case CommittedEntry() if entry.confirmed is not None:
                self.confirmed.setdefault(entry.step, {})[entry.host] = entry.confirmed
            case StepStartedEntry() | StepEndedEntry() | HostResultEntry():
                self._apply_step(entry)

    def _apply_commit(self, entry: CommitStartedEntry) -> None:
        hosts = self.commits.setdefault(entry.step, [])
        if entry.host not in hosts:
            hosts.append(entry.host)
        pending = None if entry.revert_in is None else False
        self.confirmed.setdefault(entry.step, {})[entry.host] = pending

    def _apply_isolation(self, entry: IsolationEntry) -> None:
        if entry.action == "cut":
            self.isolation = IsolationTrace(entry.site, entry.lab, entry.until)
        elif self.isolation is not None:
            self.isolation.lifted_by = entry.by or "drill"

    def _apply_step(self, entry: StepStartedEntry | StepEndedEntry | HostResultEntry) -> None:
        key = entry.step
        if isinstance(entry, StepStartedEntry):
            self.steps.pop(key, None)  # run again on resume: keep run order
            self.steps[key] = StepTrace(
                key, entry.name, entry.step_kind, list(entry.hosts), started=entry.ts
            )
            return
        step = self.steps.get(key)
        if isinstance(entry, StepEndedEntry):
            if step is not None:
                step.status, step.ended, step.message = entry.status, entry.ts, entry.message
            return
        result = HostResult(entry.changed, entry.diff, entry.failed, entry.error)
        if step is not None:
            step.results[entry.host] = result
        if key.phase is Phase.ROLLBACK:
            ok = self.restored.setdefault(key, set())
            if entry.failed:
                ok.discard(entry.host)
            else:
                ok.add(entry.host)

    # --- questions --------------------------------------------------------------------

    def open_steps(self) -> list[StepTrace]:
        """Steps started and never ended (the process died in them), in run order."""
        return [s for s in self.steps.values() if s.status is None]

    @property
    def interrupted(self) -> StepTrace | None:
        """The runbook step (phase ``step``) the process died in, if any. A re-verification
        that died too leaves its step open, so that step is still the answer."""
        open_steps = [s for s in self.open_steps() if s.key.phase is Phase.STEP]
        return open_steps[-1] if open_steps else None

    def executed(self) -> list[StepTrace]:
        """Steps of phase ``step`` that ran or started, in runbook order."""
        ran = (s for s in self.steps.values() if s.key.phase is Phase.STEP)
        return sorted(ran, key=lambda s: s.key.index)

    @property
    def isolation_open(self) -> IsolationTrace | None:
        """A cut the journal never saw lifted (the lab's timer may have lifted it since)."""
        if self.isolation is not None and self.isolation.lifted_by is None:
            return self.isolation
        return None

    def touched(self) -> list[str]:
        return sorted({h for hosts in self.commits.values() for h in hosts})

    def left_changed(self) -> dict[str, list[str]]:
        """host -> names of steps whose change on it is not (provably) undone."""
        left: dict[str, list[str]] = {}
        for key, hosts in self.commits.items():
            if key.phase is not Phase.STEP:
                continue
            undone: set[str] = set()
            for rkey, ok in self.restored.items():
                if rkey.undoes(key):
                    undone |= ok
            for host in hosts:
                if self.exact.get(host) or host in undone:
                    continue
                left.setdefault(host, []).append(key.name)
        return left
