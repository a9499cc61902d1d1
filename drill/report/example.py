"""A realistic RunRecord of a drill that failed and rolled back, with one host not restored
exactly. docs/report.md shows its report.json, and a test keeps the two identical, so the
documentation cannot drift from the code. Tests build their variants from it too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drill.engine.records import (
    HostResult,
    Outage,
    Outcome,
    Phase,
    ProbeResult,
    RestoreResult,
    RunRecord,
    StepRecord,
    StepStatus,
)

T0 = datetime(2026, 11, 24, 16, 15, 0, 123000, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def example_record() -> RunRecord:
    """A fresh copy each call: tests may modify it."""
    drain_diff = (
        "--- r1 running\n+++ r1 candidate\n@@ -4,3 +4,4 @@\n router bgp 65001\n"
        "  neighbor 198.51.100.2 remote-as 65002\n"
        "+ neighbor 198.51.100.2 route-map GSHUT out\n"
    )
    return RunRecord(
        run_id="20261124T161500Z-dc1-to-dc2-3f9a",
        runbook_name="dc1-to-dc2",
        runbook_path="runbooks/dc1-to-dc2.yml",
        runbook_sha256="9b2c1f0e5d4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c",
        mode="planned",
        dry_run=False,
        operator="alice",
        change_id="CHG-2026-1142",
        started=T0,
        ended=_at(41.877),
        outcome=Outcome.ROLLED_BACK,
        steps=[
            StepRecord(
                name="bgp-sessions-up",
                kind="check",
                phase=Phase.PRECHECK,
                status=StepStatus.OK,
                started=_at(0.5),
                ended=_at(1.2),
                hosts={"r1": HostResult(), "r2": HostResult()},
            ),
            StepRecord(
                name="drain-dc1",
                kind="config",
                phase=Phase.STEP,
                status=StepStatus.OK,
                started=_at(1.3),
                ended=_at(3.9),
                hosts={"r1": HostResult(changed=True, diff=drain_diff)},
            ),
            StepRecord(
                name="traffic-via-dc2",
                kind="wait_until",
                phase=Phase.STEP,
                status=StepStatus.FAILED,
                started=_at(3.9),
                ended=_at(33.9),
                hosts={
                    "r2": HostResult(
                        failed=True,
                        error="timed out after 30s: global.peers.198.51.100.1.is_up "
                        "is False, expected True",
                    )
                },
                message="condition not met within 30s",
            ),
            StepRecord(
                name="vrrp-dc2-master",
                kind="check",
                phase=Phase.POSTCHECK,
                status=StepStatus.SKIPPED,
                hosts={"r2": HostResult()},
                message="not reached: an earlier step failed",
            ),
            StepRecord(
                name="drain-dc1",
                kind="config",
                phase=Phase.ROLLBACK,
                status=StepStatus.OK,
                started=_at(34.0),
                ended=_at(36.2),
                hosts={
                    "r1": HostResult(
                        changed=True, diff=drain_diff.replace("+ neighbor", "- neighbor")
                    )
                },
            ),
            StepRecord(
                name="restore-matches-snapshot",
                kind="verify",
                phase=Phase.VERIFY,
                status=StepStatus.FAILED,
                started=_at(36.2),
                ended=_at(37.0),
                hosts={
                    "r1": HostResult(),
                    "r2": HostResult(failed=True, error="running config differs from snapshot"),
                },
                message="1 host not restored exactly",
            ),
        ],
        restore={
            "r1": RestoreResult(exact=True),
            "r2": RestoreResult(
                exact=False,
                diff="--- r2 snapshot\n+++ r2 running\n@@ -9 +9 @@\n"
                "- neighbor 198.51.100.1 password s3cret-peer\n"
                "+ neighbor 198.51.100.1 password new-peer-pw\n",
            ),
        },
        probes=[
            ProbeResult(
                name="ping-vip",
                kind="packet",
                rate=1000,
                sent=41000,
                lost=412,
                max_gap_ms=409.0,
                outages=[
                    Outage(start=T0.timestamp() + 2.100, end=T0.timestamp() + 2.510, lost=409)
                ],
                by_step={
                    "bgp-sessions-up": {"lost": 0, "max_gap_ms": 0.0},
                    "drain-dc1": {"lost": 409, "max_gap_ms": 409.0},
                    "traffic-via-dc2": {"lost": 3, "max_gap_ms": 2.0},
                },
            ),
            ProbeResult(
                name="web",
                kind="service",
                rate=20,
                sent=820,
                lost=12,
                max_gap_ms=550.0,
                outages=[Outage(start=T0.timestamp() + 2.050, end=T0.timestamp() + 2.650, lost=11)],
                by_step={
                    "bgp-sessions-up": {"lost": 0, "max_gap_ms": 0.0},
                    "drain-dc1": {"lost": 11, "max_gap_ms": 550.0},
                    "traffic-via-dc2": {"lost": 1, "max_gap_ms": 0.0},
                },
                backends={"web-dc1": 430, "web-dc2": 378},
            ),
        ],
        rto_target_s=5.0,
        host_key_policy="strict",
        notes=["r2: running configuration differs from the pre-drill snapshot (see restore)"],
    )


if __name__ == "__main__":  # regenerates the example block of docs/report.md
    import sys

    from drill.report.report import render_report

    sys.stdout.write(render_report(example_record()))
