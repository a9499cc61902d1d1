"""The unplanned loss of DC1 (runbooks/dc1-site-loss.yml) on the real lab.

The drill blackholes dc1-edge and app1 at once, waits for DC2 to carry the service, brings
DC1 back and fails back. Its measured interruption is checked against an independent
capture: tcpdump in the client's namespace, read here without drill's code, where the
interruption is the longest silence between two ICMP echo replies from the service address
(minus one probe interval) inside the failure window.

Serialize lab use: ``flock /tmp/drill-lab.lock .venv/bin/pytest tests/lab/test_site_loss.py``.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import struct
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from drill.lab.faults import clear_faults

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "runbooks" / "dc1-site-loss.yml"
VIP = "192.0.2.10"
PROBE = "client-to-service-icmp"


class Capture:
    """tcpdump in namespace ``ns``, writing ``path``; stopped by its pid."""

    def __init__(self, ns: str, path: Path, bpf: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "tcpdump", "-n", "-i", "eth1", "-U", "-s", "96",
             "--immediate-mode", "--time-stamp-precision=micro", "-w", str(path), bpf],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # "listening on ..." once the capture is live
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"tcpdump did not start: {line}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)  # tcpdump flushes and exits on SIGINT
            self.proc.wait(10)


def reply_times(path: Path, source: str) -> list[float]:
    """Capture times of the ICMP echo replies from ``source`` in a micro-second pcap."""
    data = path.read_bytes()
    magic, *_, linktype = struct.unpack_from("<IHHiIII", data)
    assert magic == 0xA1B2C3D4 and linktype == 1, "expected a little-endian Ethernet pcap"
    src = bytes(int(x) for x in source.split("."))
    times: list[float] = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, micros, caplen, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        if frame[12:14] != b"\x08\x00" or frame[14 + 9] != 1:
            continue
        ip = frame[14:]
        icmp = ip[(ip[0] & 0x0F) * 4 :]
        if icmp[0] == 0 and ip[12:16] == src:
            times.append(seconds + micros / 1e6)
    return times


def longest_silence_ms(times: list[float], start: float, end: float, interval: float) -> float:
    """The longest time without a reply that overlaps [start, end], minus one interval."""
    worst = 0.0
    for before, after in itertools.pairwise(times):
        if after > start and before < end:
            worst = max(worst, (after - before - interval) * 1000.0)
    return worst


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_drill(lab: Any, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    report_dir = tmp_path / "report"
    argv = [sys.executable, "-m", "drill", "run", str(RUNBOOK), "-i", str(lab.inventory_dir),
            "--yes", "--report-dir", str(report_dir)]  # fmt: skip
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    report_file = report_dir / "report.json"
    assert report_file.exists(), done.stderr + done.stdout
    return done.returncode, json.loads(report_file.read_text()), done.stdout + done.stderr


def test_site_loss_interruption_ratio_and_capture_agree(lab: Any, tmp_path: Path) -> None:
    pcap = tmp_path / "client.pcap"
    capture = Capture(lab.netns("client"), pcap, f"icmp and host {VIP}")
    try:
        code, report, output = run_drill(lab, tmp_path)
    finally:
        capture.stop()
        # whatever happened, DC1 must not stay dark for the next test
        clear_faults(lab.impl)
    assert code == 0, output
    assert report["mode"] == "unplanned"
    assert report["outcome"] == "succeeded"

    rto = report["rto"]
    assert rto["bound_s"] == pytest.approx(0.3609375 + 0.2, abs=1e-6)
    assert rto["bound_terms"] == {"bfd_detect_s": 0.3, "vrrp_master_down_s": 0.360938,
                                  "plus_s": 0.2}  # fmt: skip
    measured = rto["measured_s"]
    assert measured is not None and measured > 0.05, "a whole site died: users must notice"
    assert rto["ratio_to_bound"] == pytest.approx(measured / rto["bound_s"], abs=0.001)

    probe = next(p for p in report["probes"] if p["name"] == PROBE)
    interval = 1.0 / probe["rate"]
    steps = {s["name"]: s for s in report["steps"] if s["phase"] == "step"}
    start = epoch(steps["dc1-dies"]["started"])
    end = epoch(steps["isolate-dc1-before-return"]["started"])
    in_window = [o for o in probe["outages"] if epoch(o["end"]) > start and epoch(o["start"]) < end]
    assert in_window, probe["outages"]
    assert max(o["gap_ms"] for o in in_window) == pytest.approx(measured * 1000, abs=1.0)

    seen = longest_silence_ms(reply_times(pcap, VIP), start, end, interval)
    assert seen == pytest.approx(measured * 1000.0, abs=interval * 1000.0), (seen, measured)

    # sessions to app2's own address cross the failover; those to app1 die with DC1
    sessions = {p["name"]: p for p in report["probes"] if p["kind"] == "session"}
    survivor, victim = sessions["sessions-to-app2"], sessions["sessions-to-app1"]
    assert (survivor["sessions_opened"], survivor["sessions_lost"]) == (50, 0)
    assert (victim["sessions_opened"], victim["sessions_lost"]) == (50, 50)
    assert victim["sessions_stalled"] == 50
    assert all(epoch(x["at"]) >= start - 0.11 for x in victim["session_losses"])


def test_site_loss_dry_run_injects_nothing(lab: Any, tmp_path: Path) -> None:
    report_dir = tmp_path / "dry"
    argv = [sys.executable, "-m", "drill", "run", str(RUNBOOK), "-i", str(lab.inventory_dir),
            "--dry-run", "--report-dir", str(report_dir)]  # fmt: skip
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    report = json.loads((report_dir / "report.json").read_text())
    fault = next(s for s in report["steps"] if s["name"] == "dc1-dies")
    assert fault["status"] == "skipped", done.stdout
    state = json.loads(Path("/run/drill/lab/two-dc/state.json").read_text())
    assert state["faults"] == []


PAYMENT_RUNBOOK = REPO / "runbooks" / "payment" / "site-loss.yml"
PAYMENT_PROBE = "client-to-web-icmp"


def test_payment_site_loss_interruption_ratio_and_capture_agree(
    payment_lab: Any, tmp_path: Path
) -> None:
    """The same on labs/payment-dr (runbooks/payment/site-loss.yml), through the stateful
    firewalls, with the database promoted and rebuilt on the way back. Needs only the
    payment lab: ``flock /tmp/drill-payment.lock .venv/bin/pytest -m lab -k payment
    tests/lab/test_site_loss.py``."""
    payment_lab.up()  # an earlier module may have taken the shared lab down
    pcap = tmp_path / "client.pcap"
    capture = Capture(payment_lab.plan.node("client").netns, pcap, f"icmp and host {VIP}")
    report_dir = tmp_path / "report"
    argv = [sys.executable, "-m", "drill", "run", str(PAYMENT_RUNBOOK), "--yes",
            "--report-dir", str(report_dir)]  # fmt: skip
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=600, check=False
        )
    finally:
        capture.stop()
        clear_faults(payment_lab)  # whatever happened, DC1 must not stay dark
    report_file = report_dir / "report.json"
    assert report_file.exists(), done.stderr + done.stdout
    report = json.loads(report_file.read_text())
    assert done.returncode == 0, done.stdout + done.stderr
    assert (report["mode"], report["outcome"]) == ("unplanned", "succeeded")

    rto = report["rto"]
    assert rto["bound_s"] == pytest.approx(0.3609375 + 0.2, abs=1e-6)
    measured = rto["measured_s"]
    assert measured is not None and measured > 0.05, "a whole site died: users must notice"
    assert rto["ratio_to_bound"] == pytest.approx(measured / rto["bound_s"], abs=0.001)

    probe = next(p for p in report["probes"] if p["name"] == PAYMENT_PROBE)
    interval = 1.0 / probe["rate"]
    steps = {s["name"]: s for s in report["steps"] if s["phase"] == "step"}
    start = epoch(steps["dc1-dies"]["started"])
    end = epoch(steps["isolate-dc1-before-return"]["started"])
    seen = longest_silence_ms(reply_times(pcap, VIP), start, end, interval)
    assert seen == pytest.approx(measured * 1000.0, abs=interval * 1000.0), (seen, measured)
