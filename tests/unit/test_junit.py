"""JUnit XML: one case per step and host, parsed back with xml.etree."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from drill.engine.records import HostResult, Phase, RestoreResult, StepRecord, StepStatus
from drill.report.example import example_record
from drill.report.junit import render_junit, write_junit


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def test_one_case_per_step_and_host_plus_restore() -> None:
    record = example_record()
    root = parse(render_junit(record))
    expected = {
        (f"{step.phase.value}.{step.name}", host) for step in record.steps for host in step.hosts
    }
    expected |= {("restore.snapshot", host) for host in record.restore}
    assert set(cases(root)) == expected
    assert len(list(root.iter("testcase"))) == len(expected)


def test_counts_match_the_cases() -> None:
    root = parse(render_junit(example_record()))
    suite = root.find("testsuite")
    assert suite is not None
    testcases = list(suite.iter("testcase"))
    for element in (root, suite):
        assert element.get("tests") == str(len(testcases))
        assert element.get("failures") == str(sum(c.find("failure") is not None for c in testcases))
        assert element.get("skipped") == str(sum(c.find("skipped") is not None for c in testcases))
        assert element.get("errors") == "0"
    assert suite.get("failures") == "3" and suite.get("skipped") == "1"
    assert suite.get("time") == "41.877"
    assert suite.get("timestamp") == "2026-11-24T16:15:00.123Z"


def test_failure_carries_the_host_error() -> None:
    by_key = cases(parse(render_junit(example_record())))
    failure = by_key[("step.traffic-via-dc2", "r2")].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("timed out after 30s")
    assert "is_up is False" in (failure.text or "")
    assert by_key[("step.traffic-via-dc2", "r2")].get("time") == "30.000"
    assert by_key[("precheck.bgp-sessions-up", "r1")].find("failure") is None


def test_skipped_and_interrupted_steps() -> None:
    record = example_record()
    record.steps.append(
        StepRecord(
            name="wait-for-ops",
            kind="approval",
            phase=Phase.STEP,
            status=StepStatus.INTERRUPTED,
            message="Ctrl-C",
        )
    )
    root = parse(render_junit(record))
    by_key = cases(root)
    skipped = by_key[("postcheck.vrrp-dc2-master", "r2")].find("skipped")
    assert skipped is not None and skipped.get("message") == "not reached: an earlier step failed"
    error = by_key[("step.wait-for-ops", "local")].find("error")
    assert error is not None and error.get("message") == "Ctrl-C"
    assert root.get("errors") == "1"


def test_a_step_failed_as_a_whole_fails_each_of_its_hosts() -> None:
    record = example_record()
    record.steps = [
        StepRecord(
            name="converge",
            kind="wait_until",
            phase=Phase.STEP,
            status=StepStatus.FAILED,
            message="timeout after 60s\nlast value: 3 peers",
            hosts={"r1": HostResult(), "r2": HostResult()},
        ),
        StepRecord(name="hostless", kind="command", phase=Phase.STEP, status=StepStatus.FAILED),
    ]
    record.restore = {}
    by_key = cases(parse(render_junit(record)))
    for host in ("r1", "r2"):
        failure = by_key[("step.converge", host)].find("failure")
        assert failure is not None
        assert failure.get("message") == "timeout after 60s"
        assert "last value: 3 peers" in (failure.text or "")
    assert by_key[("step.hostless", "local")].find("failure") is not None


def test_restore_not_exact_is_a_failure_with_the_masked_diff() -> None:
    by_key = cases(parse(render_junit(example_record())))
    assert by_key[("restore.snapshot", "r1")].find("failure") is None
    failure = by_key[("restore.snapshot", "r2")].find("failure")
    assert failure is not None
    assert "password <redacted>" in (failure.text or "")
    assert "s3cret-peer" not in (failure.text or "")


def test_secrets_masked_and_control_characters_stripped() -> None:
    record = example_record()
    record.restore = {"r1": RestoreResult(exact=True)}
    record.steps[2].hosts["r2"].error = "\x1b[31mlogin Lab-Pw-77 refused\x00\x07"
    text = render_junit(record, secrets=["Lab-Pw-77"])
    root = parse(text)  # would raise on a NUL or ESC
    assert "Lab-Pw-77" not in text
    failure = cases(root)[("step.traffic-via-dc2", "r2")].find("failure")
    assert failure is not None and failure.text == "[31mlogin <redacted> refused"


def test_properties_describe_the_run() -> None:
    suite = parse(render_junit(example_record())).find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["outcome"] == "rolled_back"
    assert props["exit_code"] == "1"
    assert props["rto_measured_s"] == "0.55"
    assert props["change_id"] == "CHG-2026-1142"


@pytest.mark.parametrize(("given", "written"), [("run", "run/junit.xml"), ("ci.xml", "ci.xml")])
def test_write_junit(tmp_path: Path, given: str, written: str) -> None:
    target = write_junit(example_record(), tmp_path / given)
    assert target == tmp_path / written
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
