"""Who runs a run: ``owner.json`` in the run directory (pid, process start time, and what
``drill resume``/``abort`` need to rebuild the run: runbook, inventory, var overrides).

A pid alone can be reused after a crash; the kernel's start time of the process (field 22
of ``/proc/PID/stat``) makes "is the owner alive" exact.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_FILE = "owner.json"


@dataclass
class Owner:
    pid: int
    start_ticks: int | None
    runbook: str
    inventory: str | None = None
    var: list[str] = field(default_factory=list)
    workers: int = 20
    insecure_host_keys: bool = False
    catalog: str | None = None  # --catalog: the isolation rehearsal's flow catalog

    @property
    def alive(self) -> bool:
        return process_alive(self.pid, self.start_ticks)


def start_ticks(pid: int) -> int | None:
    """The process' start time in clock ticks since boot, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its ')'
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, ticks: int | None) -> bool:
    now = start_ticks(pid)
    if now is None:
        return False
    return ticks is None or now == ticks


def write_owner(run_dir: Path, owner: Owner) -> None:
    path = run_dir / OWNER_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(owner), handle)
        handle.flush()
        os.fsync(handle.fileno())


def current(
    runbook: Path,
    inventory: Path | None,
    var: list[str] | None,
    workers: int,
    insecure_host_keys: bool = False,
    catalog: Path | None = None,
) -> Owner:
    pid = os.getpid()
    return Owner(
        pid=pid,
        start_ticks=start_ticks(pid),
        runbook=str(runbook.resolve()),
        inventory=str(inventory.resolve()) if inventory is not None else None,
        var=list(var or []),
        workers=workers,
        insecure_host_keys=insecure_host_keys,
        catalog=str(catalog.resolve()) if catalog is not None else None,
    )


def read_owner(run_dir: Path) -> Owner | None:
    try:
        data = json.loads((run_dir / OWNER_FILE).read_text(encoding="utf-8"))
        return Owner(**data)
    except (OSError, ValueError, TypeError):
        return None
