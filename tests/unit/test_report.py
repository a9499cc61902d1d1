"""report.json (build/write), the facts every format shares, and the console observer."""

from __future__ import annotations

import io
import json
import os
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

import drill
from drill.engine.events import (
    EventBus,
    HostDone,
    Note,
    RestoreChecked,
    RunEnded,
    SnapshotTaken,
    StateChanged,
    StepEnded,
    StepStarted,
)
from drill.engine.machine import State
from drill.engine.records import (
    HostResult,
    Outcome,
    Phase,
    ProbeResult,
    RestoreResult,
    RunRecord,
    StepRecord,
)
from drill.errors import ExitCode
from drill.report.console import ConsoleObserver, json_summary
from drill.report.example import example_record
from drill.report.facts import exit_code_for, iso_utc, measured_rto_s, rto_met
from drill.report.junit import render_junit
from drill.report.report import SCHEMA_VERSION, build_report, render_report, write_report

DOCS = Path(__file__).resolve().parents[2] / "docs" / "report.md"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

TOP_KEYS = [
    "schema_version",
    "tool_version",
    "run_id",
    "operator",
    "change_id",
    "runbook",
    "mode",
    "dry_run",
    "outcome",
    "exit_code",
    "started",
    "ended",
    "duration_s",
    "steps",
    "restore",
    "probes",
    "rto",
    "host_key_policy",
    "isolation",
    "notes",
]


def minimal_record(**changes: Any) -> RunRecord:
    record = RunRecord(
        run_id="r-1",
        runbook_name="rb",
        runbook_path="rb.yml",
        runbook_sha256="0" * 64,
        mode="planned",
        dry_run=False,
        operator="ops",
        change_id=None,
        started=datetime(2026, 11, 24, 16, 0, 0, tzinfo=UTC),
    )
    return replace(record, **changes)


def service(name: str, gap_ms: float, error: str | None = None) -> ProbeResult:
    return ProbeResult(
        name=name, kind="service", rate=20, sent=100, lost=1, max_gap_ms=gap_ms, error=error
    )


def packet(name: str, gap_ms: float) -> ProbeResult:
    return ProbeResult(name=name, kind="packet", rate=1000, sent=100, lost=1, max_gap_ms=gap_ms)


# --- report.json ----------------------------------------------------------------------


def test_top_level_keys_in_documented_order() -> None:
    report = build_report(example_record())
    assert list(report) == TOP_KEYS
    assert report["schema_version"] == SCHEMA_VERSION == 1
    assert report["tool_version"] == drill.__version__


def test_step_probe_and_restore_shapes() -> None:
    report = build_report(example_record())
    step = report["steps"][2]
    assert list(step) == [
        "name", "kind", "phase", "status", "started", "ended", "duration_s", "message", "hosts"
    ]  # fmt: skip
    assert step["phase"] == "step" and step["status"] == "failed"
    assert list(step["hosts"]["r2"]) == ["changed", "diff", "failed", "error"]
    assert step["hosts"]["r2"]["failed"] is True
    probe = report["probes"][0]
    assert list(probe)[:8] == [
        "name", "kind", "rate", "sent", "lost", "max_gap_ms", "by_step", "backends"
    ]  # fmt: skip
    assert report["restore"]["r2"]["exact"] is False
    assert report["restore"]["r1"] == {"exact": True, "diff": ""}


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.SUCCEEDED, 0),
        (Outcome.DRY_RUN, 0),
        (Outcome.ROLLED_BACK, 1),
        (Outcome.DRY_RUN_FAILED, 1),
        (Outcome.ROLLBACK_FAILED, 3),
        (Outcome.STOPPED, 3),
        (Outcome.PRECHECK_FAILED, 4),
        (None, 3),
    ],
)
def test_outcome_and_exit_code(outcome: Outcome | None, code: int) -> None:
    report = build_report(minimal_record(outcome=outcome))
    assert report["outcome"] == (outcome.value if outcome else None)
    assert report["exit_code"] == code == exit_code_for(outcome)


def test_every_outcome_has_an_exit_code() -> None:
    assert {exit_code_for(o) for o in Outcome} <= set(ExitCode)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 24, 16, 15, 0, 123456, tzinfo=UTC), "2026-11-24T16:15:00.123Z"),
        (
            datetime(2026, 11, 24, 17, 15, 0, 999999, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-24T16:15:00.999Z",
        ),
        (datetime(2026, 11, 24, 16, 15), "2026-11-24T16:15:00.000Z"),  # naive is UTC
        (None, None),
    ],
)
def test_timestamps_are_utc_with_milliseconds(moment: datetime | None, expected: str) -> None:
    assert iso_utc(moment) == expected


