"""The isolation rehearsal around the engine, without a lab: the runbook's ``isolate:`` is
validated, a missing or bad catalog is exit 2 before any device, the journal's cut entries
make ``drill status`` say whether the lab's own timer has lifted a dead run's cut, and
report.json's ``isolation`` section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drill.engine.events import IsolationEntry, JournalHeader, RunStartedEntry, StateEntry
from drill.engine.journal import Journal
from drill.engine.machine import State, Trigger
from drill.engine.records import FlowOutcome, FlowWindow, IsolationResult
from drill.engine.runs import run_info
from drill.engine.trace import Trace
from drill.report.isolation import isolation_fields

REPO = Path(__file__).resolve().parents[2]
PAYMENT = REPO / "labs" / "payment-dr"
INVENTORY = PAYMENT / "inventory"

BOOK = f"""\
apiVersion: drill/v1
name: iso-unit
inventory: {INVENTORY}
steps:
  - name: wait
    kind: pause
    duration: 0s
{{extra}}
"""


def drill(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "drill", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def write_book(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "book.yml"
    path.write_text(BOOK.replace("{extra}", extra))
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (f"isolate: {{lab: {PAYMENT}, for: 10s}}", "isolate: no site to cut off"),
        (f"evacuate: moon\nisolate: {{lab: {PAYMENT}, for: 10s}}", "no node of lab payment-dr"),
        (f"isolate: {{lab: {PAYMENT}, site: dc1, for: 0s}}", "must be longer than 0"),
        (
            f"isolate: {{lab: {PAYMENT}, site: dc1, for: 5s, interval: 1s, timeout: 2s}}",
            "timeout must not be longer than interval",
        ),
        (
            f"isolate: {{lab: {PAYMENT}, site: dc1, for: 5s, interval: 3s}}",
            "interval must be at most half of 'for'",
        ),
        (
            f"isolate: {{lab: {PAYMENT}, site: dc1, for: 5s, vantage: {{nosuch: local}}}}",
            "isolate.vantage: unknown host 'nosuch'",
        ),
        ("isolate: {lab: /nonexistent/lab, site: dc1, for: 5s}", "isolate: lab"),
        ("isolate: {site: dc1, for: 5s}", "lab"),
    ],
)
def test_bad_isolate_is_one_located_line_exit_2(tmp_path: Path, extra: str, message: str) -> None:
    book = write_book(tmp_path, extra)
    done = drill("validate", str(book), state=tmp_path / "state")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{book}:" in done.stderr


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        (None, "no flow catalog"),
        ("missing.json", "cannot read file"),
        ("bad.json", "bad JSON"),
    ],
)
def test_a_missing_or_bad_catalog_stops_the_run_before_any_device(
    tmp_path: Path, catalog: str | None, message: str
) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    flows = f"\nflows: {{catalog: {catalog}}}" if catalog else ""
    book = write_book(tmp_path, f"evacuate: dc1{flows}\nisolate: {{lab: {PAYMENT}, for: 5s}}")
    done = drill("run", str(book), "--yes", state=tmp_path / "state")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    # refused before a run began: no run directory, so nothing was touched
    assert not list((tmp_path / "state").glob("runs/*"))


def journal_with_cut(run_dir: Path, until: datetime, lifted: bool) -> None:
    run_dir.mkdir(parents=True)
    with Journal(run_dir / "journal.jsonl") as journal:
        journal.write(JournalHeader())
        journal.write(
            RunStartedEntry(
                run_id=run_dir.name,
                runbook="iso",
                runbook_path="iso.yml",
                sha256="0",
                mode="planned",
                dry_run=False,
                operator="t",
                change_id=None,
                run_dir=str(run_dir),
                hosts=[],
            )
        )
        journal.write(
            StateEntry(source=State.EXECUTING, to=State.POSTCHECKING, trigger=Trigger.STEPS_DONE)
        )
        journal.write(IsolationEntry(site="dc1", lab="/labs/x", action="cut", until=until))
        if lifted:
            journal.write(
                IsolationEntry(site="dc1", lab="/labs/x", action="lifted", by="lab timer")
            )


def test_status_of_a_dead_run_cut_off_until_the_future(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    journal_with_cut(run_dir, datetime.now(UTC) + timedelta(seconds=40), lifted=False)
    info = run_info(run_dir)
    assert info.state == "dead in postchecking"
    assert "site dc1 is cut off until" in info.isolation
    assert "the lab lifts it by itself" in info.isolation
    trace = Trace.read(run_dir)
    assert trace.isolation_open is not None and trace.isolation_open.site == "dc1"


def test_status_after_the_lab_timer(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r2"
    journal_with_cut(run_dir, datetime.now(UTC) - timedelta(seconds=5), lifted=False)
    assert "the lab's own timer has lifted it" in run_info(run_dir).isolation


def test_a_lifted_cut_is_not_mentioned(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r3"
    journal_with_cut(run_dir, datetime.now(UTC) + timedelta(seconds=40), lifted=True)
    assert run_info(run_dir).isolation == ""
    assert Trace.read(run_dir).isolation_open is None


def test_report_isolation_section() -> None:
    name = "auth@dc2 -> settlement@dc1 tcp/8300"
    flow = FlowOutcome(
        flow=name, tier="required", status="broken",
        fails_drill=True, headline=f"{name}: 100% failed during isolation",
        method="tcp", host="dc2-srv", vantage="lab:x:dc2-srv", source="192.0.2.32",
        target="192.0.2.27", port=8300, target_note="", before=FlowWindow(3, 0),
        during=FlowWindow(15, 15, {"timed out": 15}), after=FlowWindow(2, 0), recovered_s=0.4,
        evidence={"records": 50},
    )  # fmt: skip
    result = IsolationResult(site="dc1", lab="x", catalog="c.json", for_s=15.0, flows=[flow])
    assert result.failed
    fields = isolation_fields(result)
    assert fields is not None
    assert fields["verdict"] == "fail"
    assert fields["hidden_dependencies"] == ["auth@dc2 -> settlement@dc1 tcp/8300"]
    assert fields["flows"][0]["during"] == {
        "attempts": 15, "failed": 15, "reasons": {"timed out": 15}, "failed_pct": 100.0,
    }  # fmt: skip
    json.dumps(fields, allow_nan=False)
    assert isolation_fields(None) is None


def test_only_lab_nodes_get_a_lab_vantage_point() -> None:
    """An inventory host that is no node of the lab cannot run probes there: its flows are
    listed as not probed (and warned about at preflight), not failed mid-drill."""
    from drill.engine.isolation import flow_plan, setup
    from drill.runbook.model import IsolateSpec

    spec = IsolateSpec.model_validate({"lab": str(PAYMENT), "for": "10s"})
    where = setup(spec, "dc1", REPO, REPO / "runbooks" / "payment" / "catalog.json")
    on_lab = flow_plan(where, {"dc2-srv": ["192.0.2.32"]})
    assert any(p.host == "dc2-srv" for p in on_lab.probes)
    assert len(on_lab.catalog_sha256) == 64
    stranger = flow_plan(where, {"stranger": ["192.0.2.32"]})
    assert not any(p.host == "stranger" for p in stranger.probes)
    assert any(u.reason == "no vantage point for host stranger" for u in stranger.unprobed)
