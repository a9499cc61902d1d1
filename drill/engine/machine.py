"""The run lifecycle as a ``transitions`` state machine built from one data table.

The same table drives the machine, ``drill graph`` (Mermaid) and the unit tests, so what is
drawn is what runs. No string callbacks and no auto transitions: a trigger that is not in the
table for the current state raises :class:`IllegalTransition`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from transitions import Machine, MachineError

from drill.engine.records import Outcome
from drill.errors import DrillError

log = logging.getLogger(__name__)


class State(StrEnum):
    PENDING = "pending"
    PRECHECKING = "prechecking"
    EXECUTING = "executing"
    POSTCHECKING = "postchecking"
    SUCCEEDED = "succeeded"
    PRECHECK_FAILED = "precheck_failed"
    STOPPED = "stopped"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    DRY_RUN = "dry_run"
    DRY_RUN_FAILED = "dry_run_failed"


class Trigger(StrEnum):
    START = "start"
    PRECHECKS_PASSED = "prechecks_passed"
    PRECHECKS_FAILED = "prechecks_failed"
    STEPS_DONE = "steps_done"
    STEP_FAILED = "step_failed"
    STOP = "stop"
    ABORT = "abort"
    POSTCHECKS_PASSED = "postchecks_passed"
    POSTCHECKS_FAILED = "postchecks_failed"
    ROLLBACK_DONE = "rollback_done"
    ROLLBACK_FAILED = "rollback_failed"
    DRY_RUN_DONE = "dry_run_done"
    DRY_RUN_FAILED = "dry_run_failed"
    ROLL_BACK = "roll_back"  # drill abort of a dead run that got past its prechecks


@dataclass(frozen=True)
class Transition:
    trigger: Trigger
    source: State
    dest: State


T, S = Trigger, State
TRANSITIONS: tuple[Transition, ...] = (
    Transition(T.START, S.PENDING, S.PRECHECKING),
    Transition(T.PRECHECKS_PASSED, S.PRECHECKING, S.EXECUTING),
    Transition(T.PRECHECKS_FAILED, S.PRECHECKING, S.PRECHECK_FAILED),
    # An abort before any change leaves nothing to roll back.
    Transition(T.ABORT, S.PRECHECKING, S.PRECHECK_FAILED),
    Transition(T.STEPS_DONE, S.EXECUTING, S.POSTCHECKING),
    Transition(T.STEP_FAILED, S.EXECUTING, S.ROLLING_BACK),
    Transition(T.STOP, S.EXECUTING, S.STOPPED),
    Transition(T.ABORT, S.EXECUTING, S.ROLLING_BACK),
    Transition(T.POSTCHECKS_PASSED, S.POSTCHECKING, S.SUCCEEDED),
    Transition(T.POSTCHECKS_FAILED, S.POSTCHECKING, S.ROLLING_BACK),
    Transition(T.ABORT, S.POSTCHECKING, S.ROLLING_BACK),
    Transition(T.ROLLBACK_DONE, S.ROLLING_BACK, S.ROLLED_BACK),
    Transition(T.ROLLBACK_FAILED, S.ROLLING_BACK, S.ROLLBACK_FAILED),
    # Dry-run: prechecks for real, then "executing" only previews; it never changes a device.
    Transition(T.DRY_RUN_DONE, S.EXECUTING, S.DRY_RUN),
    Transition(T.DRY_RUN_FAILED, S.EXECUTING, S.DRY_RUN_FAILED),
    # `drill abort` of a dead run: undo whatever it changed, also when its last state was a
    # final one that needs the operator (stopped, rollback_failed) or it died before its
    # run_ended line.
    Transition(T.ROLL_BACK, S.PRECHECKING, S.ROLLING_BACK),
    Transition(T.ROLL_BACK, S.SUCCEEDED, S.ROLLING_BACK),
    Transition(T.ROLL_BACK, S.STOPPED, S.ROLLING_BACK),
    Transition(T.ROLL_BACK, S.ROLLBACK_FAILED, S.ROLLING_BACK),
)
del T, S

FINAL_STATES: frozenset[State] = frozenset(
    {
        State.SUCCEEDED,
        State.PRECHECK_FAILED,
        State.STOPPED,
        State.ROLLED_BACK,
        State.ROLLBACK_FAILED,
        State.DRY_RUN,
        State.DRY_RUN_FAILED,
    }
)

OUTCOME_OF: dict[State, Outcome] = {
    State.SUCCEEDED: Outcome.SUCCEEDED,
    State.PRECHECK_FAILED: Outcome.PRECHECK_FAILED,
    State.STOPPED: Outcome.STOPPED,
    State.ROLLED_BACK: Outcome.ROLLED_BACK,
    State.ROLLBACK_FAILED: Outcome.ROLLBACK_FAILED,
    State.DRY_RUN: Outcome.DRY_RUN,
    State.DRY_RUN_FAILED: Outcome.DRY_RUN_FAILED,
}


class IllegalTransition(DrillError):
    """A trigger fired in a state whose table row does not allow it: an engine bug."""


Listener = Callable[[State, State, Trigger], None]


class Lifecycle:
    """One run's lifecycle. ``fire(trigger)`` moves it and tells the listeners.

    ``initial``: where a dead run's journal left it (``drill resume``/``abort``); every later
    change is a transition of the table.
    """

    def __init__(
        self, listeners: list[Listener] | None = None, initial: State = State.PENDING
    ) -> None:
        self.state: State = initial
        self._listeners = list(listeners or [])
        self._machine = Machine(
            model=self,
            states=list(State),
            transitions=[
                {"trigger": t.trigger.value, "source": t.source, "dest": t.dest}
                for t in TRANSITIONS
            ],
            initial=initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            model_attribute="state",
        )

    def fire(self, trigger: Trigger) -> State:
        source = self.state
        try:
            self._machine.events[trigger.value].trigger(self)
        except MachineError as exc:
            raise IllegalTransition(
                f"internal error: {trigger.value!r} is not allowed in state {source.value!r}"
            ) from exc
        log.debug("lifecycle %s --%s--> %s", source, trigger, self.state)
        for listener in self._listeners:
            listener(source, self.state, trigger)
        return self.state

    def allowed(self) -> list[Trigger]:
        return [t.trigger for t in TRANSITIONS if t.source == self.state]

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, generated from :data:`TRANSITIONS`.

    >>> mermaid().splitlines()[:3]
    ['stateDiagram-v2', '    [*] --> pending', '    pending --> prechecking: start']
    """
    lines = ["stateDiagram-v2", f"    [*] --> {State.PENDING.value}"]
    lines += [f"    {t.source.value} --> {t.dest.value}: {t.trigger.value}" for t in TRANSITIONS]
    lines += [f"    {s.value} --> [*]" for s in State if s in FINAL_STATES]
    return "\n".join(lines) + "\n"
