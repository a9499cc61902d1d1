"""The two-dc lab on the built-in backend: convergence, idempotence, faults, isolation, cleanup.

Needs root; run serialized with the other lab users:
``flock /tmp/drill-lab.lock .venv/bin/pytest -m lab tests/lab/test_lab.py``.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from drill.errors import LabError
from drill.lab.faults import apply_fault, clear_faults
from drill.lab.lab import Lab
from drill.lab.node import LAB_PASSWORD, NodeRuntime
from drill.lab.state import load_state
from drill.lab.status import lab_status

pytestmark = pytest.mark.lab

T = TypeVar("T")
MGMT_NET = ipaddress.IPv4Network("198.18.0.0/24")
BGP_NODES = ("wan", "dc1-edge", "dc2-edge")


def poll(what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    """Wait for ``probe`` to return something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def vtysh_json(lab: Any, node: str, command: str) -> Any:
    proc = lab.exec(node, ["vtysh", "-c", command])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def bfd_status(lab: Any, node: str, peer: str) -> str:
    peers = vtysh_json(lab, node, "show bfd peers json")
    return next((p["status"] for p in peers if p["peer"] == peer), "absent")


def operstate(lab: Any, node: str, iface: str) -> str:
    proc = lab.exec(node, ["ip", "-j", "link", "show", "dev", iface])
    return str(json.loads(proc.stdout)[0]["operstate"])


@pytest.fixture
def no_faults(lab: Any) -> Iterator[None]:
    yield
    clear_faults(lab.impl)


def test_lab_converges(lab: Any) -> None:
    report = lab_status(lab.impl)
    assert report["up"] and report["converged"], report["problems"]
    for node in BGP_NODES:
        sessions = report["nodes"][node]["bgp"]
        assert len(sessions) == 2
        assert set(sessions.values()) == {"Established"}
    vrrp = {
        (node, group["vrid"]): group["state"]
        for node in ("dc1-edge", "dc2-edge", "app1", "app2")
        for group in report["nodes"][node]["vrrp"]
    }
    assert vrrp == {
        ("dc1-edge", 1): "Master",
        ("dc2-edge", 1): "Backup",
        ("app1", 10): "Master",
        ("app2", 10): "Backup",
    }
    http = lab.exec("client", ["curl", "-s", "--max-time", "2", "http://192.0.2.10/"])
    assert http.stdout == "app1\n"


def test_wan_learns_the_server_prefix_from_both_sites(lab: Any) -> None:
    route = vtysh_json(lab, "wan", "show bgp ipv4 unicast 192.0.2.0/24 json")
    next_hops = {p["nexthops"][0]["ip"] for p in route["paths"]}
    assert next_hops == {"198.51.100.2", "198.51.100.6"}


def test_up_twice_is_harmless(lab: Any) -> None:
    before = load_state(lab.impl.plan)
    assert before is not None
    result = lab.impl.up()
    after = load_state(lab.impl.plan)
    assert result.already_up
    assert after is not None and after.holders == before.holders
    assert lab_status(lab.impl)["converged"]


def test_ssh_gives_a_standalone_frr_box(lab: Any) -> None:
    paramiko = pytest.importorskip("paramiko")
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        lab.mgmt_ip("dc1-edge"),
        username="root",
        password=LAB_PASSWORD,
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
    )
    try:

        def run(command: str) -> str:
            _, out, err = client.exec_command(command, timeout=20)
            status = out.channel.recv_exit_status()
            text = out.read().decode()
            assert status == 0, err.read().decode()
            return text

        assert run("hostname").strip() == "dc1-edge"
        # The node's own, empty home: none of the host's dotfiles run in a session.
        home = run("ls -A ~").split()
        assert ".bashrc" not in home and ".profile" not in home, home
        summary = json.loads(run("vtysh -c 'show bgp summary json'"))
        assert summary["ipv4Unicast"]["routerId"] == "198.51.100.2"
        # frr-reload (used by the NAPALM driver for replace) works against this node's daemons.
        run("/usr/lib/frr/frr-reload.py --test /etc/frr/frr.conf")
    finally:
        client.close()