def test_all_timestamps_in_the_report_are_iso_utc() -> None:
    report = build_report(example_record())
    stamps = [report["started"], report["ended"]]
    stamps += [s[k] for s in report["steps"] for k in ("started", "ended") if s[k]]
    stamps += [o[k] for p in report["probes"] for o in p["outages"] for k in ("start", "end")]
    assert len(stamps) > 10
    assert all(ISO_Z.match(stamp) for stamp in stamps), stamps


def test_unfinished_run_has_null_end_duration_and_outcome() -> None:
    report = build_report(minimal_record())
    assert report["ended"] is None and report["duration_s"] is None
    assert report["outcome"] is None


def test_durations() -> None:
    start = datetime(2026, 11, 24, 16, 0, 0, tzinfo=UTC)
    step = StepRecord(
        name="s",
        kind="pause",
        phase=Phase.STEP,
        started=start,
        ended=start + timedelta(seconds=1, microseconds=234567),
    )
    report = build_report(minimal_record(ended=start + timedelta(seconds=90.5), steps=[step]))
    assert report["duration_s"] == 90.5
    assert report["steps"][0]["duration_s"] == 1.235


def test_hosts_and_restore_sorted_by_name_probe_steps_in_order() -> None:
    record = example_record()
    record.steps[0].hosts = {"r9": HostResult(), "r10": HostResult(), "a1": HostResult()}
    record.restore = {"r2": RestoreResult(exact=True), "r1": RestoreResult(exact=True)}
    report = build_report(record)
    assert list(report["steps"][0]["hosts"]) == ["a1", "r10", "r9"]
    assert list(report["restore"]) == ["r1", "r2"]
    assert list(report["probes"][0]["by_step"]) == list(record.probes[0].by_step)


def test_empty_restore_when_no_rollback_ran() -> None:
    assert build_report(minimal_record())["restore"] == {}


# --- RTO --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probes", "target", "measured", "met"),
    [
        ([], 5.0, None, None),
        ([packet("p", 9000.0)], 5.0, None, None),  # packet loss is not a service outage
        ([service("a", 1200.0), service("b", 3400.0)], 5.0, 3.4, True),
        ([service("a", 6000.0), packet("p", 100.0)], 5.0, 6.0, False),
        ([service("a", 5000.0)], 5.0, 5.0, True),
        ([service("a", 1000.0)], None, 1.0, None),
        ([service("a", 1000.0, error="curl died")], 5.0, 1.0, None),  # incomplete: unknown
        ([service("a", 7000.0, error="curl died")], 5.0, 7.0, False),  # already over
    ],
)
def test_rto_measured_from_service_probes_only(
    probes: list[ProbeResult], target: float | None, measured: float | None, met: bool | None
) -> None:
    record = minimal_record(probes=probes, rto_target_s=target)
    assert measured_rto_s(record) == measured
    assert rto_met(record) is met
    rto = build_report(record)["rto"]
    assert {k: rto[k] for k in ("target_s", "measured_s", "met")} == {
        "target_s": target,
        "measured_s": measured,
        "met": met,
    }
    assert (rto["bound_s"], rto["ratio_to_bound"]) == (None, None)  # no bound declared


# --- masking ----------------------------------------------------------------------------


def test_every_string_is_masked_as_last_line_of_defence() -> None:
    pw = "Lab-Pw-77"
    record = example_record()
    record.steps[1].hosts["r1"].diff = "+ neighbor 198.51.100.2 password peerSecret\n"
    record.steps[2].hosts["r2"].error = f"auth failed with {pw}"
    record.steps[2].message = f"login {pw} refused"
    record.probes[1].error = f"GET https://ops:{pw}@192.0.2.10/ failed"
    record.notes.append(f"left changed: enable secret {pw}")
    record.restore[f"host-{pw}"] = RestoreResult(exact=True)
    text = render_report(record, secrets=[pw])
    assert pw not in text
    assert "peerSecret" not in text
    assert "password <redacted>" in text
    assert "host-<redacted>" in text


def test_report_is_strict_json_even_with_nan() -> None:
    record = minimal_record(probes=[packet("p", float("nan"))])
    data = json.loads(render_report(record))
    assert data["probes"][0]["max_gap_ms"] is None


# --- writing ----------------------------------------------------------------------------


def test_write_report_into_a_directory(tmp_path: Path) -> None:
    record = example_record()
    target = write_report(record, tmp_path / "run")
    assert target == tmp_path / "run" / "report.json"
    assert json.loads(target.read_text()) == build_report(record)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_report_to_a_json_path_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "evidence.json"
    target.write_text("old")
    assert write_report(minimal_record(), target) == target
    assert json.loads(target.read_text())["run_id"] == "r-1"


def test_a_failed_write_keeps_the_old_report_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text('{"old": true}')

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_report(minimal_record(), tmp_path)
    assert target.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["report.json"]


