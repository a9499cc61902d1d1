"""Events the engine emits and the observers (journal, console, report) that receive them.

The engine never prints: it tells an :class:`EventBus`, which hands every event to each
observer in order, under a lock, because config steps report commits from worker threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from drill.engine.records import HostResult, RestoreResult, RunRecord, StepRecord

log = logging.getLogger(__name__)


class Event:
    """Base of all events. ``sync``: the journal fsyncs after writing it."""

    kind: ClassVar[str] = "event"
    sync: ClassVar[bool] = False

    def payload(self) -> dict[str, Any]:
        return {}


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    sync: ClassVar[bool] = True
    record: RunRecord
    run_dir: str
    hosts: list[str]

    def payload(self) -> dict[str, Any]:
        r = self.record
        return {
            "run_id": r.run_id,
            "runbook": r.runbook_name,
            "runbook_path": r.runbook_path,
            "sha256": r.runbook_sha256,
            "mode": r.mode,
            "dry_run": r.dry_run,
            "operator": r.operator,
            "change_id": r.change_id,
            "run_dir": self.run_dir,
            "hosts": self.hosts,
        }


@dataclass
class StateChanged(Event):
    kind: ClassVar[str] = "state"
    sync: ClassVar[bool] = True
    source: str
    dest: str
    trigger: str

    def payload(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.dest, "trigger": self.trigger}


@dataclass
class SnapshotTaken(Event):
    """The running config of a host before the first change (``path`` is mode 0600)."""

    kind: ClassVar[str] = "snapshot"
    host: str
    path: str
    error: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"host": self.host, "path": self.path, "error": self.error}


@dataclass
class StepStarted(Event):
    kind: ClassVar[str] = "step_started"
    sync: ClassVar[bool] = True
    key: str
    record: StepRecord
    hosts: list[str]
    dry_run: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "step": self.key,
            "name": self.record.name,
            "step_kind": self.record.kind,
            "phase": self.record.phase.value,
            "hosts": self.hosts,
            "dry_run": self.dry_run,
        }


@dataclass
class PreConfigSaved(Event):
    """The running config of one host just before a config step (its ``auto`` rollback)."""

    kind: ClassVar[str] = "preconfig"
    key: str
    host: str
    path: str

    def payload(self) -> dict[str, Any]:
        return {"step": self.key, "host": self.host, "path": self.path}


@dataclass
class CommitStarted(Event):
    """Written and fsynced before a device is changed: after a crash, this host may be changed."""

    kind: ClassVar[str] = "commit_started"
    sync: ClassVar[bool] = True
    key: str
    host: str
    revert_in: int | None = None

    def payload(self) -> dict[str, Any]:
        return {"step": self.key, "host": self.host, "revert_in": self.revert_in}


@dataclass
class CommitDone(Event):
    kind: ClassVar[str] = "committed"
    key: str
    host: str
    confirmed: bool | None = None  # None: no commit-confirm; False: left to revert on device

    def payload(self) -> dict[str, Any]:
        return {"step": self.key, "host": self.host, "confirmed": self.confirmed}


@dataclass
class HostDone(Event):
    kind: ClassVar[str] = "host_result"
    key: str
    step: StepRecord
    host: str
    result: HostResult

    def payload(self) -> dict[str, Any]:
        r = self.result
        return {
            "step": self.key,
            "host": self.host,
            "changed": r.changed,
            "failed": r.failed,
            "error": r.error,
        }


@dataclass
class StepEnded(Event):
    kind: ClassVar[str] = "step_ended"
    sync: ClassVar[bool] = True
    key: str
    record: StepRecord

    def payload(self) -> dict[str, Any]:
        r = self.record
        return {
            "step": self.key,
            "name": r.name,
            "phase": r.phase.value,
            "status": r.status.value,
            "message": r.message,
            "changed": sorted(h for h, res in r.hosts.items() if res.changed),
            "failed": sorted(h for h, res in r.hosts.items() if res.failed),
        }


@dataclass
class RestoreChecked(Event):
    kind: ClassVar[str] = "restore"
    sync: ClassVar[bool] = True
    host: str
    result: RestoreResult

    def payload(self) -> dict[str, Any]:
        return {"host": self.host, "exact": self.result.exact, "diff": self.result.diff}


@dataclass
class Note(Event):
    """A loud warning for people (also kept in RunRecord.notes)."""

    kind: ClassVar[str] = "note"
    text: str

    def payload(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass
class RunEnded(Event):
    kind: ClassVar[str] = "run_ended"
    sync: ClassVar[bool] = True
    record: RunRecord
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        r = self.record
        return {
            "outcome": r.outcome.value if r.outcome else None,
            "restore": {h: x.exact for h, x in r.restore.items()},
            **self.extra,
        }


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
