"""The FRR NAPALM driver against the two-dc lab: getters on every FRR node, configuration
round trips that change real behaviour (VRRP mastership), the device-side revert timer
surviving a killed controller, rejected lines, host keys, and nornir.

Serialize lab use: ``flock /tmp/drill-lab.lock .venv/bin/pytest tests/lab/test_driver.py``.
Every test leaves the running configurations as it found them (checked by ``guard``).
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import napalm
import pytest
import yaml
from napalm.base.exceptions import (
    CommandErrorException,
    CommitError,
    ConnectionException,
    MergeConfigException,
)

from drill.drivers.frr.config import normalize_running_config
from drill.drivers.frr.driver import FRRDriver
from drill.drivers.frr.models import conforms
from drill.drivers.frr.revert import DEFAULT_STATE_DIR
from drill.lab.node import LAB_PASSWORD

pytestmark = pytest.mark.lab

T = TypeVar("T")
FRR_NODES = ("wan", "dc1-edge", "dc2-edge", "app1", "app2")
EDGES = ("dc1-edge", "dc2-edge")
GATEWAY_VIP = "192.0.2.1"
GUARD_FILE = "/var/run/frr/drill-test-guard.conf"


def poll(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def running(lab: Any, node: str) -> str:
    """Normalized running config read without the driver (an independent witness)."""
    done = lab.exec(node, ["vtysh", "-c", "show running-config"])
    assert done.returncode == 0, done.stderr
    return normalize_running_config(done.stdout)


def hosts(lab: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((Path(lab.inventory_dir) / "hosts.yaml").read_text())
    return data


def make_driver(lab: Any, node: str, **optional: Any) -> FRRDriver:
    args = {"known_hosts_file": str(lab.known_hosts), **optional}
    return FRRDriver(lab.mgmt_ip(node), "root", LAB_PASSWORD, optional_args=args)


@pytest.fixture(scope="module", autouse=True)
def no_driver_files_left(lab: Any) -> Iterator[None]:
    """The driver's device-side files (STATE dir) go away with this module's tests."""
    yield
    for node in FRR_NODES:
        lab.exec(node, ["rm", "-rf", DEFAULT_STATE_DIR])


@pytest.fixture
def connect(lab: Any) -> Iterator[Callable[[str], FRRDriver]]:
    opened: list[FRRDriver] = []

    def _connect(node: str) -> FRRDriver:
        driver = make_driver(lab, node)
        driver.open()
        opened.append(driver)
        return driver

    yield _connect
    for driver in opened:
        driver.close()


def _force_restore(lab: Any, node: str, config: str) -> None:
    """Put `config` back without the driver: stop any revert timer, frr-reload it."""
    state = DEFAULT_STATE_DIR
    script = (
        f"if [ -f {state}/pending ]; then read pid d < {state}/pending; "
        f'kill -TERM -- "-$pid" 2>/dev/null; rm -f {state}/pending; fi; '
        f"printf %s {shlex.quote(config)} > {GUARD_FILE} && "
        f"/usr/lib/frr/frr-reload.py --reload {GUARD_FILE}; rm -f {GUARD_FILE}"
    )
    lab.exec(node, ["sh", "-c", script])


@pytest.fixture
def guard(lab: Any) -> Iterator[dict[str, str]]:
    """Snapshot the edges' running configs; after the test they must be identical again."""
    before = {node: running(lab, node) for node in EDGES}
    yield before
    changed = [node for node in EDGES if running(lab, node) != before[node]]
    for node in changed:
        _force_restore(lab, node, before[node])
    for node in EDGES:
        lab.exec(node, ["rm", "-rf", DEFAULT_STATE_DIR])
    assert not changed, f"test left the running config of {changed} changed (restored now)"


def alive(lab: Any, node: str, pid: str) -> bool:
    """A process that exists and is not a zombie (nobody may reap it in the lab)."""
    done = lab.exec(node, ["cat", f"/proc/{pid}/stat"])
    return done.returncode == 0 and done.stdout.split()[2] != "Z"


def vrrp_group(driver: FRRDriver, vrid: int = 1) -> tuple[str, dict[str, Any]]:
    for interface, groups in driver.get_vrrp().items():
        if vrid in groups:
            return interface, groups[vrid]
    pytest.fail(f"no VRRP vrid {vrid} on {driver.hostname}")


def vrrp_state(driver: FRRDriver) -> str:
    return str(vrrp_group(driver)[1]["state"])


# -- getters --------------------------------------------------------------------------------


