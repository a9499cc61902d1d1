"""What a step needs while it runs, in one object instead of six positional arguments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from nornir.core import Nornir

from drill.engine.events import EventBus, StepKey
from drill.engine.records import StepRecord
from drill.engine.rundir import RunDir
from drill.flows.isolation import IsolationPlan
from drill.runbook.model import ConfigStep, Runbook, Step
from drill.runbook.templates import Origin

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
    def hosts_for(self, step: Step) -> list[str]: ...
    def config_source(self, step: ConfigStep) -> tuple[str, Origin]: ...


@dataclass
class RunOptions:
    dry_run: bool = False
    assume_yes: bool = False
    interactive: bool = False  # stdin is a TTY an operator can answer on
    operator: str = ""
    change_id: str | None = None
    confirm: Callable[[str], bool] | None = None  # asks the operator; None: no TTY
    catalog: Path | None = None  # --catalog: the isolation rehearsal's flow catalog
    # the rehearsal's probes as the preflight generated them: the catalog is read once
    isolation_plan: IsolationPlan | None = None


class ChangeLog:
    """Which hosts each step changed, and where their pre-step configs are. Written from
    worker threads as changes happen, so an interrupted step still knows what it did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.preconfig: dict[StepKey, dict[str, Path]] = {}
        self.committed: dict[StepKey, list[str]] = {}
        self.pending_confirm: dict[StepKey, set[str]] = {}

    def save_preconfig(self, key: StepKey, host: str, path: Path) -> None:
        with self._lock:
            self.preconfig.setdefault(key, {})[host] = path

    def has_preconfig(self, key: StepKey, host: str) -> bool:
        with self._lock:
            return host in self.preconfig.get(key, {})

    def mark_commit(self, key: StepKey, host: str) -> None:
        with self._lock:
            hosts = self.committed.setdefault(key, [])
            if host not in hosts:
                hosts.append(host)

    def mark_pending_confirm(self, key: StepKey, host: str) -> None:
        with self._lock:
            self.pending_confirm.setdefault(key, set()).add(host)

    def changed_hosts(self, key: StepKey) -> list[str]:
        with self._lock:
            return list(self.committed.get(key, []))

    def changed_with_preconfig(
        self, which: Callable[[StepKey], bool]
    ) -> list[tuple[StepKey, str, Path]]:
        """(step, host, its config before the step) for every host the steps ``which``
        selects may have changed: a commit is marked before it starts, so also mid-commit."""
        with self._lock:
            return [
                (key, host, saved)
                for key, hosts in self.committed.items()
                if which(key)
                for host in hosts
                if (saved := self.preconfig.get(key, {}).get(host)) is not None
            ]

    def touched_hosts(self) -> list[str]:
        with self._lock:
            return sorted({h for hosts in self.committed.values() for h in hosts})


@dataclass
class StepScope:
    """One step's own state while it runs: the engine opens it, the step's handler and its
    worker threads use it, and nothing outlives the step."""

    key: StepKey
    record: StepRecord  # hosts report into it from worker threads as they finish
    # time.monotonic() after which no further host of the step is started (step `timeout`)
    deadline: float | None = None
    quiet: bool = False  # polling: host results are reported once, at the step's end
    # the isolation rehearsal's cut: commit with a revert timer of this many seconds and
    # never confirm (the device's own timer ends the cut)
    revert_after: int | None = None
    reported: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class StepContext:
    """What every step of a run shares (frozen), plus the scope of the step running now."""

    nr: Nornir
    runbook: LoadedRunbookLike
    options: RunOptions
    bus: EventBus
    rundir: RunDir
    changes: ChangeLog = field(default_factory=ChangeLog)
    secrets: tuple[str, ...] = ()
    abort: threading.Event = field(default_factory=threading.Event)
    scope: StepScope | None = None

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    @property
    def step(self) -> StepScope:
        if self.scope is None:
            raise RuntimeError("internal error: a step ran outside a step scope")
        return self.scope

    @property
    def key(self) -> StepKey:
        return self.step.key

    def within(self, scope: StepScope) -> StepContext:
        return replace(self, scope=scope)

    def hosts_for(self, step: Step) -> list[str]:
        return list(self.runbook.hosts_for(step)) if step.on else []
