"""Ctrl-C and SIGTERM during a drill.

* The first signal while steps run: the engine stops and rolls back what changed.
* A signal during the rollback is refused once, loudly (the rollback is what makes the
  devices safe). Another one asks on a TTY whether to leave the devices changed; without a
  TTY it leaves them changed, but only after the journal and the console say exactly which
  host is left changed by which step (:func:`leave_changed`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Protocol

from drill.engine.context import StepContext
from drill.engine.machine import Lifecycle, State, Trigger
from drill.engine.rundir import RunDir
from drill.engine.trace import Trace

log = logging.getLogger(__name__)


class LeaveChanged(BaseException):
    """The operator chose to stop at once, leaving devices changed.

    A BaseException so no step's ``except Exception`` turns it into a failed step.
    """


class _Engine(Protocol):
    _rolling_back: bool
    ctx: StepContext
    lifecycle: Lifecycle
    rundir: RunDir
    run_id: str

    def _note(self, text: str) -> None: ...


class SignalGuard:
    def __init__(
        self,
        engine: _Engine,
        interrupted: Callable[[str], BaseException],
        ask: Callable[[str], bool] | None,
    ) -> None:
        self.engine = engine
        self.interrupted = interrupted
        self.ask = ask
        self.count = 0

    def handler(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.count += 1
        if self.count == 1 and not self.engine._rolling_back:
            self.engine.ctx.abort.set()
            raise self.interrupted(name)
        if self.count == 1:
            log.warning(
                "%s: the rollback is running and makes the devices safe; "
                "signal again to stop it and leave devices changed",
                name,
            )
            return
        if self.ask is not None:
            if self.ask("Stop the rollback now and LEAVE DEVICES CHANGED?"):
                raise LeaveChanged(name)
            log.warning("continuing the rollback")
            return
        raise LeaveChanged(name)


@contextlib.contextmanager
def guard(
    engine: _Engine,
    interrupted: Callable[[str], BaseException],
    ask: Callable[[str], bool] | None,
    enabled: bool = True,
) -> Iterator[SignalGuard | None]:
    """Install the handlers for SIGINT and SIGTERM (main thread only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield None
        return
    sentry = SignalGuard(engine, interrupted, ask)
    previous = {s: signal.signal(s, sentry.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield sentry
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def leave_changed(engine: _Engine) -> None:
    """Journal and print what is left changed, then end the run as ``rollback_failed``."""
    engine._note("stopped by the operator during the rollback: devices are LEFT CHANGED")
    left = Trace.read(engine.rundir.path).left_changed()
    for host, steps in sorted(left.items()):
        engine._note(
            f"LEFT CHANGED: {host} by step(s) {', '.join(repr(s) for s in steps)}; "
            f"'drill abort {engine.run_id}' restores it"
        )
    if not left:
        engine._note("the journal shows no device left changed")
    state = engine.lifecycle.state
    if state in (State.EXECUTING, State.POSTCHECKING):
        engine.lifecycle.fire(Trigger.ABORT)
    if engine.lifecycle.state is State.ROLLING_BACK:
        engine.lifecycle.fire(Trigger.ROLLBACK_FAILED)
