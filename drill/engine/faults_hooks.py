"""TEST-ONLY fault hooks, keyed on journal events: stop or disturb a run at an exact point.

Never set these outside tests. They exist so the crash matrix (tests/lab/test_crash.py) can
kill the orchestrator at every step boundary deterministically, and so a lab test can cut a
device's management right after a commit-confirm.

* ``DRILL_TEST_CRASH_AT=<event>:<step-name>[@<seconds>]``: SIGKILL this process right after
  the journal wrote ``<event>`` for the step named ``<step-name>`` (``*`` matches any step);
  with ``@<seconds>``, that long after it (e.g. ``commit_started:raise@0.4`` lands in the
  middle of the device's commit).
* ``DRILL_TEST_EXEC_AT=<event>:<name>`` with ``DRILL_TEST_EXEC=<shell command>``: run the
  command once, synchronously, at that point.

``<event>`` is a journal event kind (``step_started``, ``preconfig``, ``commit_started``,
``committed``, ``step_ended``, ...; ``<name>`` is the step), or a point that is not an event
(``<name>`` is the host): ``fresh_session``, the moment a commit-confirm check opens its new
connection; ``device_apply``, the moment the FRR driver starts applying a commit on the
device (with ``@0.01``, the kill lands while the device applies it).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field

from drill.engine.events import Event

log = logging.getLogger(__name__)

CRASH_ENV = "DRILL_TEST_CRASH_AT"
EXEC_AT_ENV = "DRILL_TEST_EXEC_AT"
EXEC_ENV = "DRILL_TEST_EXEC"


@dataclass
class Point:
    event: str
    name: str
    delay: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Point:
        """
        >>> Point.parse("commit_started:raise prio@0.5")
        Point(event='commit_started', name='raise prio', delay=0.5)
        """
        spec, _, delay = text.partition("@")
        event, _, name = spec.partition(":")
        return cls(event.strip(), name.strip() or "*", float(delay) if delay else 0.0)

    def matches(self, event: str, name: str | None) -> bool:
        return event == self.event and (self.name == "*" or name == self.name)


@dataclass
class FaultHooks:
    """An observer (after the journal on the bus) and the ``fresh_session`` hook."""

    crash: Point | None = None
    exec_at: Point | None = None
    command: str = ""
    _fired: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def notify(self, event: Event) -> None:
        payload = event.payload()
        name = payload.get("name")
        if name is None and isinstance(payload.get("step"), str):
            # keys look like "step:2:raise prio"; rollback keys "rollback:step:2:x:0"
            name = _step_name(payload["step"])
        self.at(event.kind, name if isinstance(name, str) else None)

    def at(self, event: str, name: str | None) -> None:
        if self.exec_at is not None and self.exec_at.matches(event, name):
            with self._lock:
                first = "exec" not in self._fired
                self._fired.add("exec")
            if first:
                log.warning("TEST HOOK: running %r at %s:%s", self.command, event, name)
                subprocess.run(self.command, shell=True, check=False)
        if self.crash is not None and self.crash.matches(event, name):
            if self.crash.delay:
                timer = threading.Timer(self.crash.delay, _die)
                timer.daemon = True
                timer.start()
            else:
                _die()


def _step_name(key: str) -> str | None:
    parts = key.split(":")
    if parts[0] == "rollback":
        return None
    return ":".join(parts[2:]) if len(parts) >= 3 else None


def _die() -> None:
    log.warning("TEST HOOK: SIGKILL")
    os.kill(os.getpid(), signal.SIGKILL)


_ACTIVE: FaultHooks | None = None


def from_env() -> FaultHooks | None:
    """The hooks the environment asks for (None almost always); also arms ``point()``."""
    global _ACTIVE
    crash = os.environ.get(CRASH_ENV)
    exec_at = os.environ.get(EXEC_AT_ENV)
    if not crash and not exec_at:
        _ACTIVE = None
        return None
    _ACTIVE = FaultHooks(
        crash=Point.parse(crash) if crash else None,
        exec_at=Point.parse(exec_at) if exec_at else None,
        command=os.environ.get(EXEC_ENV, ""),
    )
    log.warning("TEST-ONLY fault hooks are active: %s", _ACTIVE)
    return _ACTIVE


def point(event: str, name: str) -> None:
    """A hook point that is not a journal event (e.g. ``fresh_session``)."""
    if _ACTIVE is not None:
        _ACTIVE.at(event, name)
