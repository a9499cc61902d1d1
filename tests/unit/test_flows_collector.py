"""``drill flows record`` with a real nfcapd on 127.0.0.1, fed generated IPFIX and NetFlow v9."""

from __future__ import annotations

import glob
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from drill.flows.collector import Collector, parse_listen
from drill.flows.generate import packets, synth_flows

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v nfcapd"], capture_output=True).returncode != 0,
    reason="nfcapd missing: `make system-deps` installs Debian's nfdump",
)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workdirs() -> set[str]:
    return set(glob.glob(f"{tempfile.gettempdir()}/drill-flows-*"))


def test_collector_counts_every_record_of_both_versions() -> None:
    port = _free_udp_port()
    flows = list(synth_flows(240))
    before = _workdirs()
    with (
        Collector(parse_listen(f"127.0.0.1:{port}")) as collector,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        collector.start()
        pid = collector.pid
        for version in (10, 9):
            for packet in packets(flows, version):
                tx.sendto(packet, ("127.0.0.1", port))
        stats = collector.stop()
        records = list(collector.records())
    assert stats.flows == 480 and stats.bad_packets == 0
    assert len(records) == 480
    by_src = {(r.src_addr, r.src_port, r.packets, r.bytes) for r in records}
    assert by_src == {(f.src, f.sport, f.packets, f.octets) for f in flows}
    assert {r.exporter for r in records} == {"127.0.0.1"}
    assert {(r.input_if, r.output_if) for r in records} == {(1, 2)}
    assert (
        not Path(f"/proc/{pid}").exists()
        or "nfcapd" not in Path(f"/proc/{pid}/cmdline").read_text()
    )
    assert _workdirs() == before  # the temporary nfcapd directory is gone


def test_record_cli_writes_normalized_records(tmp_path: Path) -> None:
    port = _free_udp_port()
    out = tmp_path / "flows.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drill", "flows", "record", "--listen", f"127.0.0.1:{port}",
         "--for", "3s", "-o", str(out)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    assert "collecting on udp" in proc.stderr.readline()  # printed once nfcapd listens
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for packet in packets(list(synth_flows(50)), 10):
            tx.sendto(packet, ("127.0.0.1", port))
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, rest
    lines = out.read_text().splitlines()
    assert len(lines) == 50
    first = json.loads(lines[0])
    assert first["dst_addr"] == "198.19.0.10" and first["dst_port"] == 443
    assert first["first_seen"].endswith("Z")
    assert "50 flow records from 1 exporter(s) (127.0.0.1)" in rest


def test_record_cli_refuses_bad_flags_and_a_busy_port(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "drill", "flows", "record", *args, "-o", str(tmp_path / "o")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    for args, expected in [
        (["--for", "soon"], "--for: bad duration"),
        (["--for", "1s", "--listen", "localhost:2055"], "expected ADDR:PORT"),
        (["--for", "1s", "--listen", "127.0.0.1:70000"], "port must be 1-65535"),
        (["--for", "1s", "--listen", "300.1.1.1:2055"], "is not an IP address"),
    ]:
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        done = cli("--for", "1s", "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 1, done.stderr
    assert "nfcapd exited at start" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()
