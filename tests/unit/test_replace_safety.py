"""``mode: replace`` safety rules against the fake NAPALM driver: an empty or near-empty
candidate never reaches a device (exit 2 at validate and run), and a candidate that would
remove most of the running config is refused before anything is loaded or committed."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.engine.context import RunOptions
from drill.engine.records import Outcome, StepStatus
from drill.engine.runner import Engine, EngineConfig
from drill.errors import ExitCode
from drill.runbook.replace_safety import check_replace, empty_problem, removed_share

fake_napalm = importlib.import_module("engine_data.fake_napalm")
harness = importlib.import_module("engine_data.harness")

HOSTS = ["r1", "r2"]
RUNNING = ["hostname r1", "interface eth0", "ip address 198.51.100.1/30", "router bgp 65001"]


@pytest.fixture
def net() -> Iterator[object]:
    network = fake_napalm.Network()
    for name in HOSTS:
        network.add(name, list(RUNNING))
    fake_napalm.CURRENT = network
    yield network


def _runbook(config: str, extra: str = "") -> str:
    return f"""apiVersion: drill/v1
name: replace-safety
inventory: inventory
vars:
  body: {config!r}
steps:
  - name: replace all
    kind: config
    mode: replace
    on: r1
    config: "{{{{ vars.body }}}}"{extra}
"""


@pytest.fixture
def cli_dir(tmp_path: Path, net: object, monkeypatch: pytest.MonkeyPatch) -> Path:
    import nornir_napalm.plugins.connections as napalm_connection

    monkeypatch.setattr(
        napalm_connection, "get_network_driver", lambda name: fake_napalm.DrillFakeDriver
    )
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yaml").write_text(
        "".join(f"{h}:\n  hostname: {h}\n  platform: mock\n  username: admin\n" for h in HOSTS)
    )
    return tmp_path


def _cli(*args: str) -> tuple[int, str]:
    """Through drill's real entry point: errors become exit codes in main() only."""
    import contextlib
    import io
    import sys

    from drill.cli.app import main

    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["drill", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main()
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    finally:
        sys.argv = argv
    return 0, out.getvalue()


@pytest.mark.parametrize("body", ["", "   ", "!\n!\n", "# nothing\n\n"])
@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_empty_replace_is_exit_2_and_touches_nothing(
    cli_dir: Path, net: object, body: str, command: str
) -> None:
    path = cli_dir / "runbook.yml"
    path.write_text(_runbook(body))
    code, out = _cli(command, str(path))
    assert code == int(ExitCode.INVALID_INPUT), out
    assert "empty candidate" in out and "allow_wipe" in out
    assert net.log == []  # type: ignore[attr-defined]
    assert net.boxes["r1"].running == RUNNING  # type: ignore[attr-defined]


def test_allow_wipe_opts_out(cli_dir: Path, net: object) -> None:
    path = cli_dir / "runbook.yml"
    path.write_text(_runbook("", "\n    allow_wipe: true"))
    code, out = _cli("validate", str(path))
    assert code == 0, out


def _engine_run(tmp_path: Path, config: str, extra: str = "") -> tuple[object, object]:
    body = f"""apiVersion: drill/v1
name: unit
steps:
  - name: replace all
    kind: config
    mode: replace
    on: r1
    config: |
{config}
{extra}
"""
    tmp_path.mkdir(exist_ok=True)
    loaded = harness.load(body, tmp_path)
    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(),
        config=EngineConfig(state_base=tmp_path / "state"),
    )
    return engine.run(), engine


def test_near_empty_replace_is_refused_before_load(tmp_path: Path, net: object) -> None:
    record, _ = _engine_run(tmp_path, "      hostname r1")
    assert record.outcome is Outcome.ROLLED_BACK  # type: ignore[attr-defined]
    rec = next(s for s in record.steps if s.name == "replace all")  # type: ignore[attr-defined]
    assert rec.status is StepStatus.FAILED
    assert "refused" in rec.hosts["r1"].error and "3 of the running config's 4 lines" in (
        rec.hosts["r1"].error
    )
    assert net.ops("load_replace") == [] and net.ops("commit") == []  # type: ignore[attr-defined]
    assert net.boxes["r1"].running == RUNNING  # type: ignore[attr-defined]


def test_replace_within_the_share_commits(tmp_path: Path, net: object) -> None:
    lines = "\n".join(f"      {line}" for line in [*RUNNING[:3], "router bgp 65002"])
    record, _ = _engine_run(tmp_path, lines)
    assert record.outcome is Outcome.SUCCEEDED  # type: ignore[attr-defined]
    assert net.boxes["r1"].running[-1] == "router bgp 65002"  # type: ignore[attr-defined]


def test_max_removed_and_allow_wipe(tmp_path: Path, net: object) -> None:
    record, _ = _engine_run(tmp_path, "      hostname r1", "    max_removed: 75%")
    assert record.outcome is Outcome.SUCCEEDED  # type: ignore[attr-defined]
    net.boxes["r1"].running = list(RUNNING)  # type: ignore[attr-defined]
    record, _ = _engine_run(tmp_path / "2", "      hostname r1", "    allow_wipe: true")
    assert record.outcome is Outcome.SUCCEEDED  # type: ignore[attr-defined]
    assert net.boxes["r1"].running == ["hostname r1"]  # type: ignore[attr-defined]


def test_rules() -> None:
    assert empty_problem("!\n  \n") is not None
    assert empty_problem("hostname r1\n") is None
    assert removed_share("a\nb\na\n", "a\n") == (2, 3)

    class Step:
        max_removed = "50%"
        allow_wipe = False

    check_replace(Step(), "r1", "a\nb\n", "a\nc\n")  # 1 of 2: exactly 50% is allowed
    with pytest.raises(Exception, match="2 of the running config's 3 lines"):
        check_replace(Step(), "r1", "a\nb\nc\n", "a\n")
