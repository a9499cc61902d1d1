"""The journal's one definition, and the events the engine emits to its observers.

Two layers, one vocabulary:

* :data:`JournalEntry` is the union of typed records (pydantic, discriminated on ``event``)
  that ``journal.jsonl`` holds, one per line. The journal writes them and
  :mod:`drill.engine.journal_reader` reads them back with the same classes, so a field cannot
  be written under one name and read under another. The first line of a journal is a
  :class:`JournalHeader` with :data:`SCHEMA_VERSION`; a journal without one is version 1.
* :class:`Event` subclasses are what the engine tells an :class:`EventBus` (console, journal,
  report); each knows its journal entry (:meth:`Event.entry`) and may carry richer in-memory
  records for the console.

The engine never prints: the bus hands every event to each observer in order, under a lock,
because config steps report commits from worker threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from drill.engine.machine import State, Trigger
from drill.engine.records import (
    HostResult,
    Outcome,
    Phase,
    RestoreResult,
    RunRecord,
    StepRecord,
    StepStatus,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2


def _now() -> datetime:
    return datetime.now(UTC)


class StepKey(BaseModel):
    """Which step an entry is about: a value, compared and hashed by its fields.

    ``index`` is 1-based within ``phase``; a rollback action's key has its own number and
    ``of`` the key of the step it undoes; a re-verification's key ``of`` the step it checks.
    """

    model_config = ConfigDict(frozen=True)

    phase: Phase
    index: int
    name: str
    of: StepKey | None = None

    def __str__(self) -> str:
        """For people and file names only; nothing parses it back.

        >>> str(StepKey(phase=Phase.STEP, index=3, name="raise prio"))
        'step:3:raise prio'
        """
        if self.phase is Phase.ROLLBACK and self.of is not None:
            return f"rollback:{self.of}:{self.index}"
        if self.of is not None:
            return f"{self.phase.value}:{self.of}"
        return f"{self.phase.value}:{self.index}:{self.name}"

    def undoes(self, key: StepKey) -> bool:
        return self.phase is Phase.ROLLBACK and self.of == key


# --- journal entries (one per line) ------------------------------------------------------


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    ts: datetime = Field(default_factory=_now)


class JournalHeader(Entry):
    event: Literal["journal"] = "journal"
    version: int = SCHEMA_VERSION


class RunStartedEntry(Entry):
    event: Literal["run_started"] = "run_started"
    run_id: str
    runbook: str
    runbook_path: str
    sha256: str
    mode: str
    dry_run: bool
    operator: str
    change_id: str | None
    run_dir: str
    hosts: list[str]


class StateEntry(Entry):
    event: Literal["state"] = "state"
    source: State = Field(alias="from")
    to: State
    trigger: Trigger


class SnapshotEntry(Entry):
    event: Literal["snapshot"] = "snapshot"
    host: str
    path: str
    error: str | None = None


class StepStartedEntry(Entry):
    event: Literal["step_started"] = "step_started"
    step: StepKey
    name: str
    step_kind: str
    phase: Phase
    hosts: list[str]
    dry_run: bool = False


class PreconfigEntry(Entry):
    event: Literal["preconfig"] = "preconfig"
    step: StepKey
    host: str
    path: str


class CommitStartedEntry(Entry):
    """Fsynced before a device is changed: after a crash, this host may be changed."""

    event: Literal["commit_started"] = "commit_started"
    step: StepKey
    host: str
    revert_in: int | None = None


class CommittedEntry(Entry):
    event: Literal["committed"] = "committed"
    step: StepKey
    host: str
    confirmed: bool | None = None  # None: no commit-confirm; False: left to revert on device


class HostResultEntry(Entry):
    event: Literal["host_result"] = "host_result"
    step: StepKey
    host: str
    changed: bool
    failed: bool
    error: str | None = None
    diff: str = ""


class StepEndedEntry(Entry):
    event: Literal["step_ended"] = "step_ended"
    step: StepKey
    name: str
    phase: Phase
    status: StepStatus
    message: str | None = None
    changed: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


class RestoreEntry(Entry):
    event: Literal["restore"] = "restore"
    host: str
    exact: bool
    diff: str = ""


class NoteEntry(Entry):
    event: Literal["note"] = "note"
    text: str


class IsolationEntry(Entry):
    """The isolation rehearsal cut a site off (``until``: when the lab's own timer lifts
    it) or the cut is over. Fsynced before the cut: a dead run's journal says a site may
    still be cut off, and until when."""

    event: Literal["isolation"] = "isolation"
    site: str
    lab: str
    action: Literal["cut", "lifted"]
    until: datetime | None = None
    by: str | None = None  # lifted: "lab timer" or "drill"


class RunEndedEntry(Entry):
    event: Literal["run_ended"] = "run_ended"
    outcome: Outcome | None
    restore: dict[str, bool] = Field(default_factory=dict)
    state: State


JournalEntry = Annotated[
    JournalHeader
    | RunStartedEntry
    | StateEntry
    | SnapshotEntry
    | StepStartedEntry
    | PreconfigEntry
    | CommitStartedEntry
    | CommittedEntry
    | HostResultEntry
    | StepEndedEntry
    | RestoreEntry
    | NoteEntry
    | IsolationEntry
    | RunEndedEntry,
    Field(discriminator="event"),
]
ENTRY: TypeAdapter[JournalEntry] = TypeAdapter(JournalEntry)


# --- bus events ---------------------------------------------------------------------


class Event:
    """Base of all bus events. ``sync``: the journal fsyncs after writing it."""

    kind: ClassVar[str] = "event"
    sync: ClassVar[bool] = False

    def entry(self) -> JournalEntry:
        raise NotImplementedError


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    sync: ClassVar[bool] = True
    record: RunRecord
    run_dir: str
    hosts: list[str]

    def entry(self) -> JournalEntry:
        r = self.record
        return RunStartedEntry(
            run_id=r.run_id,
            runbook=r.runbook_name,
            runbook_path=r.runbook_path,
            sha256=r.runbook_sha256,
            mode=r.mode,
            dry_run=r.dry_run,
            operator=r.operator,
            change_id=r.change_id,
            run_dir=self.run_dir,
            hosts=self.hosts,
        )


@dataclass
class StateChanged(Event):
    kind: ClassVar[str] = "state"
    sync: ClassVar[bool] = True
    source: State
    dest: State
    trigger: Trigger

    def entry(self) -> JournalEntry:
        return StateEntry(source=self.source, to=self.dest, trigger=self.trigger)


@dataclass
class SnapshotTaken(Event):
    """The running config of a host before the first change (``path`` is mode 0600)."""

    kind: ClassVar[str] = "snapshot"
    host: str
    path: str
    error: str | None = None

    def entry(self) -> JournalEntry:
        return SnapshotEntry(host=self.host, path=self.path, error=self.error)


@dataclass
class StepStarted(Event):
    kind: ClassVar[str] = "step_started"
    sync: ClassVar[bool] = True
    key: StepKey
    record: StepRecord
    hosts: list[str]
    dry_run: bool = False

    def entry(self) -> JournalEntry:
        return StepStartedEntry(
            step=self.key,
            name=self.record.name,
            step_kind=self.record.kind,
            phase=self.record.phase,
            hosts=self.hosts,
            dry_run=self.dry_run,
        )


@dataclass
class PreConfigSaved(Event):
    """The running config of one host just before a config step (its ``auto`` rollback)."""

    kind: ClassVar[str] = "preconfig"
    key: StepKey
    host: str
    path: str

    def entry(self) -> JournalEntry:
        return PreconfigEntry(step=self.key, host=self.host, path=self.path)


@dataclass
class CommitStarted(Event):
    """Written and fsynced before a device is changed: after a crash, this host may be changed."""

    kind: ClassVar[str] = "commit_started"
    sync: ClassVar[bool] = True
    key: StepKey
    host: str
    revert_in: int | None = None

    def entry(self) -> JournalEntry:
        return CommitStartedEntry(step=self.key, host=self.host, revert_in=self.revert_in)


@dataclass
class CommitDone(Event):
    kind: ClassVar[str] = "committed"
    sync: ClassVar[bool] = True
    key: StepKey
    host: str
    confirmed: bool | None = None  # None: no commit-confirm; False: left to revert on device

    def entry(self) -> JournalEntry:
        return CommittedEntry(step=self.key, host=self.host, confirmed=self.confirmed)


@dataclass
class HostDone(Event):
    kind: ClassVar[str] = "host_result"
    key: StepKey
    step: StepRecord
    host: str
    result: HostResult

    def entry(self) -> JournalEntry:
        r = self.result
        return HostResultEntry(
            step=self.key,
            host=self.host,
            changed=r.changed,
            failed=r.failed,
            error=r.error,
            diff=r.diff,
        )


@dataclass
class StepEnded(Event):
    kind: ClassVar[str] = "step_ended"
    sync: ClassVar[bool] = True
    key: StepKey
    record: StepRecord

    def entry(self) -> JournalEntry:
        r = self.record
        return StepEndedEntry(
            step=self.key,
            name=r.name,
            phase=r.phase,
            status=r.status,
            message=r.message,
            changed=sorted(h for h, res in r.hosts.items() if res.changed),
            failed=sorted(h for h, res in r.hosts.items() if res.failed),
        )


@dataclass
class RestoreChecked(Event):
    kind: ClassVar[str] = "restore"
    sync: ClassVar[bool] = True
    host: str
    result: RestoreResult

    def entry(self) -> JournalEntry:
        return RestoreEntry(host=self.host, exact=self.result.exact, diff=self.result.diff)


@dataclass
class Note(Event):
    """A loud warning for people (also kept in RunRecord.notes)."""

    kind: ClassVar[str] = "note"
    text: str

    def entry(self) -> JournalEntry:
        return NoteEntry(text=self.text)


@dataclass
class IsolationChanged(Event):
    kind: ClassVar[str] = "isolation"
    sync: ClassVar[bool] = True
    site: str
    lab: str
    action: Literal["cut", "lifted"]
    until: datetime | None = None
    by: str | None = None

    def entry(self) -> JournalEntry:
        return IsolationEntry(
            site=self.site, lab=self.lab, action=self.action, until=self.until, by=self.by
        )


@dataclass
class RunEnded(Event):
    kind: ClassVar[str] = "run_ended"
    sync: ClassVar[bool] = True
    record: RunRecord
    state: State

    def entry(self) -> JournalEntry:
        r = self.record
        return RunEndedEntry(
            outcome=r.outcome,
            restore={h: x.exact for h, x in r.restore.items()},
            state=self.state,
        )


class Observer(Protocol):
    def notify(self, event: Event) -> None: ...


class EventBus:
    """Fans events out to observers, in order, one event at a time.

    ``emit`` delivers at once (and first everything posted before it: a step's host results
    always precede its end). ``post`` is for worker threads: the event is queued and a
    dispatcher thread delivers it, so a host's worker goes back to the pool instead of
    waiting for the console and the journal.
    """

    def __init__(self, observers: list[Observer] | None = None) -> None:
        self._observers: list[Observer] = list(observers or [])
        self._lock = threading.RLock()
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def subscribe(self, observer: Observer) -> None:
        with self._lock:
            self._observers.append(observer)

    def emit(self, event: Event) -> None:
        with self._lock:
            self._drain()
            self._deliver(event)

    def post(self, event: Event) -> None:
        if self._closed:
            self.emit(event)
            return
        self._queue.put(event)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._dispatch, name="drill-events", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Deliver what is queued and stop the dispatcher."""
        with self._lock:
            self._closed = True
            self._drain()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _dispatch(self) -> None:
        while not self._closed:
            self._wake.wait()
            with self._lock:
                # Cleared under the lock, before draining: a post after this is seen next
                # round, and nothing is delivered out of order with emit().
                self._wake.clear()
                self._drain()

    def _drain(self) -> None:
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for observer in self._observers:
            observer.notify(event)
