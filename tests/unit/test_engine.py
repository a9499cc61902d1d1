"""The runner against a fake NAPALM driver (tests/unit/engine_data/fake_napalm.py): success,
scoped reverse rollback, postcheck/precheck failures, on_failure, retries, batch gate,
commit-confirm, dry-run, interruption, journal and secrets."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.engine.context import RunOptions
from drill.engine.records import Outcome, Phase, RunRecord, StepStatus
from drill.engine.runner import Engine, EngineConfig
from drill.errors import ExitCode
from drill.report.facts import exit_code_for


def read_journal(path: Path) -> list[dict[str, object]]:
    """The journal's lines as plain JSON objects (what a person or jq sees)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


fake_napalm = importlib.import_module("engine_data.fake_napalm")  # see conftest.py
harness = importlib.import_module("engine_data.harness")

Network = fake_napalm.Network
HOSTS = ["r1", "r2", "r3"]
HEAD = """
apiVersion: drill/v1
name: unit
targets:
  all: {hosts: [r1, r2, r3]}
  pair: {hosts: [r1, r2]}
"""
HEALTHY = """
    kind: check
    getter: get_state
    assert:
      - path: healthy
        equals: true
"""


@pytest.fixture
def net() -> Iterator[Network]:
    network = Network()
    for name in HOSTS:
        network.add(name, [f"hostname {name}", "priority 100"])
    fake_napalm.CURRENT = network
    yield network


def run(
    tmp_path: Path,
    body: str,
    *,
    dry_run: bool = False,
    yes: bool = False,
    workers: int = 5,
    data: dict[str, dict[str, object]] | None = None,
) -> tuple[RunRecord, Engine]:
    loaded = harness.load(HEAD + body, tmp_path)
    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS, data=data, workers=workers),
        RunOptions(dry_run=dry_run, assume_yes=yes),
        config=EngineConfig(state_base=tmp_path / "state"),
    )
    return engine.run(), engine


def step(record: RunRecord, phase: Phase, name: str) -> list[StepStatus]:
    return [s.status for s in record.steps if s.phase is phase and s.name == name]


def journal(engine: Engine) -> list[dict[str, object]]:
    return read_journal(engine.rundir.journal_path)


def test_success_path(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        f"""
prechecks:
  - name: healthy
    on: all{HEALTHY}
steps:
  - name: lower priority
    kind: config
    on: pair
    config: "priority {{{{ vars.prio }}}}"
  - name: priority lowered
    kind: check
    on: pair
    getter: get_state
    assert:
      - path: priority
        equals: 50
postchecks:
  - name: still healthy
    on: all{HEALTHY}
vars: {{prio: 50}}
""",
    )
    assert record.outcome is Outcome.SUCCEEDED, record.notes
    assert exit_code_for(record.outcome) is ExitCode.OK
    assert net.boxes["r1"].running[-1] == "priority 50"
    assert net.boxes["r3"].running[-1] == "priority 100"
    assert sorted(net.ops("commit")) == ["r1", "r2"]
    config = next(s for s in record.steps if s.name == "lower priority")
    assert config.hosts["r1"].changed and "+priority 50" in config.hosts["r1"].diff
    assert record.restore == {}


