"""Shared fixtures.

``lab``: the FRR lab ``labs/two-dc`` on the built-in backend, brought up once per session
(idempotent: an already converged lab is reused) and taken down at the end unless
``DRILL_KEEP_LAB=1``. Lab tests skip only when not root. Serialize lab users across
processes with ``flock /tmp/drill-lab.lock pytest ...``.

``payment_lab``: ``labs/payment-dr``, shared the same way by every module that drills it (each
module calls ``up()`` first: idempotent, and it rebuilds the lab if an earlier module took it
down); serialize with ``flock /tmp/drill-payment.lock pytest ...``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from drill.lab.lab import Lab

REPO = Path(__file__).resolve().parent.parent
LAB_DIR = REPO / "labs" / "two-dc"
PAYMENT_LAB_DIR = REPO / "labs" / "payment-dr"


class LabHandle:
    """What lab tests get: paths, ``exec`` on a node, management addresses."""

    def __init__(self, path: Path) -> None:
        from drill.lab.lab import Lab

        self.impl = Lab(path)
        self.path: Path = self.impl.path
        self.inventory_dir: Path = self.impl.inventory_dir
        self.known_hosts: Path = self.impl.known_hosts
        self.name: str = self.impl.name

    def exec(
        self, node: str, argv: Sequence[str], timeout: float | None = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in ``node``'s namespaces; output captured as text, never raises."""
        return self.impl.exec(node, argv, timeout=timeout)

    def mgmt_ip(self, node: str) -> str:
        return self.impl.mgmt_ip(node)

    def netns(self, node: str) -> str:
        return self.impl.plan.node(node).netns

    def up(self) -> None:
        self.impl.up()

    def down(self) -> None:
        self.impl.down()


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, mounts, nftables)")
    handle = LabHandle(LAB_DIR)
    handle.up()
    yield handle
    if os.environ.get("DRILL_KEEP_LAB") != "1":
        handle.down()


@pytest.fixture(scope="session")
def payment_lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, mounts, nftables, PostgreSQL)")
    from drill.lab.lab import Lab as PaymentLab

    handle = PaymentLab(PAYMENT_LAB_DIR)
    handle.up()
    yield handle
    if os.environ.get("DRILL_KEEP_LAB") != "1":
        handle.down()