def test_blackhole_keeps_links_up_but_bfd_sees_the_peer_down(lab: Any, no_faults: None) -> None:
    assert bfd_status(lab, "wan", "198.51.100.2") == "up"
    apply_fault(lab.impl, "link", "wan:dc1-edge", "blackhole")
    poll("wan's BFD peer dc1-edge down", lambda: bfd_status(lab, "wan", "198.51.100.2") == "down")
    assert operstate(lab, "wan", "eth1") == "UP"
    assert operstate(lab, "dc1-edge", "eth1") == "UP"
    assert [f["mode"] for f in lab_status(lab.impl)["faults"]] == ["blackhole"]
    clear_faults(lab.impl, "link", "dc1-edge:wan")
    poll("wan's BFD peer dc1-edge up", lambda: bfd_status(lab, "wan", "198.51.100.2") == "up")
    poll("BGP wan-dc1 Established", lambda: lab_status(lab.impl)["converged"], timeout=20)


def test_link_down_fault_and_clear(lab: Any, no_faults: None) -> None:
    apply_fault(lab.impl, "link", "dc1-edge:dc2-edge", "down")
    assert operstate(lab, "dc1-edge", "eth2") == "DOWN"
    assert operstate(lab, "dc2-edge", "eth2") != "UP"
    clear_faults(lab.impl)
    poll("DCI link up", lambda: operstate(lab, "dc2-edge", "eth2") == "UP")
    poll("lab converged again", lambda: lab_status(lab.impl)["converged"], timeout=20)


def test_node_down_moves_the_gateway_to_dc2(lab: Any, no_faults: None) -> None:
    apply_fault(lab.impl, "node", "dc1-edge", "down")

    def dc2_state() -> str:
        groups = vtysh_json(lab, "dc2-edge", "show vrrp json")
        return str(groups[0]["v4"]["status"])

    poll("dc2-edge VRRP master", lambda: dc2_state() == "Master")
    clear_faults(lab.impl)
    poll("dc2-edge VRRP backup again", lambda: dc2_state() == "Backup")
    poll("lab converged again", lambda: lab_status(lab.impl)["converged"], timeout=20)


def test_mgmt_fault_cuts_management_only(lab: Any, no_faults: None) -> None:
    def ssh_answers(timeout: float = 2.0) -> bool:
        try:
            with socket.create_connection((lab.mgmt_ip("app2"), 22), timeout=timeout) as sock:
                return sock.recv(4).startswith(b"SSH")
        except OSError:
            return False

    poll("app2's sshd answering", ssh_answers)
    apply_fault(lab.impl, "mgmt", "app2", "blackhole")
    assert not ssh_answers()
    ping = ["ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.11"]
    assert lab.exec("app2", ping).returncode == 0, "the data path must stay up"
    clear_faults(lab.impl, "mgmt", "app2")
    poll("app2's sshd answering again", ssh_answers)


def test_fault_on_unknown_target_is_an_input_error(lab: Any) -> None:
    from drill.errors import InputError

    with pytest.raises(InputError):
        apply_fault(lab.impl, "node", "nope", "down")
    with pytest.raises(InputError):
        apply_fault(lab.impl, "link", "wan:dc1-edge", "sideways")


def test_client_cannot_reach_management_through_a_router(lab: Any) -> None:
    # Positive control: the data path itself works from the same interface.
    control = ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "eth1", "192.0.2.10"]
    assert lab.exec("client", control).returncode == 0
    for node in ("wan", "dc1-edge", "dc2-edge", "app1"):
        proc = lab.exec("client", ["ping", "-c", "1", "-W", "1", "-I", "eth1", lab.mgmt_ip(node)])
        assert proc.returncode != 0, f"{node}'s management address answers over the data path"


