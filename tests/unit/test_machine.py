"""The lifecycle table: every allowed transition works, every other (state, trigger) raises."""

from __future__ import annotations

import itertools

import pytest

from drill.engine.machine import (
    FINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    Lifecycle,
    State,
    Trigger,
    mermaid,
)

# The spec's lifecycle, written out independently of the table it checks.
EXPECTED = {
    (State.PENDING, Trigger.START): State.PRECHECKING,
    (State.PRECHECKING, Trigger.PRECHECKS_PASSED): State.EXECUTING,
    (State.PRECHECKING, Trigger.PRECHECKS_FAILED): State.PRECHECK_FAILED,
    (State.PRECHECKING, Trigger.ABORT): State.PRECHECK_FAILED,
    (State.EXECUTING, Trigger.STEPS_DONE): State.POSTCHECKING,
    (State.EXECUTING, Trigger.STEP_FAILED): State.ROLLING_BACK,
    (State.EXECUTING, Trigger.STOP): State.STOPPED,
    (State.EXECUTING, Trigger.ABORT): State.ROLLING_BACK,
    (State.POSTCHECKING, Trigger.POSTCHECKS_PASSED): State.SUCCEEDED,
    (State.POSTCHECKING, Trigger.POSTCHECKS_FAILED): State.ROLLING_BACK,
    (State.POSTCHECKING, Trigger.ABORT): State.ROLLING_BACK,
    (State.ROLLING_BACK, Trigger.ROLLBACK_DONE): State.ROLLED_BACK,
    (State.ROLLING_BACK, Trigger.ROLLBACK_FAILED): State.ROLLBACK_FAILED,
    (State.EXECUTING, Trigger.DRY_RUN_DONE): State.DRY_RUN,
    (State.EXECUTING, Trigger.DRY_RUN_FAILED): State.DRY_RUN_FAILED,
    # drill abort of a dead run: from where it died, or from an end that left devices changed
    (State.PRECHECKING, Trigger.ROLL_BACK): State.ROLLING_BACK,
    (State.SUCCEEDED, Trigger.ROLL_BACK): State.ROLLING_BACK,
    (State.STOPPED, Trigger.ROLL_BACK): State.ROLLING_BACK,
    (State.ROLLBACK_FAILED, Trigger.ROLL_BACK): State.ROLLING_BACK,
}

# How to reach each state from pending through allowed transitions.
PATH = {
    State.PENDING: [],
    State.PRECHECKING: [Trigger.START],
    State.EXECUTING: [Trigger.START, Trigger.PRECHECKS_PASSED],
    State.POSTCHECKING: [Trigger.START, Trigger.PRECHECKS_PASSED, Trigger.STEPS_DONE],
    State.ROLLING_BACK: [Trigger.START, Trigger.PRECHECKS_PASSED, Trigger.STEP_FAILED],
}
for (source, trigger), dest in EXPECTED.items():
    if dest not in PATH and source in PATH:
        PATH[dest] = [*PATH[source], trigger]


def at(state: State) -> Lifecycle:
    machine = Lifecycle()
    for trigger in PATH[state]:
        machine.fire(trigger)
    assert machine.state is state
    return machine


def test_table_is_the_spec() -> None:
    assert {(t.source, t.trigger): t.dest for t in TRANSITIONS} == EXPECTED


@pytest.mark.parametrize(("source", "trigger"), sorted(EXPECTED, key=str))
def test_allowed_transition(source: State, trigger: Trigger) -> None:
    seen: list[tuple[State, State, Trigger]] = []
    machine = at(source)
    machine._listeners.append(lambda a, b, t: seen.append((a, b, t)))
    assert machine.fire(trigger) is EXPECTED[(source, trigger)]
    assert seen == [(source, EXPECTED[(source, trigger)], trigger)]


DISALLOWED = [(s, t) for s, t in itertools.product(State, Trigger) if (s, t) not in EXPECTED]


@pytest.mark.parametrize(("source", "trigger"), DISALLOWED)
def test_disallowed_transition_raises(source: State, trigger: Trigger) -> None:
    machine = at(source)
    with pytest.raises(IllegalTransition):
        machine.fire(trigger)
    assert machine.state is source


def test_every_state_reachable_and_final_states_have_no_exit_but_abort() -> None:
    assert set(PATH) == set(State)
    for state in FINAL_STATES:
        assert at(state).allowed() in ([], [Trigger.ROLL_BACK])
        assert at(state).final


def test_no_auto_transitions() -> None:
    machine = Lifecycle()
    assert not hasattr(machine, "to_succeeded")


def test_mermaid_has_every_row() -> None:
    text = mermaid()
    for t in TRANSITIONS:
        assert f"{t.source.value} --> {t.dest.value}: {t.trigger.value}" in text
    for state in FINAL_STATES:
        assert f"{state.value} --> [*]" in text
