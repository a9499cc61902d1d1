"""Ctrl-C / SIGTERM handling against the fake NAPALM driver: the first signal rolls back;
during the rollback one signal is refused, a second one asks (TTY) or leaves devices changed
only after journaling exactly what is left (no TTY)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drill.engine.context import RunOptions
from drill.engine.events import Event
from drill.engine.records import Outcome
from drill.engine.runner import Engine, EngineConfig


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The journal's lines as plain JSON objects (what a person or jq sees)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


fake_napalm = importlib.import_module("engine_data.fake_napalm")  # see conftest.py
harness = importlib.import_module("engine_data.harness")

HOSTS = ["r1", "r2"]
BOOK = """
apiVersion: drill/v1
name: unit-signals
steps:
  - name: raise r1
    kind: config
    on: r1
    config: "priority 200"
  - name: tag r2
    kind: config
    on: r2
    config: "feature tagged"
  - name: soak
    kind: pause
    duration: 30s
"""
INITIAL = {name: [f"hostname {name}", "priority 100"] for name in HOSTS}


@pytest.fixture
def net() -> Any:
    network = fake_napalm.Network()
    for name in HOSTS:
        network.add(name, INITIAL[name])
    fake_napalm.CURRENT = network  # type: ignore[attr-defined]
    return network


class SignalAt:
    """Send ``sig`` to this process when the journal sees a step of ``phase`` start."""

    def __init__(self, phase: str, sig: signal.Signals, times: int = 1) -> None:
        self.phase, self.sig, self.left = phase, sig, times

    def notify(self, event: Event) -> None:
        if (
            self.left
            and event.kind == "step_started"
            and event.entry().model_dump()["phase"] == self.phase
        ):
            self.left -= 1
            os.kill(os.getpid(), self.sig)


def run(
    tmp_path: Path,
    observers: list[Any],
    confirm: Callable[[str], bool] | None = None,
    book: str = BOOK,
) -> tuple[Any, Engine]:
    loaded = harness.load(book, tmp_path)
    options = RunOptions(assume_yes=True, interactive=confirm is not None, confirm=confirm)
    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        options,
        observers=observers,
        config=EngineConfig(state_base=tmp_path / "state"),
    )
    return engine.run(), engine


def later(seconds: float, sig: signal.Signals) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), sig))
    timer.start()
    return timer


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_pause_rolls_back_exactly(tmp_path: Path, net: Any, sig: Any) -> None:
    timer = later(0.5, sig)
    try:
        record, _ = run(tmp_path, [])
    finally:
        timer.cancel()
    assert record.outcome is Outcome.ROLLED_BACK, record.notes
    assert {n: b.running for n, b in net.boxes.items()} == INITIAL
    assert set(record.restore) == {"r1", "r2"}
    assert all(p.exact for p in record.restore.values())


def test_one_signal_during_rollback_is_refused(tmp_path: Path, net: Any) -> None:
    """A failed step starts the rollback; one SIGTERM then is refused and it completes."""
    failing = BOOK.replace(
        """  - name: soak
    kind: pause
    duration: 30s
""",
        """  - name: r1 unchanged (fails)
    kind: check
    on: r1
    getter: get_state
    assert:
      - path: priority
        equals: 100
""",
    )
    record, _ = run(tmp_path, [SignalAt("rollback", signal.SIGTERM)], book=failing)
    assert record.outcome is Outcome.ROLLED_BACK, record.notes
    assert {n: b.running for n, b in net.boxes.items()} == INITIAL


def test_second_signal_without_tty_leaves_changed_after_listing(tmp_path: Path, net: Any) -> None:
    # first SIGTERM during the pause; two more as the rollback starts (one refused, one acts)
    timer = later(0.5, signal.SIGTERM)
    try:
        record, engine = run(tmp_path, [SignalAt("rollback", signal.SIGTERM, times=2)])
    finally:
        timer.cancel()
    assert record.outcome is Outcome.ROLLBACK_FAILED
    left = [n for n in record.notes if n.startswith("LEFT CHANGED")]
    # the rollback stopped before its first action finished: both hosts are left changed
    assert any("r2" in n and "'tag r2'" in n for n in left), record.notes
    assert any("r1" in n and "'raise r1'" in n for n in left), record.notes
    assert net.boxes["r1"].running != INITIAL["r1"]
    events = read_journal(engine.rundir.journal_path)
    journaled = [e["text"] for e in events if e["event"] == "note"]
    assert all(n in journaled for n in left)
    last_state = [e for e in events if e["event"] == "state"][-1]
    assert last_state["to"] == "rollback_failed"


@pytest.mark.parametrize(("answer", "outcome"), [(False, "rolled_back"), (True, "rollback_failed")])
def test_second_signal_on_tty_asks(tmp_path: Path, net: Any, answer: bool, outcome: str) -> None:
    asked: list[str] = []

    def confirm(prompt: str) -> bool:
        asked.append(prompt)
        return answer

    timer = later(0.5, signal.SIGINT)
    try:
        record, _ = run(tmp_path, [SignalAt("rollback", signal.SIGINT, times=2)], confirm)
    finally:
        timer.cancel()
    assert asked and "LEAVE DEVICES CHANGED" in asked[0]
    assert record.outcome.value == outcome
    if not answer:
        assert {n: b.running for n, b in net.boxes.items()} == INITIAL
