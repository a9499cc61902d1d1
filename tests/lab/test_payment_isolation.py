"""A whole site of labs/payment-dr cut off under the lab's own timer (drill.lab.isolation):
``drill lab fault LAB site dc1 --for 4s`` returns at once, dc1 is unreachable from dc2 while
dc2's own services still answer, and with no drill process left the kernel lifts the cut when
the timer expires; ``lab status`` then says so and ``--clear`` leaves no table behind. Also:
a second cut replaces the first with a new timer, and lifting is idempotent.

Needs root; serialized with the other users of the lab:
``flock /tmp/drill-payment.lock .venv/bin/pytest -m lab tests/lab/test_payment_isolation.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.lab import health
from drill.lab.faults import clear_faults
from drill.lab.isolation import isolate_site, isolation_remaining, lift_isolation
from drill.lab.lab import Lab
from drill.lab.state import load_state

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / "labs" / "payment-dr"
SETTLEMENT = ("192.0.2.27", "8300")  # dc1 only
AUTH_DC2 = ("192.0.2.32", "8080")


@pytest.fixture(scope="module")
def lab(payment_lab: Lab) -> Iterator[Lab]:
    """The session's payment lab; left converged for the next module (a cut makes BFD, BGP
    and VRRP fail over, and they come back on their own once it is lifted)."""
    payment_lab.up()
    yield payment_lab
    clear_faults(payment_lab)
    health.wait_converged(payment_lab.plan, 90)


def drill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drill", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def answers(lab: Lab, node: str, target: tuple[str, str]) -> bool:
    """A TCP connect from ``node`` (nc, not drill), at most 1 s."""
    return lab.exec(node, ["nc", "-z", "-w1", *target], timeout=10).returncode == 0


def drill_tables(lab: Lab) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for node in lab.plan.nodes.values():
        listing = subprocess.run(
            ["ip", "netns", "exec", node.netns, "nft", "list", "tables"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cuts = [t for t in listing.split() if t.startswith(("drill_site_", "drill_fault_"))]
        if cuts:
            found[node.name] = cuts
    return found


def test_a_site_cut_lifts_by_itself_with_no_drill_process_left(lab: Lab) -> None:
    assert answers(lab, "dc2-srv", SETTLEMENT)
    done = drill("lab", "fault", str(LAB_DIR), "site", "dc1", "--for", "4s")
    returned = time.monotonic()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("fault: site dc1 blackhole for 4s"), done.stdout

    # The command has exited: whatever holds the cut now is in the lab, not in drill.
    left = isolation_remaining(lab, "dc1")
    assert left is not None and 0 < left <= 4, left
    assert not answers(lab, "dc2-srv", SETTLEMENT)  # dc1's settlement, over the stretched VLAN
    assert answers(lab, "dc2-srv", AUTH_DC2)  # dc2 itself still serves
    state = load_state(lab.plan)
    assert state is not None
    record = next(f for f in state.faults if f.kind == "site")
    assert (record.target, record.mode) == ("dc1", "blackhole") and record.expires_at

    # The timer started before the command returned: lifted by `returned + 4`; 2 s more for
    # the connect to get through (an ARP retry).
    deadline = returned + 4 + 2
    back = False
    while not back and time.monotonic() < deadline:
        back = answers(lab, "dc2-srv", SETTLEMENT)
    assert back, "dc1 did not come back within the timer + 2 s"
    assert isolation_remaining(lab, "dc1") == 0.0  # read from the namespaces' sets

    status = drill("lab", "status", str(LAB_DIR))
    assert "site dc1 blackhole expired (lifted by the lab timer)" in status.stdout, status.stdout
    cleared = drill("lab", "fault", str(LAB_DIR), "--clear")
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.strip() == "cleared: site dc1 blackhole", cleared.stdout
    assert drill_tables(lab) == {}
    assert isolation_remaining(lab, "dc1") is None


def test_a_second_cut_replaces_the_timer_and_lifting_is_idempotent(lab: Lab) -> None:
    first = isolate_site(lab, "dc1", 120)
    second = isolate_site(lab, "dc1", 300)
    try:
        assert first.expires_at is not None and second.expires_at is not None
        assert second.expires_at > first.expires_at
        state = load_state(lab.plan)
        assert state is not None and [f.key for f in state.faults] == ["site dc1"]
        left = isolation_remaining(lab, "dc1")
        assert left is not None and 120 < left <= 300, left
        # Both ends of each cut link: dc1-edge, wan, dc2-edge and both bridges; not the
        # nodes inside a site.
        assert set(drill_tables(lab)) == {"dc1-edge", "wan", "dc2-edge", "br-dc1", "br-dc2"}
        assert not answers(lab, "dc2-srv", SETTLEMENT)
    finally:
        assert lift_isolation(lab, "dc1") is True
    assert lift_isolation(lab, "dc1") is False
    assert isolation_remaining(lab, "dc1") is None
    assert drill_tables(lab) == {}
    back = False
    for _ in range(10):
        back = back or answers(lab, "dc2-srv", SETTLEMENT)
    assert back
