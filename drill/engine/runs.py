"""The runs in a state directory as ``drill status`` shows them, and whether one may be
resumed or aborted. A damaged journal makes its run ``corrupt``, never a traceback, and
leaves every other run's status alone."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from drill.engine.journal_reader import JournalRead, read_journal
from drill.engine.owner import read_owner
from drill.engine.recovery import Action
from drill.engine.trace import JOURNAL, Trace
from drill.errors import InputError, RefusedError

log = logging.getLogger(__name__)

CORRUPT = "corrupt"


@dataclass
class RunInfo:
    run_id: str
    runbook: str
    state: str
    pid: int | None
    alive: bool
    started: str | None
    outcome: str | None
    path: Path
    problem: str = ""  # why the journal is corrupt; also tolerated damage, for people
    journal: JournalRead | None = None
    isolation: str = ""  # a site cut off by the run that the journal never saw lifted

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "run_id": self.run_id,
            "runbook": self.runbook,
            "state": self.state,
            "pid": self.pid,
            "alive": self.alive,
            "started": self.started,
        }
        if self.problem:
            found["problem"] = self.problem
        if self.isolation:
            found["isolation"] = self.isolation
        return found


def run_info(run_dir: Path) -> RunInfo:
    journal = read_journal(run_dir / JOURNAL)
    trace = Trace.of(journal)
    owner = read_owner(run_dir)
    alive = owner.alive if owner is not None else False
    outcome = trace.outcome.value if trace.outcome is not None else None
    problem = ""
    if journal.corrupt:
        state, problem = CORRUPT, journal.describe()
    elif outcome is not None:
        state = outcome
    elif alive:
        state = trace.state.value
    else:
        # No run_ended and no process: it died here. Say where, so nobody guesses.
        state = f"dead in {trace.state.value}"
    if not problem and journal.torn:
        first = journal.torn[-1]
        problem = f"{first.where(journal.path)}: {first.message} (tolerated)"
    return RunInfo(
        run_id=trace.run_id or run_dir.name,
        runbook=trace.runbook,
        state=state,
        pid=owner.pid if owner is not None else None,
        alive=alive,
        started=trace.started.isoformat() if trace.started else None,
        outcome=outcome,
        path=run_dir,
        problem=problem,
        journal=journal,
        isolation=_isolation(trace, alive),
    )


def _isolation(trace: Trace, alive: bool) -> str:
    """What a cut the journal never saw lifted means now (the lab's timer, or the devices'
    revert timers, need nobody)."""
    cut = trace.isolation_open
    if cut is None:
        return ""
    where = f"lab {cut.lab}" if cut.lab else "on devices"
    timer = "the lab's own timer" if cut.lab else "the devices' revert timers"
    if cut.until is None:
        return f"site {cut.site} was cut off by this run ({where}); no lift time recorded"
    until = cut.until.strftime("%H:%M:%SZ")
    left = (cut.until - datetime.now(UTC)).total_seconds()
    if left <= 0:
        if cut.lab:
            return f"site {cut.site} was cut off by this run until {until}: {timer} has lifted it"
        return f"site {cut.site} was cut off by this run until {until}: {timer} were due to lift it"
    who = ""
    if not alive:
        who = "; the run's process is gone, " + (
            "the lab lifts it by itself" if cut.lab else "each device reverts it by itself"
        )
    return f"site {cut.site} is cut off until {until} ({left:.0f}s left on {timer}{who})"


def run_dirs(base: Path) -> Iterator[Path]:
    """Run directories, newest first (run ids start with a UTC timestamp)."""
    root = base / "runs"
    if not root.is_dir():
        return iter(())
    dirs = [p for p in root.iterdir() if (p / JOURNAL).exists() or (p / JOURNAL).is_symlink()]
    return iter(sorted(dirs, key=lambda p: p.name, reverse=True))


def find_run(base: Path, run_id: str) -> Path:
    path = base / "runs" / run_id
    if not ((path / JOURNAL).exists() or (path / JOURNAL).is_symlink()):
        raise RefusedError(f"no run {run_id!r} in {base / 'runs'} (see 'drill status')")
    return path


def check_recoverable(info: RunInfo, action: Action) -> None:
    """A live run is its own business; a finished one has nothing to resume; a corrupt
    journal cannot say what changed, so a person must look first."""
    if info.state == CORRUPT:
        raise InputError(
            f"error: run {info.run_id}'s journal is corrupt ({info.problem}); refusing to "
            f"{action}: check each device's running config against the snapshots in "
            f"{info.path / 'snapshots'} by hand, then 'drill unlock {info.run_id}'"
        )
    if info.alive:
        raise RefusedError(
            f"run {info.run_id} is still running (pid {info.pid}); "
            "Ctrl-C or SIGTERM it (it rolls back) instead"
        )
    if info.outcome is None:
        return
    if action == "abort" and info.outcome in ("rollback_failed", "stopped"):
        return  # devices may still be changed: retrying the rollback is the point
    raise RefusedError(f"run {info.run_id} already ended: {info.outcome}")
