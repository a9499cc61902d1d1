"""report.html from recorded runs: structure, escaping of hostile text (also inside the
SVG), masking, no network reference, the size bound, the probes' bins, and regeneration
from the journal of a run whose process died."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from drill.engine.events import (
    CommitStarted,
    HostDone,
    Note,
    RunStarted,
    StateChanged,
    StepEnded,
    StepKey,
    StepStarted,
)
from drill.engine.journal import Journal
from drill.engine.machine import State, Trigger
from drill.engine.records import HostResult, Phase, StepRecord, StepStatus
from drill.probes.bins import BinsHeader, bins_path, read_all, read_bins, write_header
from drill.probes.ledger import Ledger
from drill.report.example import T0, example_record
from drill.report.html import render_html
from drill.report.html_example import synthetic_run, write_bins
from drill.report.html_source import html_target, record_from_journal, report_data
from drill.report.report import build_report, write_html_reports

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
HOSTILE = SCRIPT + IMG


class Tags(HTMLParser):
    """Every start tag and attribute as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def svg_of(html: str) -> str:
    match = re.search(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert match is not None
    return match.group(0)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """A 60 s run with two probes at 1,000/s, rendered once for the module."""
    run_dir = tmp_path_factory.mktemp("run")
    report = synthetic_run(run_dir, seconds=60.0, rate=1000.0)
    html = render_html(report, read_all(run_dir / "probes"))
    return run_dir, report, html


# --- structure ------------------------------------------------------------------------


def test_top_states_what_an_auditor_needs(recorded: tuple[Path, dict[str, Any], str]) -> None:
    _, report, html = recorded
    facts = re.search(r'<table class="facts" id="facts">(.*?)</table>', html, re.DOTALL)
    assert facts is not None
    text = facts.group(1)
    for value in (
        report["runbook"]["name"],
        report["runbook"]["sha256"],
        report["mode"],
        report["operator"],
        report["change_id"],
        report["started"],
        report["ended"],
        "rolled_back",
        "target 5 s",
    ):
        assert value in text, value
    verdict = re.search(r'id="verdict">(.*?)</p>', html, re.DOTALL)
    assert verdict is not None
    assert "failed at step 3 &#39;traffic-via-dc2&#39; and was rolled back" in verdict.group(1)


def test_approvals_say_who_answered_and_when(tmp_path: Path) -> None:
    record = example_record()
    gate = StepRecord("go-ahead", "approval", Phase.STEP, StepStatus.OK, started=T0, ended=T0)
    gate.message = "approved by --yes"
    record.steps.insert(1, gate)
    html = render_html(build_report(record))
    facts = html[html.index('id="facts"') : html.index("</table>")]
    assert "go-ahead: alice, with --yes (no prompt), 2026-11-24T16:15:00.123Z" in facts


def test_sections_in_order_and_one_band_per_step_that_ran(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    _, report, html = recorded
    ids = [a.get("id") for tag, a in tags_of(html) if tag == "section"]
    assert ids == ["timeline", "steps", "restore", "probes", "notes"]
    svg = svg_of(html)
    bands = re.findall(r'<g id="step-band-(\d+)"', svg)
    ran = [n for n, s in enumerate(report["steps"], start=1) if s["started"] is not None]
    assert [int(b) for b in bands] == ran
    assert len(ran) == len(report["steps"]) - 1  # the skipped postcheck has no band
    # every step, with its hosts and diffs, is in the table
    rows = re.findall(r'<tr class="step-row" id="step-(\d+)">', html)
    assert [int(r) for r in rows] == list(range(1, len(report["steps"]) + 1))
    assert "+ neighbor 198.51.100.2 route-map GSHUT out" in html
    assert "r2: running configuration differs from the pre-drill snapshot" in html


def test_probe_rows_and_chart_rows_per_probe(recorded: tuple[Path, dict[str, Any], str]) -> None:
    _, report, html = recorded
    probes = html[html.index('id="probes"') : html.index('id="notes"')]
    for probe in report["probes"]:
        assert f"<b>{probe['name']}</b>" in probes
    # two probes, two rows each (loss, round-trip time): four axes plus the label lane
    assert len(re.findall(r'<g id="axes_\d+"', svg_of(html))) == 5


def test_no_network_reference_and_no_script(recorded: tuple[Path, dict[str, Any], str]) -> None:
    _, _, html = recorded
    for tag, attrs in tags_of(html):
        assert tag not in ("script", "link", "iframe", "img", "object", "embed"), tag
        for name, value in attrs.items():
            if name.endswith(("src", "href")) and value:
                assert value.startswith("#"), (tag, name, value)
    assert not re.search(r"url\((?!#)|@import|<!DOCTYPE svg|rdf:resource", html)  # url(#id): local


def test_size_bound_for_60s_two_probes_at_1000(
    recorded: tuple[Path, dict[str, Any], str],
) -> None:
    run_dir, _, html = recorded
    rows = sum(1 for _ in (run_dir / "probes" / "ping-vip.bins.jsonl").open()) - 1
    assert 6000 <= rows <= 6001  # 60 s of 10 ms bins (T0 is not on a bin edge): all drawn
    assert len(html.encode()) < 2_000_000


def test_same_run_same_page(recorded: tuple[Path, dict[str, Any], str]) -> None:
    run_dir, report, html = recorded
    assert render_html(report, read_all(run_dir / "probes")) == html


# --- hostile text ---------------------------------------------------------------------


def hostile_run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    record = example_record()
    record.steps[1].name = "drain " + HOSTILE
    record.steps[1].hosts["r1"].diff = "+ description " + HOSTILE + "\n"
    record.probes[0].name = "ping " + HOSTILE
    record.notes.append("note " + HOSTILE)
    report = build_report(record)
    write_bins(tmp_path / "probes", "ping " + HOSTILE, 42.0, 100.0)
    return tmp_path, report


def test_hostile_names_and_diffs_are_inert(tmp_path: Path) -> None:
    run_dir, report = hostile_run(tmp_path)
    html = render_html(report, read_all(run_dir / "probes"))
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert [t for t, _ in tags_of(html) if t in ("script", "img")] == []
    assert not any("onerror" in attrs for _, attrs in tags_of(html))
    # shown as text, where a reader expects it
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;"
    assert "drain " + escaped in html
    assert "+ description " + escaped in html
    assert "<b>ping " + escaped + "</b>" in html
    # inside the SVG the names are glyph outlines: no text of them at all, escaped or not
    svg = svg_of(html)
    assert "alert" not in svg and "onerror" not in svg
    assert len(re.findall(r'<g id="step-band-\d+"', svg)) == 5


def test_matplotlib_escapes_what_it_would_write_as_svg_text() -> None:
    """Were text ever written as SVG text or comments (another fonttype, a newer
    matplotlib), its escaping still holds: checked on matplotlib's own output."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    for fonttype in ("none", "path"):
        fig = Figure()
        fig.add_subplot().set_title("x --> " + HOSTILE)
        out = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": fonttype}):
            fig.savefig(out, format="svg")
        svg = out.getvalue()
        assert "<script" not in svg and "<img" not in svg


# --- secrets --------------------------------------------------------------------------


def test_secrets_are_masked(tmp_path: Path) -> None:
    record = example_record()
    record.steps[1].hosts["r1"].diff = "+ neighbor 198.51.100.2 password Sup3rS3cretPw\n"
    record.steps[2].hosts["r2"].error = "device said: login failed for Lit3ralS3cret"
    record.notes.append("probe key Lit3ralS3cret")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_bins(run_dir / "probes", "ping-Lit3ralS3cret", 5.0, 100.0)
    written = write_html_reports(record, run_dir, tmp_path / "out", secrets=("Lit3ralS3cret",))
    assert [p.name for p in written] == ["report.html", "report.html"]
    for path in written:
        html = path.read_text()
        assert "Sup3rS3cretPw" not in html and "Lit3ralS3cret" not in html
        assert "password &lt;redacted&gt;" in html
        assert path.stat().st_mode & 0o777 == 0o644


def test_report_dir_given_as_a_json_file_gets_the_html_beside_it(tmp_path: Path) -> None:
    assert html_target(tmp_path / "drill.json") == tmp_path / "drill.html"
    written = write_html_reports(example_record(), tmp_path, tmp_path / "drill.json")
    assert written == [tmp_path / "report.html", tmp_path / "drill.html"]


# --- probe bins -----------------------------------------------------------------------


def test_ledger_feeds_bins_with_round_trip_times(tmp_path: Path) -> None:
    from drill.probes.bins import BinFile

    path = bins_path(tmp_path, "p")
    write_header(path, BinsHeader("p", "packet", 1000.0, 0.01))
    ledger = Ledger(interval=0.001, grace=1.0)
    bins = BinFile(path, 0.01)
    ledger.sink = bins.add
    for i in range(30):
        seq = ledger.record_send(100.0 + i * 0.001)
        if not 12 <= i < 18:  # six lost in the second bin
            ledger.answer(seq, 100.0 + i * 0.001 + 0.002)
    ledger.decide(now=float("inf"))
    bins.close()
    data = read_bins(path)
    assert data is not None and data.header.probe == "p"
    assert [(b.sent, b.lost) for b in data.bins] == [(10, 0), (10, 6), (10, 0)]
    assert data.bins[1].rtt_avg_ms == pytest.approx(2.0)
    assert data.bins[0].t == pytest.approx(100.0)


def test_unwritable_bins_never_stop_the_measurement(tmp_path: Path) -> None:
    from drill.probes import agent

    args = agent._parser().parse_args(
        ["packet", "--target", "192.0.2.1", "--rate", "10", "--bins", str(tmp_path / "no/x")]
    )

    class Agent:
        ledger = Ledger(interval=0.1, grace=1.0)

    assert agent._with_bins(Agent(), args) is None  # type: ignore[arg-type]
    assert Agent.ledger.sink is None


def test_torn_bins_file_is_read_up_to_the_tear(tmp_path: Path) -> None:
    path = write_bins(tmp_path, "p", 1.0, 1000.0)
    with path.open("a") as handle:
        handle.write("[1796102317.25,15,0,0.0")  # the agent was killed mid-line
    data = read_bins(path)
    assert data is not None and sum(b.sent for b in data.bins) == 1000
    (tmp_path / "x.bins.jsonl").write_text("not json\n")
    assert read_bins(tmp_path / "x.bins.jsonl") is None


# --- a run that died ------------------------------------------------------------------


def dead_run(tmp_path: Path) -> Path:
    """The journal the engine writes, up to a SIGKILL during the second step."""
    run_dir = tmp_path / "state" / "runs" / "20261124T161500Z-dc1-to-dc2-dead"
    run_dir.mkdir(parents=True)
    (run_dir / "runbook.yml").write_text("name: dc1-to-dc2\nrto: 30s\n")
    record = example_record()
    record.run_id, record.outcome, record.ended = run_dir.name, None, None
    journal = Journal(run_dir / "journal.jsonl")
    journal.notify(RunStarted(record, str(run_dir), ["r1", "r2"]))
    journal.notify(StateChanged(State.PENDING, State.EXECUTING, Trigger.START))
    check = StepRecord("bgp-up", "check", Phase.PRECHECK, started=T0)
    bgp_up = StepKey(phase=Phase.PRECHECK, index=1, name="bgp-up")
    journal.notify(StepStarted(bgp_up, check, ["r1"]))
    journal.notify(HostDone(bgp_up, check, "r1", HostResult()))
    check.status = StepStatus.OK
    journal.notify(StepEnded(bgp_up, check))
    drain = StepRecord("drain " + HOSTILE, "config", Phase.STEP, started=T0)
    drain_key = StepKey(phase=Phase.STEP, index=1, name="drain " + HOSTILE)
    journal.notify(StepStarted(drain_key, drain, ["r1"]))
    journal.notify(CommitStarted(drain_key, "r1"))
    journal.notify(Note("interrupted mid-commit"))
    journal.close()  # and nothing more: the process died here
    write_bins(run_dir / "probes", "ping-vip", 3.0, 1000.0)
    return run_dir


def test_record_from_the_journal_of_a_dead_run(tmp_path: Path) -> None:
    record = record_from_journal(dead_run(tmp_path))
    assert record.outcome is None and record.ended is None
    assert [(s.name, s.status) for s in record.steps] == [
        ("bgp-up", StepStatus.OK),
        ("drain " + HOSTILE, StepStatus.INTERRUPTED),
    ]
    assert record.rto_target_s == 30.0
    assert any(n.startswith("OPERATOR: r1 may be left changed") for n in record.notes)
    assert record.probes[0].sent == 3000 and record.probes[0].lost == 400


def test_drill_report_html_regenerates_a_dead_run(tmp_path: Path) -> None:
    run_dir = dead_run(tmp_path)
    assert not (run_dir / "report.json").exists()
    out = tmp_path / "out" / "dead.html"
    env = {"DRILL_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "drill", "report", run_dir.name, "--html", "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    html = out.read_text()
    assert "rebuilt from the journal: the run never finished" in html
    assert "NEVER FINISHED" in html and "drill resume " + run_dir.name in html
    assert 'class="leftover">OPERATOR: r1 may be left changed' in html
    assert "<script" not in html
    # one band per step that started, the interrupted one running to the end of the data
    assert re.findall(r'<g id="step-band-(\d+)"', svg_of(html)) == ["1", "2"]
    data, source = report_data(run_dir)
    assert source == "journal" and data["outcome"] is None and data["exit_code"] == 3
    assert data["probes"][0]["max_gap_ms"] is None  # not measured: never a made-up 0


def test_drill_report_prints_the_report_json_of_a_finished_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    report = synthetic_run(run_dir, seconds=5.0, rate=100.0)
    done = subprocess.run(
        [sys.executable, "-m", "drill", "report", str(run_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == report


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["report", "../../etc", "--html"], "not a run directory"),
        (["report", "no-such-run", "--html"], "no run 'no-such-run'"),
        (["report", "x", "-o", "y.html"], "-o/--output goes with --html"),
    ],
)
def test_bad_report_arguments_get_one_line(tmp_path: Path, argv: list[str], needle: str) -> None:
    env = {"DRILL_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "drill", *argv], capture_output=True, text=True, env=env,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode in (2, 5)
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_unreadable_report_json_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{torn")
    env = {"DRILL_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "drill", "report", str(tmp_path), "--html"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"{tmp_path / 'report.json'}:1:2: error: not JSON: ")
    assert len(done.stderr.splitlines()) == 1


def test_a_planted_fifo_as_report_json_is_refused_at_once(tmp_path: Path) -> None:
    """Opening a FIFO without O_NONBLOCK waits forever: one line, exit 2, no hang."""
    os.mkfifo(tmp_path / "report.json")
    (tmp_path / "journal.jsonl").write_text("")
    env = {"DRILL_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "drill", "report", str(tmp_path), "--html"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "not a regular file" in done.stderr and len(done.stderr.splitlines()) == 1


def test_isolation_section_names_the_dependency_and_escapes_flow_names() -> None:
    from drill.engine.records import FlowOutcome, FlowWindow, IsolationResult

    record = example_record()
    name = "auth@dc2 -> settlement@dc1 tcp/8300<script>"
    broken = FlowOutcome(
        flow=name, tier="required", status="broken", fails_drill=True,
        headline=f"{name}: 100% failed during isolation", method="tcp", host="dc2-srv",
        vantage="lab:x:dc2-srv", source="192.0.2.32", target="192.0.2.27", port=8300,
        target_note="", before=FlowWindow(3, 0), during=FlowWindow(15, 15),
        after=FlowWindow(2, 0), recovered_s=0.4, evidence={"records": 50},
    )  # fmt: skip
    record.isolation = IsolationResult(
        site="dc1", lab="labs/payment-dr", catalog="catalog.json", for_s=15.0, flows=[broken],
        unprobed=[{"flow": "routing@dc2 -> routing@dc1 udp/3784", "tier": "deferred",
                   "reason": "no probe for udp/3784"}],
    )  # fmt: skip
    html = render_html(build_report(record))
    ids = [a.get("id") for tag, a in tags_of(html) if tag == "section"]
    assert ids == ["timeline", "steps", "restore", "isolation", "probes", "notes"]
    section = html[html.index('id="isolation"') : html.index('id="probes"')]
    assert "Isolation rehearsal: dc1 cut off for 15 s" in section
    assert "auth@dc2 -&gt; settlement@dc1 tcp/8300&lt;script&gt;" in section
    assert "<script>" not in html
    assert "15/15 (100 %)" in section and "no probe for udp/3784" in section