@pytest.mark.parametrize("node", FRR_NODES)
def test_every_getter_matches_its_model(lab: Any, connect: Any, node: str) -> None:
    driver = connect(node)
    first_hop = {"app1": GATEWAY_VIP, "app2": GATEWAY_VIP}
    neighbours = {"wan": "198.51.100.2", "dc1-edge": "198.51.100.1", "dc2-edge": "198.51.100.5"}
    target = first_hop.get(node) or neighbours[node]
    results = {
        "is_alive": driver.is_alive(),
        "get_facts": driver.get_facts(),
        "get_interfaces": driver.get_interfaces(),
        "get_interfaces_ip": driver.get_interfaces_ip(),
        "get_bgp_neighbors": driver.get_bgp_neighbors(),
        "get_bgp_neighbors_detail": driver.get_bgp_neighbors_detail(),
        "get_arp_table": driver.get_arp_table(),
        "get_route_to": driver.get_route_to("192.0.2.0/24"),
        "get_config": driver.get_config(),
        "ping": driver.ping(target, count=2, timeout=1),
        "traceroute": driver.traceroute(target, ttl=3, timeout=1),
        "get_vrrp": driver.get_vrrp(),
    }
    for getter, result in results.items():
        assert conforms(getter, result), f"{getter} on {node}: {result!r}"
    facts = results["get_facts"]
    assert facts["hostname"] == node
    assert set(facts["interface_list"]) == set(results["get_interfaces"])
    own = set(hosts(lab)[node]["data"]["addresses"])
    assert own <= {
        ip for fam in results["get_interfaces_ip"].values() for ip in fam.get("ipv4", {})
    }
    assert results["ping"]["success"]["packet_loss"] == 0
    assert results["get_config"]["running"].startswith("Building configuration")


def test_dc1_edge_sees_wan_and_dc2_edge_up(lab: Any, connect: Any) -> None:
    inventory = hosts(lab)
    peers = connect("dc1-edge").get_bgp_neighbors()["global"]["peers"]
    for neighbour in ("wan", "dc2-edge"):
        (address,) = set(peers) & set(inventory[neighbour]["data"]["addresses"])
        assert peers[address]["is_up"], f"{neighbour} ({address}) down: {peers[address]}"
        assert peers[address]["address_family"]["ipv4"]["received_prefixes"] >= 1


def test_vrrp_dc1_edge_is_master_of_the_gateway_vip(connect: Any) -> None:
    _, master = vrrp_group(connect("dc1-edge"))
    _, backup = vrrp_group(connect("dc2-edge"))
    assert master["state"] == "Master" and GATEWAY_VIP in master["virtual_addresses"]
    assert backup["state"] == "Backup" and GATEWAY_VIP in backup["virtual_addresses"]
    assert master["priority"] > backup["priority"]


def test_cli_text_json_and_errors(connect: Any) -> None:
    driver = connect("dc1-edge")
    out = driver.cli(["show bgp summary", "show vrrp"], encoding="json")
    assert "ipv4Unicast" in out["show bgp summary"]
    assert isinstance(out["show vrrp"], list)
    text = driver.cli(["show version"])["show version"]
    assert "FRRouting" in text and "dc1-edge" in text
    with pytest.raises(CommandErrorException, match="Unknown command"):
        driver.cli(["show no-such-thing"])


def test_get_route_to_longer_and_protocol(connect: Any) -> None:
    driver = connect("wan")
    routes = driver.get_route_to("192.0.2.0/24", protocol="bgp")
    assert routes["192.0.2.0/24"] and {r["protocol"] for r in routes["192.0.2.0/24"]} == {"bgp"}
    longer = driver.get_route_to("192.0.0.0/16", longer=True)
    assert "192.0.2.0/24" in longer


# -- configuration --------------------------------------------------------------------------


def test_merge_moves_vrrp_mastership_and_rollback_moves_it_back(
    connect: Any, guard: dict[str, str], lab: Any
) -> None:
    dc1, dc2 = connect("dc1-edge"), connect("dc2-edge")
    interface, group = vrrp_group(dc2)
    above = vrrp_group(dc1)[1]["priority"] + 10
    dc2.load_merge_candidate(config=f"interface {interface}\n vrrp 1 priority {above}\nexit\n")
    diff = dc2.compare_config()
    assert f"+  vrrp 1 priority {above}" in diff
    dc2.commit_config()
    assert not dc2.has_pending_commit()
    poll("dc2-edge to become master", lambda: vrrp_state(dc2) == "Master")
    poll("dc1-edge to step down", lambda: vrrp_state(dc1) == "Backup")
    dc2.rollback()
    poll("dc1-edge to be master again", lambda: vrrp_state(dc1) == "Master")
    poll("dc2-edge to be backup again", lambda: vrrp_state(dc2) == "Backup")
    assert running(lab, "dc2-edge") == guard["dc2-edge"]
    assert vrrp_group(dc2)[1]["priority"] == group["priority"]


