"""What a step needs while it runs, in one object instead of six positional arguments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nornir.core import Nornir

from drill.engine.events import EventBus
from drill.engine.records import Phase, StepRecord
from drill.engine.rundir import RunDir
from drill.runbook.model import Runbook, StepBase

log = logging.getLogger(__name__)


class LoadedRunbookLike(Protocol):
    """The part of drill.runbook.loader.LoadedRunbook the engine uses."""

    @property
    def path(self) -> Path: ...
    @property
    def text(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def model(self) -> Runbook: ...
    @property
    def vars(self) -> dict[str, Any]: ...
    def hosts_for(self, step: Any) -> list[str]: ...


@dataclass
class RunOptions:
    dry_run: bool = False
    assume_yes: bool = False
    interactive: bool = False  # stdin is a TTY an operator can answer on
    operator: str = ""
    change_id: str | None = None
    confirm: Callable[[str], bool] | None = None  # asks the operator; None: no TTY


class ChangeLog:
    """Which hosts each step changed, and where their pre-step configs are. Written from
    worker threads as changes happen, so an interrupted step still knows what it did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.preconfig: dict[str, dict[str, Path]] = {}
        self.committed: dict[str, list[str]] = {}
        self.pending_confirm: dict[str, set[str]] = {}

    def save_preconfig(self, key: str, host: str, path: Path) -> None:
        with self._lock:
            self.preconfig.setdefault(key, {})[host] = path

    def has_preconfig(self, key: str, host: str) -> bool:
        with self._lock:
            return host in self.preconfig.get(key, {})

    def mark_commit(self, key: str, host: str) -> None:
        with self._lock:
            hosts = self.committed.setdefault(key, [])
            if host not in hosts:
                hosts.append(host)

    def mark_pending_confirm(self, key: str, host: str) -> None:
        with self._lock:
            self.pending_confirm.setdefault(key, set()).add(host)

    def changed_hosts(self, key: str) -> list[str]:
        with self._lock:
            return list(self.committed.get(key, []))

    def touched_hosts(self) -> list[str]:
        with self._lock:
            return sorted({h for hosts in self.committed.values() for h in hosts})


@dataclass
class StepContext:
    nr: Nornir
    runbook: LoadedRunbookLike
    options: RunOptions
    bus: EventBus
    rundir: RunDir
    changes: ChangeLog = field(default_factory=ChangeLog)
    secrets: tuple[str, ...] = ()
    phase: Phase = Phase.STEP
    key: str = ""
    abort: threading.Event = field(default_factory=threading.Event)
    # The step running now; hosts report into it from worker threads as they finish.
    record: StepRecord | None = None
    # time.monotonic() after which no further host of the step is started (step `timeout`)
    deadline: float | None = None
    quiet: bool = False  # polling: host results are reported once, at the step's end
    reported: set[str] = field(default_factory=set)

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def hosts_for(self, step: StepBase) -> list[str]:
        return list(self.runbook.hosts_for(step)) if step.on else []
