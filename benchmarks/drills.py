"""Benchmark: the reference drills on the lab, end to end, N rounds.

Each round runs ``runbooks/dc1-to-dc2.yml`` then ``runbooks/dc2-to-dc1.yml`` for real
(probes included: ICMP at 1,000/s and HTTP at 50/s from the client), and once per
benchmark ``runbooks/dc1-to-dc2-broken.yml`` (must end rolled_back with exact restores).
Prints per-run wall time, probe loss and longest interruption, then medians.

Run as root, serialized with the other lab users:
    flock /tmp/drill-lab.lock .venv/bin/python benchmarks/drills.py [--rounds 5]
Another lab and its runbooks (a directory with dc1-to-dc2.yml and dc2-to-dc1.yml; the broken
variant runs only when the directory has one):
    .venv/bin/python benchmarks/drills.py --lab labs/payment-dr --runbooks runbooks/payment
Target: dc1-to-dc2 median under 30 s, 0 packets lost, no failed request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DRILL = [sys.executable, "-m", "drill"]
TARGET_S = 30.0


def run_drill(
    runbook: Path, report_dir: Path, state_dir: Path
) -> tuple[int, float, dict[str, Any]]:
    env = dict(os.environ, DRILL_STATE_DIR=str(state_dir))
    started = time.monotonic()
    proc = subprocess.run(
        [*DRILL, "run", str(runbook), "--yes", "--report-dir", str(report_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    report = json.loads((report_dir / "report.json").read_text())
    return proc.returncode, elapsed, report


def summarize(name: str, code: int, elapsed: float, report: dict[str, Any]) -> str:
    probes = ", ".join(
        f"{p['name']}: sent {p['sent']} lost {p['lost']} max_gap {p['max_gap_ms']:.1f} ms"
        for p in report["probes"]
    )
    restore = report.get("restore") or {}
    exact = "" if not restore else f", restores exact: {all(r['exact'] for r in restore.values())}"
    return f"{name}: exit {code}, {report['outcome']}, {elapsed:.2f} s{exact}; {probes}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lab", default="labs/two-dc", help="lab directory (default two-dc)")
    parser.add_argument("--runbooks", default="runbooks", help="directory of the runbooks")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep every run's report directory under this directory (per-step attribution)",
    )
    args = parser.parse_args()
    runbooks = (ROOT / args.runbooks).resolve()
    subprocess.run([*DRILL, "lab", "up", args.lab], cwd=ROOT, check=True)
    times: dict[str, list[float]] = {"dc1-to-dc2": [], "dc2-to-dc1": []}
    lost = {"dc1-to-dc2": 0, "dc2-to-dc1": 0}
    gaps: dict[str, list[float]] = {"dc1-to-dc2": [], "dc2-to-dc1": []}
    lost_by_probe: dict[str, int] = {}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp_dir:
        tmp = args.keep.resolve() if args.keep else Path(tmp_dir)
        state = Path(tmp_dir) / "state"
        broken = runbooks / "dc1-to-dc2-broken.yml"
        broken_ok = True
        if broken.exists():
            code, elapsed, report = run_drill(broken, Path(tmp) / "broken", state)
            print(summarize("dc1-to-dc2-broken", code, elapsed, report), flush=True)
            broken_ok = (
                code == 1
                and report["outcome"] == "rolled_back"
                and all(r["exact"] for r in report["restore"].values())
            )
        for round_no in range(1, args.rounds + 1):
            for name in ("dc1-to-dc2", "dc2-to-dc1"):
                out = Path(tmp) / f"{name}-{round_no}"
                code, elapsed, report = run_drill(runbooks / f"{name}.yml", out, state)
                print(f"round {round_no} " + summarize(name, code, elapsed, report), flush=True)
                if code != 0:
                    failures += 1
                    break
                times[name].append(report["duration_s"])
                lost[name] += sum(p["lost"] for p in report["probes"])
                for p in report["probes"]:
                    lost_by_probe[f"{name} {p['name']}"] = (
                        lost_by_probe.get(f"{name} {p['name']}", 0) + p["lost"]
                    )
                gaps[name].extend(p["max_gap_ms"] for p in report["probes"])
            else:
                continue
            break
    for name, values in times.items():
        if values:
            print(
                f"{name}: median {statistics.median(values):.2f} s over {len(values)} runs "
                f"(min {min(values):.2f}, max {max(values):.2f}); packets+requests lost in "
                f"all runs: {lost[name]}; worst max_gap {max(gaps[name]):.1f} ms"
            )
    for probe, count in lost_by_probe.items():
        print(f"{probe}: {count} lost over all runs")
    print(f"broken variant rolled back with exact restores: {broken_ok}")
    median = statistics.median(times["dc1-to-dc2"]) if times["dc1-to-dc2"] else float("inf")
    met = failures == 0 and broken_ok and median < TARGET_S and not any(lost.values())
    print(
        f"goals (dc1-to-dc2 < {TARGET_S:g} s, 0 lost, broken rolls back exactly): "
        f"{'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
