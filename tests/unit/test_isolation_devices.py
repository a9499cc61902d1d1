"""The isolation cut on devices, against the fake NAPALM driver: each cut step is committed
with a revert timer of ``isolate.for`` and never confirmed; drill waits for the device's own
timer, proves the config is back, and reverts a device whose timer is late itself. The lab
version (FRR's real revert timer) is tests/lab/test_isolation_rehearsal.py."""

from __future__ import annotations

import importlib
import json
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
