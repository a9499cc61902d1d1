"""The lab's runtime record (``/run/drill/lab/<name>/state.json``) and its lock.

Written before anything is created, so ``lab down`` can clean up after a half-failed ``up``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drill.lab.plan import RUN_ROOT, LabPlan

log = logging.getLogger(__name__)


@dataclass
class FaultRecord:
    kind: str  # "link", "node", "mgmt" or "site"
    target: str  # as given: "a:b", "node", "dc1"...
    mode: str  # "down" or "blackhole"
    # Epoch seconds when the lab itself lifts the fault (a site cut's timer); None: never.
    # State files written before the field existed load as None.
    expires_at: float | None = None

    @property
    def key(self) -> str:
        return f"{self.kind} {self.target}"


@dataclass
class LabState:
    name: str
    topology: str
    digest: str = ""
    netns: list[str] = field(default_factory=list)
    host_ifaces: list[str] = field(default_factory=list)
    holders: dict[str, int] = field(default_factory=dict)
    created_dirs: list[str] = field(default_factory=list)
    converged: bool = False
    faults: list[FaultRecord] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        raw = json.loads(text)
        faults = [FaultRecord(**f) for f in raw.pop("faults", [])]
        return cls(**raw, faults=faults)


def state_path(plan: LabPlan) -> Path:
    return plan.run_dir / "state.json"


def load_state(plan: LabPlan) -> LabState | None:
    try:
        return LabState.from_json(state_path(plan).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        log.warning("ignoring unreadable lab state %s: %s", state_path(plan), exc)
        return None


def save_state(plan: LabPlan, state: LabState) -> None:
    path = state_path(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def lab_lock(plan: LabPlan) -> Iterator[None]:
    """Serialize drill's own mutations of one lab (up/down/fault) across processes.

    A separate file from the helpers' ``/tmp/drill-lab.lock``: taking that one here would
    deadlock a caller who wraps ``drill lab up`` in ``flock /tmp/drill-lab.lock``.
    """
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    with open(RUN_ROOT / f".{plan.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
