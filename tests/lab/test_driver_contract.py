"""NAPALM's own generic getter tests (``napalm/base/test/getters.py``) against every FRR
node of every shipped lab, and ``get_bgp_neighbors`` on a node without BGP.

``test_model`` checks shapes; the generic tests also check the contract around them (e.g.
``get_bgp_neighbors`` always has the ``global`` key). Run serialized:
``flock /tmp/drill-lab.lock .venv/bin/pytest tests/lab/test_driver_contract.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# napalm picks the live (not mocked) wrappers when its test package is first imported.
os.environ["NAPALM_TEST_MOCK"] = "0"
from napalm.base import models
from napalm.base.test import conftest as napalm_conftest
from napalm.base.test import getters, helpers

from drill.drivers.frr.driver import FRRDriver
from drill.lab.lab import Lab
from drill.lab.node import LAB_PASSWORD
from drill.lab.plan import LabPlan, derive_plan
from drill.lab.topology import load_topology

pytestmark = [
    pytest.mark.lab,
    # NAPALM's generic tests return the getter's result (its mock mode compares it).
    pytest.mark.filterwarnings("ignore::pytest.PytestReturnNotNoneWarning"),
]

REPO = Path(__file__).resolve().parents[2]
TWO_DC = REPO / "labs" / "two-dc"
SHIPPED_LABS = sorted({p.parent for p in (REPO / "labs").glob("*/*.clab.yml")})


def frr_nodes(lab_dir: Path) -> list[str]:
    plan = derive_plan(load_topology(lab_dir))
    return [n.name for n in plan.nodes.values() if n.runs_frr and n.mgmt is not None]


NODES = [(lab_dir, node) for lab_dir in SHIPPED_LABS for node in frr_nodes(lab_dir)]


def test_every_shipped_lab_is_covered() -> None:
    assert TWO_DC in SHIPPED_LABS
    assert {n for d, n in NODES if d == TWO_DC} == {"wan", "dc1-edge", "dc2-edge", "app1", "app2"}
    assert not napalm_conftest.NAPALM_TEST_MOCK  # live wrappers: getters really run


@pytest.fixture(scope="module")
def labs(request: pytest.FixtureRequest) -> Iterator[dict[Path, Lab]]:
    """Each shipped lab, up: two-dc from the session fixture, any other one brought up here."""
    up: dict[Path, Lab] = {}
    started: list[Lab] = []
    for lab_dir in SHIPPED_LABS:
        if lab_dir == TWO_DC:
            up[lab_dir] = request.getfixturevalue("lab").impl
        else:
            other = Lab(lab_dir)
            other.up()
            started.append(other)
            up[lab_dir] = other
    yield up
    for other in started:
        other.down()


def _driver(lab: Lab, node: str) -> FRRDriver:
    return FRRDriver(
        lab.mgmt_ip(node),
        "root",
        LAB_PASSWORD,
        optional_args={"known_hosts_file": str(lab.known_hosts)},
    )


@pytest.fixture(
    scope="class", params=NODES, ids=[f"{d.name}:{n}" for d, n in NODES], name="napalm_device"
)
def napalm_device_fixture(request: pytest.FixtureRequest, labs: dict[Path, Lab]) -> Iterator[None]:
    lab_dir, node = request.param
    lab = labs[lab_dir]
    device = _driver(lab, node)
    device.open()
    request.cls.device = device
    request.cls.plan = lab.plan
    request.cls.node = node
    yield
    device.close()


class _WithoutExtensions(FRRDriver):
    """FRRDriver minus the getters NAPALM's base class does not have (see docs/driver.md)."""

    get_vrrp = None  # type: ignore[assignment]


@pytest.fixture
def test_case() -> str:
    """The generic tests take a recorded-data case name; live, there is one: the device."""
    return "live"


