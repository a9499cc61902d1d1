"""A containerlab topology in today's idiom on the built-in backend: tests/lab/data/ospf-lab.

Native ``kind: frr`` routers (startup-config from a file and inline, ``extras.frr.daemons``,
groups, no bgpd anywhere), OSPF as the IGP, linux hosts configured by ``exec:`` only,
management addresses assigned from ``mgmt.ipv4-subnet``. The lab is brought up through the
CLI with the topology *file*, its generated inventory drives nornir/NAPALM, and ``down``
must leave nothing. Its names and subnet (198.18.4.0/24) are its own, so it needs no lock;
the one test that also brings up labs/two-dc takes ``/tmp/drill-lab.lock`` for that part.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from drill.errors import LabError
from drill.lab.lab import Lab
from drill.lab.netns import existing_netns, host_ifaces
from drill.lab.status import lab_status

pytestmark = pytest.mark.lab

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).resolve().parent / "data" / "ospf-lab" / "ospf.clab.yml"
TWO_DC = REPO / "labs" / "two-dc"
DRILL = [str(Path(sys.executable).parent / "drill")]
ROUTERS = ("r1", "r2", "r3")
HOSTS = {"h1": "203.0.113.2", "h2": "203.0.113.18"}
LOCK = "/tmp/drill-lab.lock"


def poll(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def pings(lab: Lab, node: str, target: str) -> bool:
    proc = lab.exec(node, ["ping", "-c", "2", "-i", "0.2", "-W", "1", target])
    return proc.returncode == 0


def inventory_files(directory: Path) -> dict[str, str]:
    return {
        "host_file": str(directory / "hosts.yaml"),
        "group_file": str(directory / "groups.yaml"),
        "defaults_file": str(directory / "defaults.yaml"),
    }


@pytest.fixture(scope="module")
def ospf() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, mounts, nftables)")
    lab = Lab(TOPOLOGY)
    try:
        # The CLI with the .clab.yml file itself, as a user would run it.
        done = subprocess.run(
            [*DRILL, "lab", "up", str(TOPOLOGY)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"nornir inventory: {lab.plan.inventory_dir}/" in done.stdout, done.stdout
        yield lab
    finally:
        lab.down()


def test_ospf_routes_end_to_end_between_the_hosts(ospf: Lab) -> None:
    poll("h1 -> h2 over OSPF", lambda: pings(ospf, "h1", HOSTS["h2"]))
    assert pings(ospf, "h2", HOSTS["h1"])
    # r2's loopback is its own LSA: learnt by SPF runs of its own, which a loaded host delays
    poll("h1 -> r2's loopback, learnt by OSPF", lambda: pings(ospf, "h1", "192.0.2.2"))
    route = ospf.exec("r2", ["vtysh", "-c", "show ip route 203.0.113.0/28 json"])
    assert route.returncode == 0, route.stderr
    assert '"protocol":"ospf"' in route.stdout.replace(" ", "")
    for router in ROUTERS:
        daemons = ospf.exec(router, ["ls", "/run/frr"]).stdout.split()
        assert "ospfd.vty" in daemons and "zebra.vty" in daemons
        assert "bgpd.vty" not in daemons and "bgpd.pid" not in daemons, router


def test_frr_kind_and_linux_hosts_are_set_up_as_containerlab_does(ospf: Lab) -> None:
    for router in ROUTERS:
        forwarding = ospf.exec(router, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip()
        assert forwarding == "1", router
        hostname = ospf.exec(router, ["vtysh", "-c", "show running-config"]).stdout
        assert f"hostname {router}" in hostname
    # r2's config was inline, r1's and r3's came from files (r3 through __clabNodeName__).
    conf = ospf.exec("r2", ["cat", "/etc/frr/frr.conf"]).stdout
    assert "ip address 198.51.100.5/30" in conf
    assert ospf.exec("h1", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
    banner = ospf.exec("h1", ["cat", "/etc/issue.net"]).stdout
    assert banner == (TOPOLOGY.parent / "configs" / "banner.txt").read_text()
    log = (ospf.plan.node_dir("h1") / "exec.log").read_text()
    assert "ip addr add 203.0.113.2/28 dev eth1" in log


def test_management_addresses_come_from_the_subnet(ospf: Lab) -> None:
    expected = {n: f"198.18.4.{i}" for i, n in enumerate(("r1", "r2", "r3", "h1", "h2"), 2)}
    assert {n: ospf.mgmt_ip(n) for n in expected} == expected
    report = lab_status(ospf)
    assert report["converged"], report["problems"]
    assert all(report["nodes"][n]["sshd"] for n in expected)


def _nornir(ospf: Lab) -> Any:
    from nornir import InitNornir

    return InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 5}},
        inventory={
            "plugin": "SimpleInventory",
            "options": inventory_files(ospf.plan.inventory_dir),
        },
        logging={"enabled": False},
    )


def test_generated_inventory_drives_nornir_and_napalm(ospf: Lab) -> None:
    from nornir_napalm.plugins.tasks import napalm_get

    nr = _nornir(ospf)
    assert {h: nr.inventory.hosts[h].platform for h in nr.inventory.hosts} == {
        **dict.fromkeys(ROUTERS, "frr"),
        **dict.fromkeys(HOSTS, "linux"),
    }
    frr = nr.filter(platform="frr")
    try:
        result = frr.run(task=napalm_get, getters=["facts", "interfaces_ip"])
        assert not result.failed, {h: r.exception for h, r in result.items() if r.failed}
        for host, multi in result.items():
            facts = multi[0].result["facts"]
            assert facts["hostname"] == host
            own = set(nr.inventory.hosts[host]["addresses"])
            seen = {ip for i in multi[0].result["interfaces_ip"].values() for ip in i["ipv4"]}
            assert own <= seen, host
    finally:
        nr.close_connections()


# NAPALM's generic getter tests that need no mocked data and no Internet destination;
# each is run unwrapped (its body: real calls + test_model on the result).
GENERIC_GETTER_TESTS = (
    "test_is_alive",
    "test_get_facts",
    "test_get_interfaces",
    "test_get_interfaces_ip",
    "test_get_bgp_neighbors",
    "test_get_arp_table",
    "test_get_config",
)


@pytest.fixture(scope="module")
def drivers(ospf: Lab) -> Iterator[dict[str, Any]]:
    """One NAPALM ``frr`` driver per router, opened from the generated inventory alone."""
    import napalm

    hosts = yaml.safe_load((ospf.plan.inventory_dir / "hosts.yaml").read_text())
    defaults = yaml.safe_load((ospf.plan.inventory_dir / "defaults.yaml").read_text())
    optional = defaults["connection_options"]["napalm"]["extras"]["optional_args"]
    driver_class = napalm.get_network_driver("frr")
    opened = {}
    try:
        for router in ROUTERS:
            driver = driver_class(
                hosts[router]["hostname"],
                defaults["username"],
                defaults["password"],
                optional_args=optional,
            )
            driver.open()
            opened[router] = driver
        yield opened
    finally:
        for driver in opened.values():
            driver.close()


@pytest.mark.parametrize("router", ROUTERS)
def test_napalm_generic_getter_tests_accept_every_router(
    drivers: dict[str, Any], router: str
) -> None:
    from napalm.base.test.getters import BaseTestGetters

    class OnThisRouter(BaseTestGetters):  # type: ignore[misc]
        device = drivers[router]

    case = OnThisRouter()
    for name in GENERIC_GETTER_TESTS:
        # functools.wraps keeps the test body as __wrapped__: no mocked data involved.
        getattr(BaseTestGetters, name).__wrapped__(case, "lab")


@pytest.mark.parametrize("router", ROUTERS)
def test_napalm_models_accept_lab_destinations(
    ospf: Lab, drivers: dict[str, Any], router: str
) -> None:
    from napalm.base import models
    from napalm.base.test.helpers import test_model

    driver = drivers[router]
    routes = driver.get_route_to("203.0.113.16/28", protocol="ospf" if router != "r3" else "")
    assert routes and all(test_model(models.RouteDict, r) for rs in routes.values() for r in rs)
    ping = driver.ping(HOSTS["h2"], count=2, timeout=1)
    assert test_model(models.PingDict, ping["success"])
    assert ping["success"]["packet_loss"] == 0
    trace = driver.traceroute(HOSTS["h2"], ttl=4, timeout=1)
    for hop in trace["success"].values():
        for probe in hop["probes"].values():
            assert test_model(models.TracerouteDict, probe)


def test_router_without_bgpd_reports_an_empty_global_table(drivers: dict[str, Any]) -> None:
    neighbors = drivers["r1"].get_bgp_neighbors()
    assert neighbors["global"]["peers"] == {}


def test_linux_hosts_answer_ssh_with_the_inventorys_credentials(ospf: Lab) -> None:
    import paramiko

    nr = _nornir(ospf)
    for name in HOSTS:
        host = nr.inventory.hosts[name]
        options = host.get_connection_parameters("napalm").extras["optional_args"]
        client = paramiko.SSHClient()
        client.load_host_keys(options["known_hosts_file"])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            host.hostname,
            username=host.username,
            password=host.password,
            look_for_keys=False,
            allow_agent=False,
            timeout=5,
        )
        try:
            _, out, _ = client.exec_command("hostname", timeout=10)
            assert out.read().decode().strip() == name
        finally:
            client.close()


def _lock_held_by_an_ancestor() -> bool:
    """True when this process runs under ``flock /tmp/drill-lab.lock ...`` already."""
    pid = os.getppid()
    while pid > 1:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if cmdline and cmdline[0].endswith(b"flock") and LOCK.encode() in cmdline:
            return True
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


@contextlib.contextmanager
def two_dc_lock() -> Iterator[None]:
    if _lock_held_by_an_ancestor():
        yield
        return
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_two_labs_up_at_the_same_time(ospf: Lab) -> None:
    two_dc = Lab(TWO_DC)
    with two_dc_lock():
        was_up = (two_dc.plan.run_dir / "state.json").exists()
        try:
            two_dc.up()
            both = (lab_status(two_dc), lab_status(ospf))
            assert all(r["converged"] for r in both), [r["problems"] for r in both]
            assert pings(ospf, "h1", HOSTS["h2"])
            client = two_dc.exec("client", ["curl", "-s", "--max-time", "2", "http://192.0.2.10/"])
            assert client.stdout == "app1\n"
            assert not set(two_dc.plan.netns_names) & set(ospf.plan.netns_names)
            assert not set(host_ifaces(two_dc.plan)) & set(host_ifaces(ospf.plan))
            assert two_dc.plan.run_dir != ospf.plan.run_dir
            assert not two_dc.plan.mgmt_gateway.network.overlaps(ospf.plan.mgmt_gateway.network)
        finally:
            if not was_up:
                two_dc.down()
    assert pings(ospf, "h1", HOSTS["h2"]), "taking two-dc down left this lab alone"


def _copy(tmp_path: Path, name: str, replace: dict[str, str]) -> Path:
    copy = tmp_path / name
    shutil.copytree(TOPOLOGY.parent, copy, ignore=shutil.ignore_patterns("clab-*"))
    topo = copy / TOPOLOGY.name
    text = topo.read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    topo.write_text(text)
    return topo


def test_a_clashing_copy_is_refused_and_touches_nothing(ospf: Lab, tmp_path: Path) -> None:
    before = _lab_pids(ospf)
    # Same name, another topology: up would otherwise tear the running lab down and rebuild.
    changed = {"# An OSPF triangle": "# A changed copy of an OSPF triangle"}
    same_name = Lab(_copy(tmp_path, "same-name", changed))
    with pytest.raises(LabError, match=r"is up from .*ospf\.clab\.yml, a different topology"):
        same_name.up()
    # An identical copy is the same lab: up finds it up.
    assert Lab(_copy(tmp_path, "identical", {})).up().already_up
    same_subnet = Lab(_copy(tmp_path, "same-subnet", {"name: drill-ospf": "name: ospf-copy"}))
    with pytest.raises(LabError) as info:
        same_subnet.up()
    assert f"198.18.4.1/24 on host interface {ospf.plan.mgmt_bridge}" in str(info.value)
    assert not [ns for ns in existing_netns() if ns.startswith("ospf-copy-")]
    assert not same_subnet.plan.run_dir.exists()
    assert _lab_pids(ospf) == before
    poll("h1 -> h2 still", lambda: pings(ospf, "h1", HOSTS["h2"]))


def _lab_pids(lab: Lab) -> set[int]:
    pids: set[int] = set()
    for node in lab.plan.nodes.values():
        out = subprocess.run(["ip", "netns", "pids", node.netns], capture_output=True, text=True)
        pids |= {int(p) for p in out.stdout.split()}
    return pids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    return {line.split()[0].split("@")[0] for line in out.splitlines() if line.strip()}


def test_down_leaves_nothing_and_up_again_keeps_the_addresses(ospf: Lab) -> None:
    """Last in this module: the lab goes down, is checked empty, and comes back the same."""
    hosts_before = yaml.safe_load((ospf.plan.inventory_dir / "hosts.yaml").read_text())
    pids = _lab_pids(ospf)
    assert pids
    done = subprocess.run([*DRILL, "lab", "down", str(TOPOLOGY)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not set(ospf.plan.netns_names) & existing_netns()
    assert not [pid for pid in pids if _alive(pid)]
    assert not set(host_ifaces(ospf.plan)) & _host_links()
    assert not ospf.plan.run_dir.exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(ospf.plan.run_dir) not in mounts

    result = ospf.up()
    assert not result.already_up and result.inventory == ospf.plan.inventory_dir
    hosts_after = yaml.safe_load((ospf.plan.inventory_dir / "hosts.yaml").read_text())
    assert hosts_after == hosts_before
    poll("h1 -> h2 again", lambda: pings(ospf, "h1", HOSTS["h2"]))
