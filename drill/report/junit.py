"""JUnit XML for CI: one test case per step and host, so a failed drill shows up in the
same place as a failed build.

classname is ``PHASE.STEP`` and name the host (``local`` for steps that run on this
machine); a host that failed carries a ``<failure>`` with the error, a skipped step a
``<skipped/>``, an interrupted one an ``<error>``. Restore results follow as
``restore.snapshot`` cases, failed when the configuration after rollback is not exact.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from drill.engine.records import HostResult, RunRecord, StepRecord, StepStatus
from drill.report.facts import exit_code_for, iso_utc, measured_rto_s, seconds_between
from drill.report.files import resolve_target, write_atomic
from drill.secrets import mask_secrets

log = logging.getLogger(__name__)

JUNIT_NAME = "junit.xml"
LOCAL = "local"
RESTORE_CLASSNAME = "restore.snapshot"

# XML 1.0 forbids most control characters; device output (ANSI colours, NUL) has them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class _Verdict:
    tag: str | None  # None: passed; else "failure", "error" or "skipped"
    message: str = ""
    text: str = ""


@dataclass
class _Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0

    def add(self, verdict: _Verdict) -> None:
        self.tests += 1
        if verdict.tag == "failure":
            self.failures += 1
        elif verdict.tag == "error":
            self.errors += 1
        elif verdict.tag == "skipped":
            self.skipped += 1


class _Cleaner:
    """Masks secrets and strips what XML cannot carry, for every string written."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)

    def __call__(self, text: str | None) -> str:
        return _XML_INVALID.sub("", mask_secrets(text or "", self._secrets))


def build_junit(record: RunRecord, *, secrets: Iterable[str] = ()) -> ET.Element:
    """The ``<testsuites>`` tree for ``record``."""
    clean = _Cleaner(secrets)
    suites = ET.Element("testsuites", {"name": clean(f"drill {record.runbook_name}")})
    suite = ET.SubElement(suites, "testsuite", {"name": clean(record.runbook_name)})
    _properties(suite, record, clean)
    counts = _Counts()
    for step in record.steps:
        classname = clean(f"{step.phase.value}.{step.name}")
        duration = seconds_between(step.started, step.ended) or 0.0
        for host, result in _host_results(step):
            verdict = _verdict(step, result)
            counts.add(verdict)
            case = _case(suite, classname, clean(host), duration)
            _attach(case, verdict, clean)
            if result is not None and result.diff:
                ET.SubElement(case, "system-out").text = clean(result.diff)
    for host, restore in sorted(record.restore.items()):
        verdict = (
            _Verdict(None)
            if restore.exact
            else _Verdict(
                "failure",
                "configuration after rollback differs from the snapshot",
                restore.diff,
            )
        )
        counts.add(verdict)
        _attach(_case(suite, RESTORE_CLASSNAME, clean(host), 0.0), verdict, clean)
    duration_s = seconds_between(record.started, record.ended) or 0.0
    for element in (suites, suite):
        element.set("tests", str(counts.tests))
        element.set("failures", str(counts.failures))
        element.set("errors", str(counts.errors))
        element.set("skipped", str(counts.skipped))
        element.set("time", f"{duration_s:.3f}")
    suite.set("timestamp", iso_utc(record.started) or "")
    return suites


def render_junit(record: RunRecord, *, secrets: Iterable[str] = ()) -> str:
    tree = build_junit(record, secrets=secrets)
    ET.indent(tree)
    return ET.tostring(tree, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(record: RunRecord, path: Path, *, secrets: Iterable[str] = ()) -> Path:
    """Write DIR/junit.xml (or ``path`` itself when it ends in .xml) atomically."""
    target = resolve_target(path, JUNIT_NAME)
    text = render_junit(record, secrets=secrets)
    ET.fromstring(text.encode("utf-8"))  # never hand CI a file it cannot parse
    write_atomic(target, text)
    log.info("JUnit report written to %s", target)
    return target


def _host_results(step: StepRecord) -> list[tuple[str, HostResult | None]]:
    if not step.hosts:
        return [(LOCAL, None)]
    return [(host, step.hosts[host]) for host in sorted(step.hosts)]


def _verdict(step: StepRecord, result: HostResult | None) -> _Verdict:
    reason = step.message or ""
    if step.status is StepStatus.SKIPPED:
        return _Verdict("skipped", reason or "skipped")
    if step.status is StepStatus.INTERRUPTED:
        return _Verdict("error", reason or "interrupted", reason)
    if result is not None and result.failed:
        error = result.error or reason or "failed"
        return _Verdict("failure", error.splitlines()[0] if error else "failed", error)
    if step.status is StepStatus.FAILED and (result is None or not _any_host_failed(step)):
        # The step failed as a whole (timeout, assertion over all hosts): every host in it
        # failed with it, or CI would show a green case inside a red drill.
        return _Verdict("failure", (reason or "step failed").splitlines()[0], reason)
    return _Verdict(None)


def _any_host_failed(step: StepRecord) -> bool:
    return any(result.failed for result in step.hosts.values())


def _case(suite: ET.Element, classname: str, name: str, time_s: float) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", {"classname": classname, "name": name, "time": f"{time_s:.3f}"}
    )


def _attach(case: ET.Element, verdict: _Verdict, clean: _Cleaner) -> None:
    if verdict.tag is None:
        return
    child = ET.SubElement(case, verdict.tag, {"message": clean(verdict.message)})
    if verdict.tag != "skipped":
        child.set("type", verdict.tag)
        child.text = clean(verdict.text or verdict.message)


def _properties(suite: ET.Element, record: RunRecord, clean: _Cleaner) -> None:
    measured = measured_rto_s(record)
    values = {
        "run_id": record.run_id,
        "outcome": record.outcome.value if record.outcome else "unfinished",
        "exit_code": str(int(exit_code_for(record.outcome))),
        "mode": record.mode,
        "dry_run": str(record.dry_run).lower(),
        "operator": record.operator,
        "change_id": record.change_id or "",
        "runbook_sha256": record.runbook_sha256,
        "rto_target_s": "" if record.rto_target_s is None else str(record.rto_target_s),
        "rto_measured_s": "" if measured is None else str(measured),
    }
    properties = ET.SubElement(suite, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", {"name": name, "value": clean(value)})
