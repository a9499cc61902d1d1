"""Benchmark: the unplanned loss of DC1 (``runbooks/dc1-site-loss.yml``), N runs.

Each run blackholes dc1-edge and app1 at once, waits for DC2 to carry the service, brings
DC1 back and fails back (the lab ends where it started, so runs chain). Prints per run the
measured interruption (ICMP at 1,000/s, inside the failure window), the bound and their
ratio, the service probe's interruption and the sessions lost, then medians.

Run as root, serialized with the other lab users:
    flock /tmp/drill-lab.lock .venv/bin/python benchmarks/site_loss.py [--runs 5]
The payment lab's site loss (dc1-edge, dc1-srv and br-dc1, then the database failback):
    flock /tmp/drill-payment.lock .venv/bin/python benchmarks/site_loss.py \
        --lab labs/payment-dr --runbook runbooks/payment/site-loss.yml
Goal: median ratio_to_bound <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DRILL = [sys.executable, "-m", "drill"]
GOAL = 1.5


def run_once(runbook: str, report_dir: Path, state_dir: Path) -> tuple[int, dict[str, Any]]:
    env = dict(os.environ, DRILL_STATE_DIR=str(state_dir))
    proc = subprocess.run(
        [*DRILL, "run", runbook, "--yes", "--report-dir", str(report_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report = report_dir / "report.json"
    if not report.exists():  # drill stopped before the run began (e.g. the lab went away)
        raise SystemExit(f"{runbook}: no report (exit {proc.returncode}): {proc.stderr[-500:]}")
    return proc.returncode, json.loads(report.read_text())


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def window_gap_ms(report: dict[str, Any], name: str) -> float:
    """A probe's longest whole outage inside the failure window (as rto.measured_s is)."""
    probe = next(p for p in report["probes"] if p["name"] == name)
    steps = {s["name"]: s for s in report["steps"] if s["phase"] == "step"}
    start = _epoch(steps["dc1-dies"]["started"])
    end = _epoch(steps["isolate-dc1-before-return"]["started"])
    gaps = [float(o["gap_ms"]) for o in probe["outages"]
            if _epoch(o["end"]) > start and _epoch(o["start"]) < end]  # fmt: skip
    return max(gaps, default=0.0)


def failback_gap_ms(report: dict[str, Any], name: str) -> float:
    """A probe's longest outage that starts once the failback has begun."""
    probe = next(p for p in report["probes"] if p["name"] == name)
    steps = {s["name"]: s for s in report["steps"] if s["phase"] == "step"}
    start = _epoch(steps["isolate-dc1-before-return"]["started"])
    return max((float(o["gap_ms"]) for o in probe["outages"] if _epoch(o["start"]) >= start),
               default=0.0)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab", default="labs/two-dc")
    parser.add_argument("--runbook", default="runbooks/dc1-site-loss.yml")
    parser.add_argument("--keep", default="", help="keep each run's report in this directory")
    args = parser.parse_args()
    subprocess.run([*DRILL, "lab", "up", args.lab], cwd=ROOT, check=True)
    measured: list[float] = []
    ratios: list[float] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as scratch:
        tmp = args.keep or scratch
        for run_no in range(1, args.runs + 1):
            code, report = run_once(args.runbook, Path(tmp) / f"run-{run_no}", Path(tmp) / "state")
            rto = report["rto"]
            icmp = str(rto["probe"])
            service = next(p["name"] for p in report["probes"] if p["kind"] == "service")
            sessions = {p["name"]: p for p in report["probes"] if p["kind"] == "session"}
            lost = ", ".join(f"{n} lost {p['sessions_lost']}/{p['sessions_opened']}"
                             for n, p in sessions.items())  # fmt: skip
            http = window_gap_ms(report, service)
            back = (failback_gap_ms(report, icmp), failback_gap_ms(report, service))
            print(f"run {run_no}: exit {code} {report['outcome']}; interruption "
                  f"{rto['measured_s']} s, bound {rto['bound_s']} s, ratio "
                  f"{rto['ratio_to_bound']}; http gap {http:.1f} ms; failback gap icmp "
                  f"{back[0]:.1f} ms, http {back[1]:.1f} ms; {lost}", flush=True)  # fmt: skip
            if code != 0 or rto["measured_s"] is None:
                failures += 1
                continue
            measured.append(rto["measured_s"])
            ratios.append(rto["ratio_to_bound"])
    if not ratios:
        print("no successful run")
        return 1
    median_ratio = statistics.median(ratios)
    print(f"median interruption {statistics.median(measured):.3f} s "
          f"(min {min(measured):.3f}, max {max(measured):.3f}); median ratio to bound "
          f"{median_ratio:.3f} (goal <= {GOAL}); {failures} failed runs")  # fmt: skip
    return 0 if failures == 0 and median_ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
