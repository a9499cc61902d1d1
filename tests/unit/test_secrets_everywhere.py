"""Secrets reach no output, whatever path a run takes: success, failure with rollback,
a device that echoes the password in its error, an interrupted-and-resumed run, a second
signal that leaves devices changed. Every file of the run dir (but the owner-only
snapshots), report.json, report.html, JUnit, the console and DEBUG logs are searched for the literal
values. The lab version is tests/lab/test_reliability.py::test_secrets_reach_no_output."""

from __future__ import annotations

import importlib
import importlib.util
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from drill.engine.context import RunOptions
from drill.engine.events import Event
from drill.engine.recovery import Recovery
from drill.engine.runner import Engine, EngineConfig, inventory_secrets
from drill.engine.trace import Trace
from drill.report.console import ConsoleObserver
from drill.report.junit import write_junit
from drill.report.report import write_html_reports, write_report

fake_napalm = importlib.import_module("engine_data.fake_napalm")  # see conftest.py
harness = importlib.import_module("engine_data.harness")

HOSTS = ["r1", "r2"]
BGP_SECRET = "Neighbour-Pw-93"
PASSWORD = harness.PASSWORD


def book(*, fail: bool = False, echo: bool = False) -> str:
    last = "reject " + PASSWORD if echo else "feature done"
    text = f"""
apiVersion: drill/v1
name: secrets
steps:
  - name: peer
    kind: config
    on: r1
    config: |
      neighbor 198.51.100.1 password {BGP_SECRET}
  - name: other
    kind: config
    on: r2
    config: "{last}"
"""
    if fail:
        text += """
postchecks:
  - name: fails
    kind: check
    on: r1
    getter: get_state
    assert:
      - path: priority
        equals: 1
"""
    return text


@pytest.fixture
def net() -> Any:
    network = fake_napalm.Network()
    for name in HOSTS:
        network.add(name, [f"hostname {name}", "priority 100"])
    fake_napalm.CURRENT = network  # type: ignore[attr-defined]
    return network


class Outputs:
    """Everything a person or a tool could read from one run."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.console = io.StringIO()
        self.observer = ConsoleObserver(Console(file=self.console, width=200))
        self.engines: list[Engine] = []

    def finish(self, engine: Engine, record: Any) -> None:
        secrets = inventory_secrets(engine.nr)
        self.observer.summary(record)
        write_report(record, self.tmp_path / "report", secrets=secrets)
        # report.html in the run dir and in the report dir: both searched below
        pages = write_html_reports(
            record, engine.rundir.path, self.tmp_path / "report", secrets=secrets
        )
        assert len(pages) == 2
        write_junit(record, self.tmp_path / "junit.xml", secrets=secrets)
        self.engines.append(engine)

    def texts(self, logs: str) -> dict[str, str]:
        found = {"console": self.console.getvalue(), "logs": logs}
        for engine in self.engines:
            snapshots = engine.rundir.path / "snapshots"
            for path in engine.rundir.path.rglob("*"):
                if path.is_file() and snapshots not in path.parents:
                    found[str(path)] = path.read_text(errors="replace")
        for path in [*(self.tmp_path / "report").rglob("*"), self.tmp_path / "junit.xml"]:
            if path.is_file():
                found[str(path)] = path.read_text(errors="replace")
        return found


def assert_clean(found: dict[str, str]) -> None:
    for secret in (PASSWORD, BGP_SECRET):
        leaks = [where for where, text in found.items() if secret in text]
        assert not leaks, f"{secret!r} leaked into {leaks}"


def engine_for(tmp_path: Path, text: str, out: Outputs, *extra: Any) -> Engine:
    loaded = harness.load(text, tmp_path)
    return Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        observers=[out.observer, *extra],
        config=EngineConfig(state_base=tmp_path / "state", handle_signals=False),
    )


@pytest.mark.parametrize(
    ("fail", "echo"), [(False, False), (True, False), (False, True)], ids=["ok", "rb", "echo"]
)
def test_no_secret_in_any_output(
    tmp_path: Path, net: Any, caplog: pytest.LogCaptureFixture, fail: bool, echo: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    out = Outputs(tmp_path)
    engine = engine_for(tmp_path, book(fail=fail, echo=echo), out)
    record = engine.run()
    out.finish(engine, record)
    assert record.outcome is not None
    assert "<redacted>" in out.console.getvalue()  # the diff shows THAT it changed
    assert_clean(out.texts(caplog.text))
    snapshots = list((engine.rundir.path / "snapshots").iterdir())
    assert snapshots and all(p.stat().st_mode & 0o077 == 0 for p in snapshots)


class Crash(BaseException):
    pass


class CrashAfterFirstCommit:
    def notify(self, event: Event) -> None:
        if event.kind == "step_ended" and event.entry().model_dump().get("name") == "peer":
            raise Crash


def test_no_secret_after_resume(tmp_path: Path, net: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    out = Outputs(tmp_path)
    text = book(fail=True)
    engine = engine_for(tmp_path, text, out, CrashAfterFirstCommit())
    with pytest.raises(Crash):
        engine.run()
    again = Engine(
        engine.runbook,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        observers=[out.observer],
        config=EngineConfig(handle_signals=False),
        recovery=Recovery.of(Trace.read(engine.rundir.path), "resume"),
        rundir=engine.rundir,
    )
    record = again.run()
    out.finish(again, record)
    assert record.outcome is not None and record.outcome.value == "rolled_back"
    assert_clean(out.texts(caplog.text))
