"""Benchmark: the payment switchover with the firewalls' state sync on vs off, N rounds each.

Each round runs ``runbooks/payment/dc1-to-dc2.yml`` then ``dc2-to-dc1.yml`` for real on
labs/payment-dr (probes included: ICMP at 1,000/s, payments at 20/s, and 50 TCP sessions
every 100 ms through the firewall that moves). Sync is switched on both edges with
``fwsync.sh on|off`` before each series; the runbooks' ``max_lost_sessions: 0`` is dropped
from a copy for the series with sync off, so the drill runs to the end and counts them all.
Prints per run: sessions lost out of N, ICMP packets lost, longest interruption (the largest
``max_gap_ms`` of the ICMP and session probes), then the medians per setting and drill.

Run as root (it brings the lab up if needed), serialized with the other payment-lab users:
    flock /tmp/drill-payment.lock .venv/bin/python benchmarks/payment_sessions.py [--rounds 5]
Goal: sync on loses 0 sessions; sync off shows what the seed design's trade-off costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DRILL = [sys.executable, "-m", "drill"]
LAB = "labs/payment-dr"
RUNBOOKS = ROOT / "runbooks" / "payment"
NAMES = ("dc1-to-dc2", "dc2-to-dc1")
LIMIT = "    max_lost_sessions: 0\n"


@dataclass
class Run:
    sessions: int
    sessions_lost: int
    packets_lost: int
    interruption_ms: float


def set_sync(mode: str) -> None:
    for edge in ("dc1-edge", "dc2-edge"):
        subprocess.run(
            [*DRILL, "lab", "exec", LAB, edge, "--", "sh", "/etc/frr/fw/fwsync.sh", mode],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )


def runbook_for(name: str, sync: str) -> Path:
    """The runbook, or with sync off a copy beside it (relative paths hold) with no limit."""
    original = RUNBOOKS / f"{name}.yml"
    if sync == "on":
        return original
    copy = RUNBOOKS / f".bench-unlimited-{os.getpid()}-{name}.yml"
    copy.write_text(original.read_text().replace(LIMIT, ""))
    return copy


def run_drill(runbook: Path, report_dir: Path, state_dir: Path) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [*DRILL, "run", str(runbook), "--yes", "--report-dir", str(report_dir)],
        cwd=ROOT,
        env=dict(os.environ, DRILL_STATE_DIR=str(state_dir)),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, json.loads((report_dir / "report.json").read_text())


def measure(report: dict[str, Any]) -> Run:
    by_kind = {p["kind"]: p for p in report["probes"]}
    session, packet = by_kind["session"], by_kind["packet"]
    return Run(
        sessions=session["sessions_opened"],
        sessions_lost=session["sessions_lost"],
        packets_lost=packet["lost"],
        interruption_ms=max(session["max_gap_ms"], packet["max_gap_ms"]),
    )


def series(sync: str, rounds: int, tmp: Path) -> dict[str, list[Run]]:
    set_sync(sync)
    runs: dict[str, list[Run]] = {name: [] for name in NAMES}
    books = {name: runbook_for(name, sync) for name in NAMES}
    try:
        for round_no in range(1, rounds + 1):
            for name in NAMES:
                out = tmp / f"{sync}-{name}-{round_no}"
                code, report = run_drill(books[name], out, tmp / "state")
                if code != 0:
                    raise SystemExit(f"sync {sync} round {round_no} {name}: {report['outcome']}")
                run = measure(report)
                runs[name].append(run)
                print(
                    f"sync {sync} round {round_no} {name}: sessions lost {run.sessions_lost}"
                    f"/{run.sessions}, packets lost {run.packets_lost}, longest interruption "
                    f"{run.interruption_ms:.1f} ms",
                    flush=True,
                )
    finally:
        for name in NAMES:
            if books[name].name.startswith(".bench-"):
                books[name].unlink(missing_ok=True)
        set_sync("on")
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    subprocess.run([*DRILL, "lab", "up", LAB], cwd=ROOT, check=True)
    results: dict[str, dict[str, list[Run]]] = {}
    with tempfile.TemporaryDirectory(prefix="drill-bench-sessions-") as tmp:
        for sync in ("on", "off"):
            results[sync] = series(sync, args.rounds, Path(tmp))
    print("| sync | drill | sessions lost of N | packets lost | longest interruption |")
    print("| --- | --- | --- | --- | --- |")
    for sync, by_name in results.items():
        for name, runs in by_name.items():
            lost = statistics.median(r.sessions_lost for r in runs)
            n = runs[0].sessions if runs else 0
            packets = statistics.median(r.packets_lost for r in runs)
            gap = statistics.median(r.interruption_ms for r in runs)
            print(f"| {sync} | {name} | {lost:g} of {n} | {packets:g} | {gap:.0f} ms |")
    met = all(r.sessions_lost == 0 for runs in results["on"].values() for r in runs)
    print(f"goal (sync on loses 0 sessions): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