def test_failed_step_rolls_back_in_reverse_only_what_ran(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: A
    kind: config
    on: pair
    config: "priority 50"
  - name: B
    kind: config
    on: r2
    config: "priority 60"
  - name: C
    on: all{HEALTHY.replace("equals: true", "equals: false")}
  - name: D
    kind: config
    on: r3
    config: "priority 70"
""",
    )
    assert record.outcome is Outcome.ROLLED_BACK, record.notes
    assert exit_code_for(record.outcome) is ExitCode.FAILED
    rollback = [(s.name, sorted(s.hosts)) for s in record.steps if s.phase is Phase.ROLLBACK]
    assert rollback == [
        ("restore config before 'B'", ["r2"]),
        ("restore config before 'A'", ["r1", "r2"]),
    ]
    assert "r3" not in net.ops("commit") and "r3" not in net.ops("load_replace")
    assert step(record, Phase.STEP, "D") == []
    for name in ("r1", "r2"):
        assert net.boxes[name].running == [f"hostname {name}", "priority 100"]
        assert record.restore[name].exact
    assert set(record.restore) == {"r1", "r2"}


def test_failed_postcheck_rolls_back_and_verifies(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        f"""
prechecks:
  - name: healthy
    on: all{HEALTHY}
steps:
  - name: break r2
    kind: config
    on: r2
    config: broken
postchecks:
  - name: healthy after
    on: all{HEALTHY}
""",
    )
    assert record.outcome is Outcome.ROLLED_BACK
    assert step(record, Phase.POSTCHECK, "healthy after") == [StepStatus.FAILED]
    assert step(record, Phase.VERIFY, "healthy") == [StepStatus.OK]
    assert net.boxes["r2"].running == ["hostname r2", "priority 100"]
    assert record.restore["r2"].exact


def test_precheck_failure_changes_nothing(tmp_path: Path, net: Network) -> None:
    net.boxes["r3"].running.append("broken")
    record, _ = run(
        tmp_path,
        f"""
prechecks:
  - name: healthy
    on: all{HEALTHY}
steps:
  - name: change
    kind: config
    on: all
    config: "priority 1"
""",
    )
    assert record.outcome is Outcome.PRECHECK_FAILED
    assert exit_code_for(record.outcome) is ExitCode.PRECHECK_FAILED
    assert net.ops("commit") == [] and net.ops("load_merge") == []
    failed = next(s for s in record.steps if s.name == "healthy")
    assert failed.message == "r3: healthy: expected equals True, got False"


def test_on_failure_continue(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: soft check
    on_failure: continue
    on: r1{HEALTHY.replace("equals: true", "equals: false")}
  - name: change
    kind: config
    on: r1
    config: "priority 1"
""",
    )
    assert record.outcome is Outcome.SUCCEEDED
    assert step(record, Phase.STEP, "soft check") == [StepStatus.FAILED]
    assert net.boxes["r1"].running[-1] == "priority 1"
    assert any("continuing" in n for n in record.notes)


def test_on_failure_stop_leaves_changes(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: change
    kind: config
    on: r1
    config: "priority 1"
  - name: hard stop
    on_failure: stop
    on: r1{HEALTHY.replace("equals: true", "equals: false")}
""",
    )
    assert record.outcome is Outcome.STOPPED
    assert exit_code_for(record.outcome) is ExitCode.OPERATOR_NEEDED
    assert net.boxes["r1"].running[-1] == "priority 1"
    assert net.ops("load_replace") == []
    assert not [s for s in record.steps if s.phase is Phase.ROLLBACK]


@pytest.mark.parametrize(("retries", "outcome"), [(2, Outcome.SUCCEEDED), (0, Outcome.ROLLED_BACK)])
def test_retries(tmp_path: Path, net: Network, retries: int, outcome: Outcome) -> None:
    net.boxes["r2"].flaky = 1
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: flaky
    retries: {retries}
    on: pair{HEALTHY}
""",
    )
    assert record.outcome is outcome
    # Only the failing host is asked again.
    expected = ["r1", "r2", "r2"] if retries else ["r1", "r2"]
    assert sorted(net.ops("get_state")) == expected


def test_step_timeout_stops_hosts_from_starting(tmp_path: Path, net: Network) -> None:
    net.boxes["r1"].delay = 0.3
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: slow
    timeout: 100ms
    on: all{HEALTHY}
""",
        workers=1,
    )
    assert record.outcome is Outcome.ROLLED_BACK
    slow = next(s for s in record.steps if s.name == "slow")
    assert not slow.hosts["r1"].failed  # it started in time and finished
    assert slow.hosts["r3"].error == "not run: the step's timeout passed"
    assert net.ops("get_state").count("r3") == 0


def test_batch_gate_stops_before_next_batch(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        """
steps:
  - name: rolling change
    kind: config
    on: all
    batch: 1
    config: "{{ 'broken' if host.name == 'r2' else 'priority 5' }}"
    check:
      getter: get_state
      assert:
        - path: healthy
          equals: true
""",
    )
    assert record.outcome is Outcome.ROLLED_BACK
    assert net.ops("commit").count("r3") == 0  # the batch after the failing one never ran
    first = next(s for s in record.steps if s.name == "rolling change")
    assert "batch 2/3 check failed, 1 host(s) not changed" in (first.message or "")
    assert sorted(record.restore) == ["r1", "r2"]
    assert all(r.exact for r in record.restore.values())


def test_dry_run_commits_nothing(tmp_path: Path, net: Network) -> None:
    marker = tmp_path / "ran"
    record, _ = run(
        tmp_path,
        f"""