def test_replace_moves_mastership_with_compare_discard_commit_and_rollback(
    connect: Any, guard: dict[str, str], lab: Any
) -> None:
    dc1, dc2 = connect("dc1-edge"), connect("dc2-edge")
    before = guard["dc1-edge"]
    _, group = vrrp_group(dc1)
    old = f" vrrp 1 priority {group['priority']}"
    assert old in before  # dc1-edge's priority is configured (not the default 100)
    below = vrrp_group(dc2)[1]["priority"] - 10
    new = before.replace(old, f" vrrp 1 priority {below}")
    dc1.load_replace_candidate(config=new)
    diff = dc1.compare_config()
    assert f"- {old}" in diff and f"+  vrrp 1 priority {below}" in diff
    assert dc1.get_config(retrieve="candidate")["candidate"] == normalize_running_config(new)
    dc1.discard_config()
    assert dc1.compare_config() == ""
    assert running(lab, "dc1-edge") == before
    dc1.load_replace_candidate(config=new)
    dc1.commit_config(message="drain dc1-edge")
    assert running(lab, "dc1-edge") == normalize_running_config(new)
    poll("dc2-edge to become master", lambda: vrrp_state(dc2) == "Master")
    # nothing left to do: the same candidate again compares empty
    dc1.load_replace_candidate(config=new)
    assert dc1.compare_config() == ""
    dc1.discard_config()
    dc1.rollback()
    assert running(lab, "dc1-edge") == before
    poll("dc1-edge to be master again", lambda: vrrp_state(dc1) == "Master")


@pytest.mark.parametrize("revert_in", [None, 60])
def test_rejected_line_leaves_running_config_as_before(
    connect: Any, guard: dict[str, str], lab: Any, revert_in: int | None
) -> None:
    dc1 = connect("dc1-edge")
    wan = next(iter(set(dc1.get_bgp_neighbors()["global"]["peers"]) & {"198.51.100.1"}))
    # syntactically fine, so it passes the dry run; bgpd rejects the first line when
    # applying, after the second one went in: the driver must restore the snapshot
    dc1.load_merge_candidate(
        config=(
            "router bgp 64500\n neighbor 198.51.100.77 description no-such-peer\n"
            f" neighbor {wan} description changed-by-test\nexit\n"
        )
    )
    with pytest.raises(CommitError, match="remote-as"):
        dc1.commit_config(revert_in=revert_in)
    assert running(lab, "dc1-edge") == guard["dc1-edge"]
    assert not dc1.has_pending_commit()


def test_unknown_command_is_refused_at_load(connect: Any, guard: dict[str, str]) -> None:
    dc1 = connect("dc1-edge")
    with pytest.raises(MergeConfigException, match="Unknown command"):
        dc1.load_merge_candidate(config="router bgp 64500\n bgp no-such-knob 1\n")
    assert dc1.compare_config() == ""


def test_pending_commit_refuses_another_and_confirm_disarms(
    connect: Any, guard: dict[str, str], lab: Any
) -> None:
    dc2 = connect("dc2-edge")
    interface, _ = vrrp_group(dc2)
    change = f"interface {interface}\n description drill-test-confirm\nexit\n"
    dc2.load_merge_candidate(config=change)
    dc2.commit_config(revert_in=60)
    assert dc2.has_pending_commit()
    dc2.load_merge_candidate(config=change)
    with pytest.raises(CommitError, match="pending"):
        dc2.commit_config()
    dc2.discard_config()
    timer = lab.exec("dc2-edge", ["cat", f"{DEFAULT_STATE_DIR}/pending"]).stdout.split()[0]
    dc2.confirm_commit()
    assert not dc2.has_pending_commit()
    assert not alive(lab, "dc2-edge", timer), "the revert timer still runs after confirm"
    assert "description drill-test-confirm" in running(lab, "dc2-edge")
    with pytest.raises(CommitError):
        dc2.confirm_commit()
    dc2.rollback()
    assert running(lab, "dc2-edge") == guard["dc2-edge"]


