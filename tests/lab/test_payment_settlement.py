"""``labs/payment-dr/services/settlectl.sh``: settlement's address 192.0.2.27 and its process
move from dc1-srv to dc2-srv over the stretched VLAN and back, and large payments follow
(the fix the isolation runbooks rely on).

Needs root; serialized with the other users of the lab:
``flock /tmp/drill-payment.lock .venv/bin/pytest -m lab tests/lab/test_payment_settlement.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from drill.lab.lab import Lab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SETTLECTL = REPO / "labs" / "payment-dr" / "services" / "settlectl.sh"
CANARY = "http://192.0.2.31/?amount=5000"  # dc2's own web instance: dc2's auth clears it
SERVICE = "http://192.0.2.10/?amount=5000"  # the service address, in dc1
MACS = {"dc1-srv": "02:00:c0:00:02:0b", "dc2-srv": "02:00:c0:00:02:0c"}


@pytest.fixture(scope="module")
def lab(payment_lab: Lab) -> Lab:
    payment_lab.up()
    return payment_lab


def settlectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SETTLECTL), *args], capture_output=True, text=True, timeout=60, check=False
    )


def pay(lab: Lab, url: str) -> str:
    return lab.exec("client", ["curl", "-s", "-m", "5", url], timeout=10).stdout.strip()


def edge_neighbours(lab: Lab) -> set[str]:
    """What both edges' permanent ARP entries say 192.0.2.27 is."""
    return {
        lab.exec(edge, ["ip", "neigh", "show", "192.0.2.27", "dev", "vrrp4-1"]).stdout.strip()
        for edge in ("dc1-edge", "dc2-edge")
    }


def test_settlement_moves_to_dc2_and_back(lab: Lab) -> None:
    assert settlectl("where").stdout == "dc1-srv\n"
    assert pay(lab, CANARY).endswith("auth@dc2-srv db@dc1-srv hsm@dc2-srv settlement@dc1-srv")
    try:
        moved = settlectl("move", "dc2")
        assert moved.returncode == 0, moved.stderr
        assert moved.stdout == "settlement: moved from dc1-srv to dc2-srv\n"
        assert settlectl("where").stdout == "dc2-srv\n"
        assert pay(lab, CANARY) == (
            "web@dc2-srv auth@dc2-srv db@dc1-srv hsm@dc2-srv settlement@dc2-srv"
        )
        # dc1's auth now clears across the VLAN, through the edges' new ARP entries too.
        assert pay(lab, SERVICE).endswith("auth@dc1-srv db@dc1-srv hsm@dc1-srv settlement@dc2-srv")
        assert edge_neighbours(lab) == {f"192.0.2.27 lladdr {MACS['dc2-srv']} PERMANENT"}
        assert not (lab.plan.node_dir("dc1-srv") / "run" / "settlement.pid").exists()
        assert (lab.plan.node_dir("dc2-srv") / "run" / "settlement.pid").exists()
        again = settlectl("move", "dc2")
        assert (again.returncode, again.stdout) == (0, "settlement: already on dc2-srv\n")
    finally:
        back = settlectl("move", "dc1")
    assert back.returncode == 0, back.stderr
    assert back.stdout == "settlement: moved from dc2-srv to dc1-srv\n"
    assert settlectl("where").stdout == "dc1-srv\n"
    assert pay(lab, CANARY).endswith("settlement@dc1-srv")
    assert pay(lab, SERVICE) == (
        "web@dc1-srv auth@dc1-srv db@dc1-srv hsm@dc1-srv settlement@dc1-srv"
    )
    assert edge_neighbours(lab) == {f"192.0.2.27 lladdr {MACS['dc1-srv']} PERMANENT"}
    assert not (lab.plan.node_dir("dc2-srv") / "run" / "settlement.pid").exists()


@pytest.mark.parametrize("args", [[], ["move"], ["move", "dc3"], ["teleport", "dc2"]])
def test_bad_usage_is_exit_2(args: list[str]) -> None:
    done = settlectl(*args)
    assert done.returncode == 2 and done.stderr.startswith("usage: settlectl.sh"), done