prechecks:
  - name: healthy
    on: all{HEALTHY}
steps:
  - name: change
    kind: config
    on: all
    config: "priority 7"
  - name: look
    on: all{HEALTHY}
  - name: ok to continue
    kind: approval
  - name: read-only command
    kind: command
    read_only: true
    argv: [touch, {marker}]
  - name: writing command
    kind: command
    argv: [touch, {tmp_path / "must-not-exist"}]
postchecks:
  - name: after
    on: all{HEALTHY}
""",
        dry_run=True,
    )
    assert record.outcome is Outcome.DRY_RUN
    assert exit_code_for(record.outcome) is ExitCode.OK
    assert net.ops("commit") == []
    assert sorted(net.ops("discard")) == HOSTS
    change = next(s for s in record.steps if s.name == "change")
    assert change.hosts["r1"].diff == "-priority 100\n+priority 7"
    assert not change.hosts["r1"].changed
    statuses = {s.name: s.status for s in record.steps}
    assert statuses["look"] is StepStatus.SKIPPED
    assert statuses["ok to continue"] is StepStatus.SKIPPED
    assert statuses["after"] is StepStatus.SKIPPED
    assert statuses["healthy"] is StepStatus.OK  # prechecks run for real
    assert marker.exists() and not (tmp_path / "must-not-exist").exists()
    for name in HOSTS:
        assert net.boxes[name].running == [f"hostname {name}", "priority 100"]


def test_dry_run_rejected_candidate_fails(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        """
steps:
  - name: bad
    kind: config
    on: r1
    config: "reject me"
""",
        dry_run=True,
    )
    assert record.outcome is Outcome.DRY_RUN_FAILED
    assert exit_code_for(record.outcome) is ExitCode.FAILED
    bad = next(s for s in record.steps if s.name == "bad")
    assert "% Unknown command: reject me" in (bad.hosts["r1"].error or "")
    assert net.ops("commit") == []


@pytest.mark.parametrize("passes", [True, False])
def test_commit_confirm(tmp_path: Path, net: Network, passes: bool) -> None:
    line = "priority 9" if passes else "broken"
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: confirmed change
    kind: config
    on: r1
    config: "{line}"
    confirm: {{timeout: 60s}}
    check:
      getter: get_state
      assert:
        - path: healthy
          equals: true
""",
    )
    if passes:
        assert record.outcome is Outcome.SUCCEEDED
        assert net.ops("confirm") == ["r1"]
        assert net.boxes["r1"].running[-1] == "priority 9"
    else:
        assert record.outcome is Outcome.ROLLED_BACK
        assert net.ops("confirm") == []
        change = next(s for s in record.steps if s.name == "confirmed change")
        assert "not confirmed, the device reverts it within 60s" in (change.hosts["r1"].error or "")
        assert net.ops("rollback") == ["r1"]  # pending commit cancelled on the device
        assert record.restore["r1"].exact
    assert net.opens >= 2  # the confirm check used a fresh session


def test_interrupt_rolls_back(tmp_path: Path, net: Network) -> None:
    record, engine = run(
        tmp_path,
        f"""
steps:
  - name: change
    kind: config
    on: r1
    config: "priority 3"
  - name: operator hits ctrl-c
    kind: command
    argv: [sh, -c, "kill -INT {os.getpid()}; sleep 5"]
""",
    )
    assert record.outcome is Outcome.ROLLED_BACK
    assert step(record, Phase.STEP, "operator hits ctrl-c") == [StepStatus.INTERRUPTED]
    assert net.boxes["r1"].running == ["hostname r1", "priority 100"]
    events = journal(engine)
    assert {"from": "executing", "to": "rolling_back", "trigger": "abort"}.items() <= next(
        e for e in events if e.get("trigger") == "abort"
    ).items()