@pytest.mark.usefixtures("napalm_device")
class TestGenericGetters(getters.BaseTestGetters):  # type: ignore[misc]
    """NAPALM's generic getter tests, unchanged, for every getter the FRR driver has.

    Left out, because the driver does not implement them (NotImplementedError in NAPALM's
    base class): lldp neighbors (+detail), interfaces counters, environment, bgp config,
    ipv6 neighbors, ntp peers/servers/stats, mac table, snmp, probes config/results,
    users, optics, network instances, firewall policies, vlans.
    Adapted, same assertions: route_to, ping and traceroute target public addresses
    (1.0.4.0/24, 8.8.8.8) a lab never sends to; here they target the lab's management
    network. bgp_neighbors_detail asserts a non-empty result, true only where BGP runs.
    """

    driver = FRRDriver
    device: FRRDriver
    plan: LabPlan
    node: str

    test_get_lldp_neighbors = None
    test_get_lldp_neighbors_detail = None
    test_get_interfaces_counters = None
    test_get_environment = None
    test_get_bgp_config = None
    test_get_ipv6_neighbors_table = None
    test_get_ntp_peers = None
    test_get_ntp_servers = None
    test_get_ntp_stats = None
    test_get_mac_address_table = None
    test_get_snmp_information = None
    test_get_probes_config = None
    test_get_probes_results = None
    test_get_users = None
    test_get_optics = None
    test_get_network_instances = None
    test_get_firewall_policies = None
    test_get_vlans = None

    def test_method_signatures(self) -> None:
        """NAPALM's check, with the driver's one documented extension set aside: get_vrrp
        (docs/driver.md; NAPALM has no VRRP getter, nornir's napalm_get reaches it by name).
        Every other public method must match NAPALM's base class exactly."""
        saved = self.driver
        self.driver = _WithoutExtensions
        try:
            super().test_method_signatures()
        finally:
            self.driver = saved
        assert _WithoutExtensions.__mro__[1] is FRRDriver

    def _runs_bgp(self) -> bool:
        return any(d.name == "bgpd" for d in self.plan.node(self.node).daemons)

    def _gateway(self) -> str:
        return str(self.plan.mgmt_gateway.ip)

    def test_get_bgp_neighbors(self, test_case: str) -> Any:
        result = super().test_get_bgp_neighbors(test_case)
        # the contract, on BGP speakers and on nodes without bgpd alike
        assert "global" in result and isinstance(result["global"]["peers"], dict)
        assert bool(result["global"]["peers"]) == self._runs_bgp()
        return result

    def test_get_bgp_neighbors_detail(self, test_case: str) -> Any:
        if self._runs_bgp():
            return super().test_get_bgp_neighbors_detail(test_case)
        assert self.device.get_bgp_neighbors_detail() == {}
        return {}

    def test_get_route_to(self, test_case: str) -> Any:
        network = str(self.plan.mgmt_gateway.network)
        routes = self.device.get_route_to(destination=network, protocol="connected")
        assert len(routes) > 0
        for entries in routes.values():
            for route in entries:
                assert helpers.test_model(models.RouteDict, route)
        return routes

    def test_get_route_to_longer(self, test_case: str) -> Any:
        network = str(self.plan.mgmt_gateway.network)
        routes = self.device.get_route_to(destination=network, protocol="", longer=True)
        assert len(routes) > 0
        for entries in routes.values():
            for route in entries:
                assert helpers.test_model(models.RouteDict, route)
        return routes

    def test_ping(self, test_case: str) -> Any:
        result = self.device.ping(self._gateway(), count=2)
        assert isinstance(result.get("success"), dict), result
        assert helpers.test_model(models.PingDict, result["success"])
        for entry in result["success"].get("results", []):
            assert helpers.test_model(models.PingResultDictEntry, entry)
        assert result["success"]["packet_loss"] == 0
        return result

    def test_traceroute(self, test_case: str) -> Any:
        result = self.device.traceroute(self._gateway(), ttl=3, timeout=1)
        assert isinstance(result.get("success"), dict), result
        for hop in result["success"].values():
            for probe in hop.get("probes", {}).values():
                assert helpers.test_model(models.TracerouteDict, probe)
        assert result["success"], "no hop answered"
        return result


# -- a node without BGP: bgpd absent, bgpd without `router bgp`, `router bgp` without peers


NOBGP_NAME = "fresh8"


@pytest.fixture
def nobgp_lab(tmp_path: Path) -> Iterator[Lab]:
    """The one-node lab of tests/lab/data/fresh8 (own name and subnet): no bgpd."""
    root = tmp_path / NOBGP_NAME
    shutil.copytree(Path(__file__).parent / "data" / NOBGP_NAME, root)
    lab = Lab(root)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def test_bgp_neighbors_without_bgp_keeps_the_global_key(nobgp_lab: Lab) -> None:
    device = _driver(nobgp_lab, "r1")
    device.open()
    try:
        assert device.get_bgp_neighbors() == {"global": {"router_id": "", "peers": {}}}
        started = nobgp_lab.exec("r1", ["/usr/lib/frr/bgpd", "-d", "-A", "127.0.0.1"])
        assert started.returncode == 0, started.stderr
        _wait_vty(nobgp_lab)
        # bgpd runs, nothing configured
        assert device.get_bgp_neighbors() == {"global": {"router_id": "", "peers": {}}}
        conf = nobgp_lab.exec(
            "r1", ["vtysh", "-c", "conf t", "-c", "router bgp 65001", "-c", "exit"]
        )
        assert conf.returncode == 0, conf.stdout + conf.stderr
        result = device.get_bgp_neighbors()
        assert result["global"]["peers"] == {}
        assert isinstance(result["global"]["router_id"], str)
    finally:
        device.close()


def _wait_vty(lab: Lab) -> None:
    for _ in range(100):
        done = lab.exec("r1", ["vtysh", "-c", "show bgp vrf all summary json"])
        if done.returncode == 0 and "not running" not in done.stdout:
            return
        subprocess.run(["sleep", "0.05"], check=True)
    pytest.fail("bgpd did not come up")