def test_rollback_while_pending_reverts_at_once(
    connect: Any, guard: dict[str, str], lab: Any
) -> None:
    dc2 = connect("dc2-edge")
    interface, _ = vrrp_group(dc2)
    dc2.load_merge_candidate(config=f"interface {interface}\n description drill-test-rb\nexit\n")
    dc2.commit_config(revert_in=120)
    assert "drill-test-rb" in running(lab, "dc2-edge")
    dc2.rollback()
    assert not dc2.has_pending_commit()
    assert running(lab, "dc2-edge") == guard["dc2-edge"]


_COMMIT_AND_HANG = """
import sys, time
from drill.drivers.frr.driver import FRRDriver
host, password, known_hosts, config, seconds = sys.argv[1:6]
driver = FRRDriver(host, "root", password, optional_args={"known_hosts_file": known_hosts})
driver.open()
driver.load_merge_candidate(config=config)
driver.commit_config(revert_in=int(seconds))
print("committed", flush=True)
time.sleep(3600)
"""


def test_revert_timer_fires_on_the_device_when_the_controller_is_killed(
    lab: Any, connect: Any, guard: dict[str, str], tmp_path: Path
) -> None:
    dc1, dc2 = connect("dc1-edge"), connect("dc2-edge")
    interface, _ = vrrp_group(dc2)
    above = vrrp_group(dc1)[1]["priority"] + 10
    config = f"interface {interface}\n vrrp 1 priority {above}\nexit\n"
    seconds = 6
    script = tmp_path / "commit_and_hang.py"
    script.write_text(_COMMIT_AND_HANG)
    argv = [sys.executable, str(script), lab.mgmt_ip("dc2-edge"), LAB_PASSWORD]
    argv += [str(lab.known_hosts), config, str(seconds)]
    controller = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert controller.stdout is not None
        assert controller.stdout.readline().strip() == "committed"
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait()
    assert dc2.has_pending_commit()
    assert running(lab, "dc2-edge") != guard["dc2-edge"]
    poll("dc2-edge to take over", lambda: vrrp_state(dc2) == "Master")
    poll(
        "the device to revert by itself",
        lambda: running(lab, "dc2-edge") == guard["dc2-edge"],
        timeout=seconds + 20,
    )
    poll("the timer to finish", lambda: not dc2.has_pending_commit())
    assert running(lab, "dc2-edge") == guard["dc2-edge"]
    poll("dc1-edge to be master again", lambda: vrrp_state(dc1) == "Master")


# -- connection and integration ---------------------------------------------------------------


def test_host_key_policies(lab: Any, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    strict = make_driver(lab, "wan", known_hosts_file=str(empty))
    with pytest.raises(ConnectionException, match="known_hosts"):
        strict.open()
    assert strict.is_alive() == {"is_alive": False}
    learning = make_driver(lab, "wan", known_hosts_file=str(empty), host_key_policy="accept-new")
    learning.open()
    learning.close()
    assert lab.mgmt_ip("wan") in empty.read_text()
    again = make_driver(lab, "wan", known_hosts_file=str(empty))
    again.open()
    assert again.is_alive() == {"is_alive": True}
    again.close()
    # a changed key is refused even by accept-new
    wrong = tmp_path / "wrong_known_hosts"
    other = lab.mgmt_ip("dc1-edge")
    keys = [line for line in Path(lab.known_hosts).read_text().splitlines() if other in line]
    wrong.write_text("".join(f"{lab.mgmt_ip('wan')} {k.split(' ', 1)[1]}\n" for k in keys))
    mismatch = make_driver(lab, "wan", known_hosts_file=str(wrong), host_key_policy="accept-new")
    with pytest.raises(ConnectionException, match="does not match"):
        mismatch.open()


def test_napalm_get_network_driver_and_nornir(lab: Any) -> None:
    assert napalm.get_network_driver("frr") is FRRDriver
    from nornir import InitNornir
    from nornir_napalm.plugins.tasks import napalm_get

    inventory = Path(lab.inventory_dir)
    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 5}},
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(inventory / "hosts.yaml"),
                "group_file": str(inventory / "groups.yaml"),
                "defaults_file": str(inventory / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )
    frr = nr.filter(platform="frr")
    assert set(frr.inventory.hosts) == set(FRR_NODES)
    try:
        result = frr.run(task=napalm_get, getters=["facts", "bgp_neighbors"])
        assert not result.failed, {h: r.exception for h, r in result.items() if r.failed}
        for host, multi in result.items():
            assert multi[0].result["facts"]["hostname"] == host
    finally:
        nr.close_connections()