def _leaks_to_mgmt_bridge(lab: Any) -> bool:
    """Does traffic from the client's data address reach the host's management bridge?"""
    bridge = lab.impl.plan.mgmt_bridge
    capture = subprocess.Popen(
        ["tcpdump", "-l", "-n", "-i", bridge, "-c", "1", "src", "203.0.113.10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert capture.stderr is not None
        # tcpdump says "listening on ..." once its capture is open: only then send.
        for _ in range(3):
            if "listening on" in capture.stderr.readline():
                break
        else:
            pytest.fail("tcpdump did not start listening")
        gateway = str(lab.impl.plan.mgmt_gateway.ip)
        lab.exec("client", ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "eth1", gateway])
        try:
            out, _ = capture.communicate(timeout=1.5)
        except subprocess.TimeoutExpired:
            return False
        return "203.0.113.10" in out
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()


def test_routers_never_forward_into_management(lab: Any) -> None:
    assert not _leaks_to_mgmt_bridge(lab)
    # The check can fail: without wan's rules the same traffic does leak.
    lab.exec("wan", ["nft", "delete", "table", "inet", "drill_mgmt"])
    try:
        assert _leaks_to_mgmt_bridge(lab)
    finally:
        NodeRuntime(lab.impl.plan, lab.impl.plan.node("wan")).isolate_mgmt()
    assert not _leaks_to_mgmt_bridge(lab)


def test_inventory_reaches_every_host_with_plain_nornir(lab: Any) -> None:
    """The committed inventory works as is: address, credentials and known_hosts per host."""
    nornir = pytest.importorskip("nornir")
    paramiko = pytest.importorskip("paramiko")
    nr = nornir.InitNornir(
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(lab.inventory_dir / "hosts.yaml"),
                "group_file": str(lab.inventory_dir / "groups.yaml"),
                "defaults_file": str(lab.inventory_dir / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )
    assert set(nr.inventory.hosts) == {"wan", "dc1-edge", "dc2-edge", "app1", "app2", "client"}
    for name, host in nr.inventory.hosts.items():
        options = host.get_connection_parameters("napalm").extras["optional_args"]
        client = paramiko.SSHClient()
        client.load_host_keys(options["known_hosts_file"])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            host.hostname,
            port=host.port or 22,
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
        assert host.platform == ("linux" if name == "client" else "frr")


def test_no_routing_protocol_carries_the_management_prefix(lab: Any) -> None:
    for node in BGP_NODES:
        table = vtysh_json(lab, node, "show bgp ipv4 unicast json")
        prefixes = [ipaddress.IPv4Network(p) for p in table["routes"]]
        assert prefixes, node
        assert not [p for p in prefixes if p.overlaps(MGMT_NET)], node


def test_failed_up_cleans_up_and_says_why(tmp_path: Path) -> None:
    """A broken copy of the lab (own name, own mgmt subnet) fails one clear line, leaves nothing."""
    repo = Path(__file__).resolve().parents[2]
    copy = tmp_path / "labs" / "broken"
    shutil.copytree(repo / "labs" / "two-dc", copy)
    # the lab binds the session probes' echo server from the package, two levels up
    (tmp_path / "drill" / "probes").mkdir(parents=True)
    shutil.copy(repo / "drill" / "probes" / "echo_server.py", tmp_path / "drill" / "probes")
    topo = copy / "two-dc.clab.yml"
    text = topo.read_text().replace("name: two-dc", "name: brk").replace("198.18.0.", "198.18.9.")
    topo.write_text(text)
    conf = copy / "dc2-edge" / "frr.conf"
    conf.write_text(
        conf.read_text().replace("router bgp 64500", "router bgp 64500\n bogus command")
    )
    broken = Lab(copy)
    try:
        with pytest.raises(LabError) as info:
            broken.up(timeout=20)
        leftovers = [ns for ns in _netns() if ns.startswith("brk-")]
        run_dir_left = broken.plan.run_dir.exists()
        bridge = ["ip", "link", "show", broken.plan.mgmt_bridge]
        bridge_left = subprocess.run(bridge, capture_output=True).returncode == 0
    finally:
        broken.down()  # only matters when the assertions below are about to fail
    message = str(info.value)
    assert "\n" not in message and "dc2-edge" in message
    assert not leftovers
    assert not run_dir_left
    assert not bridge_left


def _netns() -> list[str]:
    run_netns = Path("/run/netns")
    return [p.name for p in run_netns.iterdir()] if run_netns.exists() else []


def _lab_pids(lab: Any) -> set[int]:
    pids: set[int] = set()
    for node in lab.impl.plan.nodes.values():
        out = subprocess.run(["ip", "netns", "pids", node.netns], capture_output=True, text=True)
        pids |= {int(p) for p in out.stdout.split()}
    return pids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_down_leaves_nothing_behind_and_up_recovers_from_leftovers(lab: Any) -> None:
    plan = lab.impl.plan
    pids = _lab_pids(lab)
    assert pids
    lab.down()
    assert not [ns for ns in _netns() if ns.startswith("two-dc-")]
    assert not [pid for pid in pids if _alive(pid)]
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "two-dc" not in mounts and "/run/drill/lab/two-dc" not in mounts
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert not [
        ln for ln in links.splitlines() if ln.split()[0].split("@")[0].startswith("two-dc-")
    ]
    assert not plan.run_dir.exists()

    # Leftovers of a half-made lab: a namespace, the mgmt bridge, a stale state file.
    subprocess.run(["ip", "netns", "add", "two-dc-wan"], check=True)
    subprocess.run(["ip", "link", "add", "name", plan.mgmt_bridge, "type", "bridge"], check=True)
    plan.run_dir.mkdir(parents=True)
    (plan.run_dir / "state.json").write_text("{not json")
    lab.up()
    assert lab_status(lab.impl)["converged"]
