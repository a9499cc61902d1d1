"""The isolation cut on devices, against the fake NAPALM driver: each cut step is committed
with a revert timer of ``isolate.for`` and never confirmed; drill waits for the device's own
timer, proves the config is back, and reverts a device whose timer is late itself. The lab
version (FRR's real revert timer) is tests/lab/test_isolation_rehearsal.py."""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drill.engine import isolation_devices
from drill.engine.context import RunOptions
from drill.engine.records import Outcome
from drill.engine.runner import Engine, EngineConfig

fake_napalm = importlib.import_module("engine_data.fake_napalm")  # see conftest.py
harness = importlib.import_module("engine_data.harness")

HOSTS = ["r1", "r2"]
BOOK = """
apiVersion: drill/v1
name: unit-isolation
evacuate: dc1
flows: {catalog: catalog.json}
steps:
  - name: raise r1
    kind: config
    on: r1
    config: "priority 200"
isolate:
  for: 1s
  interval: 400ms
  timeout: 300ms
  baseline: 100ms
  recover: 1s
  cut:
    - name: cut r2
      kind: config
      on: r2
      config: "shutdown uplinks"
"""
EMPTY_CATALOG = {
    "version": 1,
    "source": {"flows": [], "services": "services.yml", "records": 0, "generated": "now"},
    "services": [],
    "flows": [],
    "unknown_endpoints": [],
}


@pytest.fixture
def net() -> Any:
    network = fake_napalm.Network()
    for name in HOSTS:
        network.add(name, [f"hostname {name}", "priority 100"])
    fake_napalm.CURRENT = network  # type: ignore[attr-defined]
    return network


def run(tmp_path: Path) -> Any:
    (tmp_path / "catalog.json").write_text(json.dumps(EMPTY_CATALOG))
    loaded = harness.load(BOOK, tmp_path)
    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        config=EngineConfig(state_base=tmp_path / "state", handle_signals=False),
    )
    return engine.run()


def device_timer(box: Any, after: float) -> threading.Thread:
    """The device's own revert timer: ``after`` s after the unconfirmed commit, it restores."""

    def fire() -> None:
        while box.pending_revert is None:
            time.sleep(0.01)
        time.sleep(after)
        box.running, box.pending_revert = box.pending_revert, None

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


def test_the_device_reverts_the_cut_by_itself(tmp_path: Path, net: Any) -> None:
    timer = device_timer(net.boxes["r2"], after=1.0)
    record = run(tmp_path)
    timer.join(5)
    assert record.outcome is Outcome.SUCCEEDED, record.notes
    iso = record.isolation
    assert iso is not None and (iso.means, iso.lifted_by) == ("devices", "device revert timer")
    assert net.ops("commit") == ["r1", "r2"] and net.ops("confirm") == []  # never confirmed
    assert net.ops("rollback") == []  # the device did it
    assert net.boxes["r2"].running == ["hostname r2", "priority 100"]
    steps = {(s.phase.value, s.name): s for s in record.steps}
    assert steps[("isolate", "cut r2")].hosts["r2"].changed
    assert (
        steps[("isolate", "devices revert the cut by themselves")]
        .hosts["r2"]
        .diff.startswith("the cut reverted by its own timer")
    )


def test_a_late_device_is_reverted_by_drill(
    tmp_path: Path, net: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation_devices, "GRACE_S", 0.5)
    record = run(tmp_path)  # no device timer fires
    assert record.isolation is not None and record.isolation.lifted_by == "drill"
    assert net.ops("rollback") == ["r2"]
    assert net.boxes["r2"].running == ["hostname r2", "priority 100"]
    assert net.boxes["r2"].pending_revert is None
    assert record.outcome is Outcome.SUCCEEDED
    assert any("drill reverted it" in n for n in record.notes), record.notes


def _engine(tmp_path: Path, book: str = BOOK, handle_signals: bool = False) -> Engine:
    (tmp_path / "catalog.json").write_text(json.dumps(EMPTY_CATALOG))
    loaded = harness.load(book, tmp_path)
    return Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        config=EngineConfig(state_base=tmp_path / "state", handle_signals=handle_signals),
    )


def _journal(engine: Engine) -> list[dict[str, Any]]:
    text = (engine.rundir.path / "journal.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_a_cut_that_changes_nothing_fails_the_rehearsal(tmp_path: Path, net: Any) -> None:
    """A cut whose config is already on the device cuts nothing off: a rehearsal that
    passed on it would prove nothing."""
    net.boxes["r2"].running.append("shutdown uplinks")
    record = run(tmp_path)
    assert record.outcome is Outcome.ROLLED_BACK
    step = next(s for s in record.steps if s.name.startswith("isolate "))
    assert "changed nothing on r2" in (step.message or ""), step.message
    assert "r2" not in net.ops("commit")  # the cut committed nothing; r1 was restored
    assert net.boxes["r1"].running == ["hostname r1", "priority 100"]


def test_ctrl_c_during_a_device_cut_reverts_it_at_once(tmp_path: Path, net: Any) -> None:
    """The interrupted run still reaches the cut devices (the abort gate of every other
    step does not apply to taking the cut back), and journals the lift only once proven."""
    book = BOOK.replace("for: 1s", "for: 30s")
    engine = _engine(tmp_path, book, handle_signals=True)

    def interrupt() -> None:
        while net.boxes["r2"].pending_revert is None:
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    record = engine.run()
    assert time.monotonic() - started < 20  # not the 30 s of the device's timer
    assert net.ops("rollback") == ["r2"]
    assert net.boxes["r2"].pending_revert is None
    assert net.boxes["r2"].running == ["hostname r2", "priority 100"]
    assert record.isolation is not None and record.isolation.lifted_by == "drill"
    lifted = [e for e in _journal(engine) if e.get("event") == "isolation"]
    assert [e["action"] for e in lifted][-1] == "lifted"
    assert record.outcome is not Outcome.SUCCEEDED


def test_a_lift_that_cannot_be_proven_is_not_journaled_as_lifted(
    tmp_path: Path, net: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = BOOK.replace("for: 1s", "for: 30s")
    engine = _engine(tmp_path, book, handle_signals=True)
    monkeypatch.setattr(isolation_devices.DeviceCut, "lift_now", lambda self: False)

    def interrupt() -> None:
        while net.boxes["r2"].pending_revert is None:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    record = engine.run()
    actions = [e["action"] for e in _journal(engine) if e.get("event") == "isolation"]
    assert actions and "lifted" not in actions, actions
    assert any("NOT PROVEN LIFTED" in n for n in record.notes), record.notes