def test_failed_rollback_needs_operator(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: change
    kind: config
    on: r1
    config: "priority 3"
    rollback:
      - name: undo that fails
        kind: command
        argv: ["false"]
  - name: fail
    on: r1{HEALTHY.replace("equals: true", "equals: false")}
""",
    )
    assert record.outcome is Outcome.ROLLBACK_FAILED
    assert exit_code_for(record.outcome) is ExitCode.OPERATOR_NEEDED
    assert not record.restore["r1"].exact
    assert "+priority 3" in record.restore["r1"].diff


def test_rollback_none_is_left_changed_and_said(tmp_path: Path, net: Network) -> None:
    record, _ = run(
        tmp_path,
        f"""
steps:
  - name: kept
    kind: config
    on: r1
    config: "priority 8"
    rollback: none
  - name: undone
    kind: config
    on: r2
    config: "priority 9"
  - name: fail
    on: r1{HEALTHY.replace("equals: true", "equals: false")}
""",
    )
    # r2 is restored; r1 stays changed on purpose, so the restore is not exact: a human
    # must look (exit 3), and the notes say which step and host.
    assert record.outcome is Outcome.ROLLBACK_FAILED
    assert net.boxes["r2"].running == ["hostname r2", "priority 100"]
    assert net.boxes["r1"].running[-1] == "priority 8"
    assert record.restore["r2"].exact and not record.restore["r1"].exact
    assert any("rollback: none" in n and "r1" in n for n in record.notes)


def test_approval_needs_tty_or_yes(tmp_path: Path, net: Network) -> None:
    body = """
steps:
  - name: go?
    kind: approval
"""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    record, _ = run(tmp_path / "a", body)
    assert record.outcome is Outcome.ROLLED_BACK
    assert step(record, Phase.STEP, "go?") == [StepStatus.FAILED]
    assert "no TTY" in (record.steps[-1].message or "")
    record, _ = run(tmp_path / "b", body, yes=True)
    assert record.outcome is Outcome.SUCCEEDED


def test_journal_and_run_dir(tmp_path: Path, net: Network) -> None:
    secret_line = f"neighbor 198.51.100.1 password {harness.PASSWORD}"
    record, engine = run(
        tmp_path,
        f"""
steps:
  - name: with secret
    kind: config
    on: r1
    config: "{secret_line}"
  - name: fail
    on: r1{HEALTHY.replace("equals: true", "equals: false")}
""",
    )
    run_dir = engine.rundir.path
    assert run_dir.parent.name == "runs" and run_dir.name.endswith(engine.run_id[-4:])
    copy = (run_dir / "runbook.yml").read_text()
    assert "with secret" in copy and harness.PASSWORD not in copy
    snaps = run_dir / "snapshots"
    assert stat.S_IMODE(snaps.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in snaps.iterdir())
    text = engine.rundir.journal_path.read_text()
    assert harness.PASSWORD not in text
    shown = [h.diff + (h.error or "") for s in record.steps for h in s.hosts.values()]
    assert shown and all(harness.PASSWORD not in text for text in shown)
    events = [json.loads(line) for line in text.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["journal", "run_started"] and kinds[-1] == "run_ended"
    assert events[0]["version"] == 2  # the schema version, first
    started = kinds.index("step_started", kinds.index("state"))
    commit = kinds.index("commit_started")
    assert started < kinds.index("preconfig") < commit < kinds.index("committed")
    assert [e["step"] for e in events if e["event"] == "step_started"] == [
        e["step"] for e in events if e["event"] == "step_ended"
    ]
    snapshot_paths = [e["path"] for e in events if e["event"] == "snapshot"]
    assert snapshot_paths and all(Path(p).exists() for p in snapshot_paths)


@pytest.mark.parametrize("healthy", [True, False])
def test_validate_fails_when_not_complying(tmp_path: Path, net: Network, healthy: bool) -> None:
    if not healthy:
        net.boxes["r2"].running.append("broken")
    (tmp_path / "validate.yml").write_text("- get_state: {healthy: true}\n")
    record, _ = run(
        tmp_path,
        """
steps:
  - name: compliant
    kind: validate
    on: pair
    file: validate.yml
""",
    )
    assert record.outcome is (Outcome.SUCCEEDED if healthy else Outcome.ROLLED_BACK)
    compliant = next(s for s in record.steps if s.name == "compliant")
    if not healthy:
        assert compliant.message == "r2: get_state: healthy expected True, got False"


TRACE = """traceroute to 203.0.113.10 (203.0.113.10), 16 hops max
 1  192.0.2.3  0.210 ms
 2  198.51.100.{hop}  0.301 ms
 3  *
 4  203.0.113.10  0.450 ms
"""


@pytest.mark.parametrize(("hop", "owner"), [("6", None), ("2", "r1"), ("99", "r3")])
def test_traceroute_avoid_site(
    tmp_path: Path, net: Network, monkeypatch: pytest.MonkeyPatch, hop: str, owner: str | None
) -> None:
    import subprocess

    from drill.steps import vantage

    calls: list[list[str]] = []

    def fake_run(argv: list[str], where: str | None, **_: object) -> object:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, TRACE.format(hop=hop), "")

    monkeypatch.setattr(vantage, "run", fake_run)
    data = {
        "r1": {"site": "dc1", "addresses": ["198.51.100.2/30", "192.0.2.2"]},
        "r2": {"site": "dc2", "addresses": ["198.51.100.6", "192.0.2.3"]},
        "r3": {"site": "dc1"},  # no addresses listed: read from the device
    }
    record, _ = run(
        tmp_path,
        """
steps:
  - name: path avoids dc1
    kind: check
    traceroute: 203.0.113.10
    from: netns:two-dc-client
    avoid_site: dc1
    assert:
      - path: reached
        equals: true
      - path: hops
        count: {ge: 3}
""",
        data=data,
    )
    assert calls and calls[0][-1] == "203.0.113.10"
    step_record = next(s for s in record.steps if s.name == "path avoids dc1")
    if owner:
        assert step_record.status is StepStatus.FAILED
        assert step_record.message == (
            f"netns:two-dc-client: traceroute hop 2 198.51.100.{hop} belongs to {owner} (site dc1)"
        )
    else:
        assert step_record.status is StepStatus.OK, step_record.message


def test_http_check(tmp_path: Path, net: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from drill.steps import vantage

    def fake_run(argv: list[str], where: str | None, **_: object) -> object:
        return subprocess.CompletedProcess(argv, 0, "app2\n\n__drill_status__:200", "")

    monkeypatch.setattr(vantage, "run", fake_run)
    record, _ = run(
        tmp_path,
        """
steps:
  - name: service answers from dc2
    kind: check
    http: http://192.0.2.10/
    assert:
      - path: status
        equals: 200
      - path: body
        regex: "^app1"
""",
    )
    failed = next(s for s in record.steps if s.name == "service answers from dc2")
    assert failed.message == "local: body: expected regex '^app1', got 'app2\\n'"


class FakeProbe:
    """Stands in for drill.probes' RunningProbe: an outage during the config step."""

    def __init__(self, spec: object, outage_at: list[float]) -> None:
        self.spec = spec
        self.outage_at = outage_at

    def stop(self) -> object:
        from drill.engine.records import Outage, ProbeResult

        start = self.outage_at[0]
        outage = Outage(start=start, end=start + 0.05, lost=40)
        return ProbeResult("gw", "packet", 1000.0, 5000, 40, 49.0, outages=[outage])

    def check_limits(self) -> str | None:
        return "probe gw: 40 packets lost, limit 10"


def test_probe_over_its_limit_fails_the_drill(
    tmp_path: Path, net: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from drill.probes import running

    outage_at: list[float] = []
    started: list[str] = []

    def start_probe(spec: object, bins_dir: object = None) -> FakeProbe:
        started.append(getattr(spec, "name", ""))
        return FakeProbe(spec, outage_at)

    monkeypatch.setattr(running, "start_probe", start_probe)
    body = f"""
probes:
  - name: gw
    kind: packet
    target: 192.0.2.1
    max_loss: 10
steps:
  - name: change
    kind: config
    on: r1
    config: "priority 4"
  - name: mark
    kind: command
    argv: [sleep, "0.2"]
postchecks:
  - name: healthy
    on: r1{HEALTHY}
"""
    outage_at.append(time.time())
    record, _ = run(tmp_path, body)
    assert started == ["gw"]
    assert record.outcome is Outcome.ROLLED_BACK
    assert "probe gw: 40 packets lost, limit 10" in record.notes
    assert record.probes[0].lost == 40
    assert record.restore["r1"].exact
    # attributed to the run's steps by their start/end times (drill.probes.attribution)
    assert {"change", "mark", "healthy"} <= set(record.probes[0].by_step)


# --- the CLI ------------------------------------------------------------------------------

CLI_RUNBOOK = """
apiVersion: drill/v1
name: cli-unit
inventory: inventory
targets:
  edges: {hosts: [r1, r2]}
prechecks:
  - name: facts
    kind: check
    on: edges
    getter: get_facts
    assert:
      - path: vendor
        equals: fake
steps:
  - name: lower priority
    kind: config
    on: edges
    config: "{{ vars.line }}"
postchecks:
  - name: not broken
    kind: check
    on: r2
    getter: get_config
    assert:
      - path: running
        regex: '^(?![\\s\\S]*broken)'
vars: {line: priority 50}
"""


@pytest.fixture
def cli_dir(tmp_path: Path, net: Network, monkeypatch: pytest.MonkeyPatch) -> Path:
    import nornir_napalm.plugins.connections as napalm_connection

    # The loader only accepts known platforms: call the hosts 'mock' and hand nornir the
    # fake driver for it.
    monkeypatch.setattr(
        napalm_connection, "get_network_driver", lambda name: fake_napalm.DrillFakeDriver
    )
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yaml").write_text(
        "".join(
            f"{h}:\n  hostname: {h}\n  platform: mock\n  username: admin\n"
            f"  password: {harness.PASSWORD}\n"
            for h in HOSTS
        )
    )
    (tmp_path / "runbook.yml").write_text(CLI_RUNBOOK)
    return tmp_path


def drill_cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from drill.cli.app import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_cli_graph_and_plan(cli_dir: Path) -> None:
    code, out = drill_cli("graph")
    assert code == 0 and out.startswith("stateDiagram-v2")
    code, out = drill_cli("plan", str(cli_dir / "runbook.yml"), "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert [(s["phase"], s["name"], s["hosts"]) for s in plan["steps"]] == [
        ("precheck", "facts", ["r1", "r2"]),
        ("step", "lower priority", ["r1", "r2"]),
        ("postcheck", "not broken", ["r2"]),
    ]
    assert plan["rollback"][0].startswith("lower priority: restore the running config")


def test_cli_run_exit_codes(cli_dir: Path, net: Network) -> None:
    runbook = str(cli_dir / "runbook.yml")
    code, out = drill_cli("run", runbook, "--dry-run", "--json")
    assert code == int(ExitCode.OK), out
    assert net.ops("commit") == []
    code, out = drill_cli("run", runbook, "--var", "line=broken", "--report-dir", str(cli_dir))
    assert code == int(ExitCode.FAILED), out
    report = json.loads((cli_dir / "report.json").read_text())
    assert report["outcome"] == "rolled_back"
    assert harness.PASSWORD not in (cli_dir / "report.json").read_text()
    for name in ("r1", "r2"):
        assert net.boxes[name].running == [f"hostname {name}", "priority 100"]
    code, out = drill_cli("run", runbook, "--junit", str(cli_dir / "junit.xml"))
    assert code == int(ExitCode.OK), out
    assert net.boxes["r1"].running[-1] == "priority 50"
    assert (cli_dir / "junit.xml").exists()
    runs = sorted((cli_dir / "state" / "runs").iterdir())
    assert len(runs) == 3 and all((r / "report.json").exists() for r in runs)
    # report.html for every run: the dry-run, the failed one (and in --report-dir), the good one
    assert all((r / "report.html").exists() for r in runs) and (cli_dir / "report.html").exists()


def test_test_hook_variables_do_nothing_in_a_production_run(
    cli_dir: Path, net: Network, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the real entry point: the fault hooks live in tests/lab/faultdrill.py only."""
    from drill.cli.app import main

    marker = tmp_path / "hook-ran"
    monkeypatch.setenv("DRILL_TEST_EXEC_AT", "step_started:*")
    monkeypatch.setenv("DRILL_TEST_EXEC", f"touch {marker}")
    monkeypatch.setenv("DRILL_TEST_CRASH_AT", "step_started:*")  # would SIGKILL pytest
    monkeypatch.setattr("sys.argv", ["drill", "run", str(cli_dir / "runbook.yml"), "--json"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert not marker.exists()
    assert net.boxes["r1"].running[-1] == "priority 50"


def test_report_paths_stay_whole_in_a_log(cli_dir: Path) -> None:
    """Without a terminal (CI logs, make demo > file) a long report path is one line."""
    deep = cli_dir / ("d" * 60) / ("e" * 60)
    code, out = drill_cli("run", str(cli_dir / "runbook.yml"), "--report-dir", str(deep))
    assert code == int(ExitCode.OK), out
    reported = [line.removeprefix("report: ") for line in out.splitlines() if "report: " in line]
    assert str(deep / "report.json") in reported and str(deep / "report.html") in reported
