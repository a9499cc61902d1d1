"""TEST-ONLY: the ``drill`` command with fault hooks, for the lab tests.

    python tests/lab/faultdrill.py run BOOK -i INV --yes      # instead of: python -m drill ...

The shipped ``drill`` knows nothing of this: it only emits journal events, and its entry
point registers no observer of its own (``drill.cli.app.main(observers=...)`` is the one,
explicit seam; ``drill`` itself passes none, so the variables below do nothing there).
This script reads them and hands :class:`Faults` to ``main``:

* ``DRILL_TEST_CRASH_AT=<event>:<name>[@<seconds>]``: SIGKILL this process right after the
  journal wrote ``<event>`` for ``<name>`` (``*``: any), or that many seconds later.
* ``DRILL_TEST_EXEC_AT=<event>:<name>`` with ``DRILL_TEST_EXEC=<command>``: run the command
  (split like a shell would, never through one) once, synchronously, at that point.

``<event>`` is a journal event (``step_started``, ``commit_started``, ``committed``,
``step_ended``, ``restore``, ...) and ``<name>`` its step's name (a rollback action's name,
e.g. ``restore config before 'x'``; for ``restore`` and ``snapshot`` the host). Two points are
not journal events; they come from a subclass of the FRR driver that this script installs as
NAPALM's site-local ``custom_napalm.frr`` (``<name>`` is the device's address):
``device_apply``, the device starting to apply a commit (``@0.01`` lands the kill while it
applies); ``fresh_session``, a new connection opened while that device has a commit-confirm
pending (the confirm check's session).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import types
from dataclasses import dataclass, field

from drill.cli.app import main
from drill.drivers.frr.driver import FRRDriver
from drill.engine.events import CommitDone, CommitStarted, Event

log = logging.getLogger("faultdrill")


@dataclass(frozen=True)
class Point:
    event: str
    name: str
    delay: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Point:
        spec, _, delay = text.partition("@")
        event, _, name = spec.partition(":")
        return cls(event.strip(), name.strip() or "*", float(delay) if delay else 0.0)

    def matches(self, event: str, name: str | None) -> bool:
        return event == self.event and (self.name == "*" or name == self.name)


@dataclass
class Faults:
    crash: Point | None = None
    exec_at: Point | None = None
    argv: list[str] = field(default_factory=list)
    confirming: set[str] = field(default_factory=set)  # hosts with a commit-confirm open
    _fired: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> Faults:
        crash, exec_at = os.environ.get("DRILL_TEST_CRASH_AT"), os.environ.get("DRILL_TEST_EXEC_AT")
        return cls(
            crash=Point.parse(crash) if crash else None,
            exec_at=Point.parse(exec_at) if exec_at else None,
            argv=shlex.split(os.environ.get("DRILL_TEST_EXEC", "")),
        )

    def notify(self, event: Event) -> None:
        if isinstance(event, CommitStarted) and event.revert_in is not None:
            self.confirming.add(event.host)
        elif isinstance(event, CommitDone):
            self.confirming.discard(event.host)
        entry = event.entry()
        name = getattr(entry, "name", None)
        step = getattr(entry, "step", None)
        if step is not None and event.kind not in ("step_started", "step_ended"):
            name = step.name
        if name is None:
            name = getattr(entry, "host", None)
        self.at(event.kind, name if isinstance(name, str) else None)

    def at(self, event: str, name: str | None) -> None:
        if self.exec_at is not None and self.argv and self.exec_at.matches(event, name):
            with self._lock:
                first, self._fired = not self._fired, True
            if first:
                log.warning("TEST HOOK: running %s at %s:%s", self.argv, event, name)
                subprocess.run(self.argv, check=False)
        if self.crash is not None and self.crash.matches(event, name):
            if self.crash.delay:
                timer = threading.Timer(self.crash.delay, _die)
                timer.daemon = True
                timer.start()
            else:
                _die()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


FAULTS = Faults.from_env()


class FaultyFRRDriver(FRRDriver):
    """The FRR driver, reporting the two points inside a device operation."""

    def open(self) -> None:
        if FAULTS.confirming:
            FAULTS.at("fresh_session", self.hostname)
        super().open()

    def _apply(self) -> list[str]:
        FAULTS.at("device_apply", self.hostname)
        return super()._apply()


def _install_driver() -> None:
    """NAPALM looks for ``custom_napalm.<platform>`` first (site-local drivers)."""
    package = types.ModuleType("custom_napalm")
    package.__path__ = []
    module = types.ModuleType("custom_napalm.frr")
    module.FaultyFRRDriver = FaultyFRRDriver  # type: ignore[attr-defined]
    sys.modules["custom_napalm"] = package
    sys.modules["custom_napalm.frr"] = module


if __name__ == "__main__":
    _install_driver()
    sys.argv[0] = "drill"
    main(observers=[FAULTS])