def test_docs_example_matches_the_code() -> None:
    """docs/report.md shows the report of drill.report.example; regenerate it with
    `python -m drill.report.example > /tmp/x` when a field changes."""
    text = DOCS.read_text()
    match = re.search(
        r"<!-- example:begin -->\n```json\n(.*?)```\n<!-- example:end -->", text, re.S
    )
    assert match, "docs/report.md lost its example block"
    assert json.loads(match.group(1)) == build_report(example_record())


def test_docs_describe_every_field() -> None:
    text = DOCS.read_text()
    report = build_report(example_record())
    fields = set(report) | set(report["steps"][0]) | set(report["probes"][0])
    fields |= set(report["rto"]) | set(report["steps"][0]["hosts"]["r1"])
    missing = sorted(f for f in fields if f"`{f}`" not in text)
    assert not missing, f"undocumented fields: {missing}"
    for outcome in Outcome:
        assert f"`{outcome.value}`" in text
    for code in ExitCode:
        assert f"| {int(code)} |" in text


# --- console ----------------------------------------------------------------------------


def recording_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False, color_system=None), buffer


def test_console_prints_steps_hosts_and_full_failures() -> None:
    console, out = recording_console()
    observer = ConsoleObserver(console)
    record = example_record()
    step = record.steps[2]
    step.hosts["r2"].error = "line one of the error\nline two [bold]not markup[/bold]"
    observer.step_started(step)
    observer.host_result(step, "r2", step.hosts["r2"])
    observer.step_ended(step)
    text = out.getvalue()
    assert "traffic-via-dc2" in text and "FAILED" in text
    assert "line one of the error" in text
    assert "line two [bold]not markup[/bold]" in text  # device text is never rich markup
    assert "condition not met within 30s" in text
    assert "30.000 s" in text


def test_console_shows_diffs_for_config_steps_only() -> None:
    console, out = recording_console()
    observer = ConsoleObserver(console)
    config_step = example_record().steps[1]
    observer.host_result(config_step, "r1", config_step.hosts["r1"])
    assert "route-map GSHUT out" in out.getvalue()
    console, out = recording_console()
    check = StepRecord(name="c", kind="check", phase=Phase.STEP)
    ConsoleObserver(console).host_result(check, "r1", HostResult(diff="+ hidden line"))
    assert "hidden line" not in out.getvalue()


def test_console_masks_secrets_everywhere() -> None:
    console, out = recording_console()
    observer = ConsoleObserver(console, secrets=["Lab-Pw-77"])
    step = StepRecord(name="cfg", kind="config", phase=Phase.STEP)
    result = HostResult(
        changed=True, diff="+ neighbor 198.51.100.1 password peerSecret", failed=True,
        error="login Lab-Pw-77 refused",
    )  # fmt: skip
    observer.host_result(step, "r1", result)
    observer.note("enable secret Lab-Pw-77 left on r1")
    record = example_record()
    record.notes.append("Lab-Pw-77")
    observer.summary(record)
    text = out.getvalue()
    assert "Lab-Pw-77" not in text and "peerSecret" not in text
    assert "s3cret-peer" not in text and "new-peer-pw" not in text  # restore diff
    assert "<redacted>" in text


def test_summary_states_outcome_rto_probes_steps_restore_and_notes() -> None:
    console, out = recording_console()
    ConsoleObserver(console).summary(example_record())
    text = out.getvalue()
    assert "FAILED, ROLLED BACK" in text and "exit code 1" in text
    assert "target 5.000 s, measured 0.550 s" in text and "met" in text
    assert "ping-vip" in text and "409 ms" in text and "550 ms" in text
    assert "restore-matches-snapshot" in text and "0.800 s" in text
    assert "r2  NOT EXACT" in text and "r1  exact" in text
    assert "!!! 1 host(s) not restored exactly: r2" in text
    assert "!!! r2: running configuration differs" in text


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        (Outcome.SUCCEEDED, "SUCCEEDED"),
        (Outcome.ROLLBACK_FAILED, "OPERATOR ACTION NEEDED"),
        (Outcome.STOPPED, "OPERATOR ACTION NEEDED"),
        (Outcome.PRECHECK_FAILED, "nothing was changed"),
        (Outcome.DRY_RUN, "DRY-RUN OK"),
        (None, "UNFINISHED"),
    ],
)
def test_summary_outcome_words(outcome: Outcome | None, words: str) -> None:
    console, out = recording_console()
    ConsoleObserver(console).summary(minimal_record(outcome=outcome))
    assert words in out.getvalue()
    assert f"exit code {int(exit_code_for(outcome))}" in out.getvalue()


def test_summary_rto_missed_and_no_service_probe() -> None:
    console, out = recording_console()
    ConsoleObserver(console).summary(
        minimal_record(probes=[service("web", 6500.0)], rto_target_s=5.0)
    )
    assert "measured 6.500 s  MISSED" in out.getvalue()
    console, out = recording_console()
    ConsoleObserver(console).summary(minimal_record(probes=[packet("p", 10.0)]))
    assert "no service probe" in out.getvalue()


