"""Which lab interfaces export flows is data (node labels): checked against the plan."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drill.errors import InputError
from drill.lab.exporters import collector_address, export_points, softflowd_argv
from drill.lab.lab import Lab

REPO = Path(__file__).resolve().parents[2]


def test_two_dc_exports_the_edges_and_the_dc2_side_of_the_stretched_vlan() -> None:
    plan = Lab(REPO / "labs" / "two-dc").plan
    points = {(p.node, p.iface, p.version) for p in export_points(plan)}
    assert points == {
        ("dc1-edge", "eth1", 10), ("dc1-edge", "eth2", 10),
        ("dc2-edge", "eth1", 9), ("dc2-edge", "eth2", 9),
        ("br-dci", "dci-dc2e", 10), ("br-dci", "dci-app2", 10),
    }  # fmt: skip
    assert collector_address(plan) == "198.18.0.1:2055"


def test_payment_dr_exports_the_edges_and_the_vlan_dci_port() -> None:
    plan = Lab(REPO / "labs" / "payment-dr").plan
    points = {(p.node, p.iface, p.version) for p in export_points(plan)}
    assert points == {
        ("dc1-edge", "eth1", 10), ("dc1-edge", "eth2", 10),
        ("dc2-edge", "eth1", 9), ("dc2-edge", "eth2", 9),
        ("br-dc2", "dci-l2", 10),
    }  # fmt: skip
    assert collector_address(plan) == "198.18.2.1:2055"


def test_softflowd_gets_short_timeouts_and_its_own_files() -> None:
    plan = Lab(REPO / "labs" / "two-dc").plan
    point = next(p for p in export_points(plan) if p.node == "dc2-edge")
    argv = softflowd_argv(point, 3, "198.18.0.1:2055", Path("/run/x"))
    assert argv[argv.index("-v") + 1] == "9"
    assert "maxlife=10" in argv and "-d" in argv  # foreground: drill keeps the pid
    assert argv[argv.index("-p") + 1] == "/run/x/dc2-edge-eth1.pid"
    assert argv[argv.index("-c") + 1] == "/run/x/dc2-edge-eth1.ctl"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('drill.flow-export: "eth1,eth2"}', 'drill.flow-export: "eth1,eth9"}', "`eth9`, not one"),
        ('drill.flow-export-version: "9"', 'drill.flow-export-version: "5"', "must be 9"),
    ],
)
def test_label_mistakes_are_input_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    lab_dir = tmp_path / "labs" / "two-dc"
    shutil.copytree(REPO / "labs" / "two-dc", lab_dir)
    # the lab binds the session probes' echo server from the package, two levels up
    (tmp_path / "drill" / "probes").mkdir(parents=True)
    shutil.copy(REPO / "drill" / "probes" / "echo_server.py", tmp_path / "drill" / "probes")
    topo = lab_dir / "two-dc.clab.yml"
    text = topo.read_text()
    assert old in text
    topo.write_text(text.replace(old, new))
    with pytest.raises(InputError, match=message):
        export_points(Lab(lab_dir).plan)