def test_host_results_from_threads_do_not_interleave() -> None:
    console, out = recording_console()
    observer = ConsoleObserver(console)
    step = StepRecord(name="cfg", kind="check", phase=Phase.STEP)
    errors = {f"r{i}": "\n".join(f"r{i} detail {n}" for n in range(20)) for i in range(8)}
    threads = [
        threading.Thread(
            target=observer.host_result, args=(step, host, HostResult(failed=True, error=error))
        )
        for host, error in errors.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = [line.strip() for line in out.getvalue().splitlines()]
    for host in errors:
        start = lines.index(f"{host}  FAILED")
        assert lines[start + 1 : start + 21] == [f"{host} detail {n}" for n in range(20)]


def test_state_changes_and_notes_are_printed() -> None:
    console, out = recording_console()
    observer = ConsoleObserver(console)
    observer.state_changed("running", "rolling_back")
    observer.note("r1 still drained")
    assert "running -> rolling_back" in out.getvalue()
    assert "NOTE: r1 still drained" in out.getvalue()


def test_json_summary_is_small_json_and_masked() -> None:
    record = example_record()
    record.notes.append("pw Lab-Pw-77")
    summary = json_summary(record, secrets=["Lab-Pw-77"])
    text = json.dumps(summary)
    assert "Lab-Pw-77" not in text
    assert summary["outcome"] == "rolled_back" and summary["exit_code"] == 1
    assert [s["name"] for s in summary["failed_steps"]] == [
        "traffic-via-dc2",
        "restore-matches-snapshot",
    ]
    assert summary["restore"] == {"r1": True, "r2": False}
    assert summary["rto"]["measured_s"] == 0.55


def test_observer_plugs_into_the_engine_event_bus() -> None:
    console, out = recording_console()
    bus = EventBus([ConsoleObserver(console, secrets=["Lab-Pw-77"])])
    record = example_record()
    step = record.steps[2]
    bus.emit(StateChanged("prechecks", "running", "prechecks_passed"))
    bus.emit(StepStarted("step/traffic-via-dc2", step, ["r2"]))
    bus.emit(HostDone("step/traffic-via-dc2", step, "r2", step.hosts["r2"]))
    bus.emit(StepEnded("step/traffic-via-dc2", step))
    bus.emit(SnapshotTaken("r3", "/run/x", error="timeout Lab-Pw-77"))
    bus.emit(RestoreChecked("r2", record.restore["r2"]))
    bus.emit(Note("r2 left changed"))
    bus.emit(RunEnded(record, State.SUCCEEDED))  # the CLI prints the summary itself
    text = out.getvalue()
    assert "prechecks -> running" in text
    assert "traffic-via-dc2 (wait_until)" in text and "traffic-via-dc2 FAILED" in text
    assert "r2  FAILED" in text
    assert "NOTE: r3: no snapshot before the drill: timeout <redacted>" in text
    assert "r2  NOT EXACT" in text and "password <redacted>" in text
    assert "NOTE: r2 left changed" in text
    assert "Outcome:" not in text


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@settings(max_examples=60, deadline=None)
@given(
    secret=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%&*+", min_size=5, max_size=20),
    where=st.sampled_from(["error", "message", "diff", "note", "probe", "host", "step", "change"]),
)
def test_a_literal_secret_never_reaches_any_output(secret: str, where: str) -> None:
    # A "secret" that is one of the summary's own words (e.g. ERROR) proves nothing.
    baseline, plain = recording_console()
    ConsoleObserver(baseline, secrets=[]).summary(example_record())
    assume(secret not in plain.getvalue())
    record = example_record()
    text = f"device said: {secret} (again {secret})"
    if where == "error":
        record.steps[2].hosts["r2"].error = text
    elif where == "message":
        record.steps[2].message = text
    elif where == "diff":
        record.steps[1].hosts["r1"].diff = text
    elif where == "note":
        record.notes.append(text)
    elif where == "probe":
        record.probes[0].error = text
    elif where == "host":
        record.steps[0].hosts[secret] = HostResult(failed=True, error=text)
    elif where == "step":
        record.steps[0].name = secret
        record.probes[0].by_step[secret] = {"lost": 1, "max_gap_ms": 1.0}
    else:
        record.change_id = secret
    outputs = [
        *_strings(json.loads(render_report(record, secrets=[secret]))),
        *_strings(json_summary(record, secrets=[secret])),
        render_junit(record, secrets=[secret]),
    ]
    console, out = recording_console()
    ConsoleObserver(console, secrets=[secret]).summary(record)
    outputs.append(out.getvalue())
    assert not [s for s in outputs if secret in s]
