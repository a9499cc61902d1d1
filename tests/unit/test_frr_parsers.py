"""FRR driver parsers against outputs recorded on real FRR 8.4 nodes (tests/unit/data/frr/).

dc1-edge / dc2-edge / app1: the two-dc lab; drvdev: a scratch node (one established eBGP peer,
one peer that never comes up, VRRP master with a 100 ms advert).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import napalm
import pytest

from drill.drivers.frr import parsers
from drill.drivers.frr.config import (
    error_lines,
    merged_target,
    normalize_running_config,
    reload_plan_to_diff,
)
from drill.drivers.frr.driver import FRRDriver
from drill.drivers.frr.models import conforms
from drill.secrets import mask_secrets

DATA = Path(__file__).parent / "data" / "frr"
NODES = ["dc1-edge", "dc2-edge", "drvdev"]


def text(node: str, name: str) -> str:
    return (DATA / node / name).read_text(encoding="utf-8")


def load(node: str, name: str) -> Any:
    return json.loads(text(node, name))


@pytest.mark.parametrize("node", NODES)
def test_every_parsed_getter_matches_napalm_models(node: str) -> None:
    interfaces = load(node, "show_interface.json")
    summary, neighbors = load(node, "show_bgp_summary.json"), load(node, "show_bgp_neighbors.json")
    results = {
        "get_facts": parsers.facts(text(node, "show_version.txt"), interfaces, 12.5),
        "get_interfaces": parsers.interfaces(interfaces),
        "get_interfaces_ip": parsers.interfaces_ip(interfaces),
        "get_bgp_neighbors": parsers.bgp_neighbors(summary, neighbors),
        "get_bgp_neighbors_detail": parsers.bgp_neighbors_detail(neighbors),
        "get_arp_table": parsers.arp_table(load(node, "ip_neigh.json")),
        "get_route_to": parsers.route_to(load(node, "show_ip_route.json")),
        "ping": parsers.ping(text(node, "ping_ok.txt")),
        "traceroute": parsers.traceroute(text(node, "traceroute.txt")),
        "get_vrrp": parsers.vrrp(load(node, "show_vrrp.json")),
    }
    for getter, result in results.items():
        assert result, f"{getter} returned nothing for {node}"
        assert conforms(getter, result), f"{getter} on {node}: {result!r}"


def test_facts_from_show_version() -> None:
    interfaces = load("dc1-edge", "show_interface.json")
    facts = parsers.facts(text("dc1-edge", "show_version.txt"), interfaces, 7.0)
    assert facts["hostname"] == "dc1-edge"
    assert facts["os_version"] == "8.4.4"
    assert facts["vendor"] == "FRRouting"
    assert facts["interface_list"] == sorted(interfaces)
    assert parsers.parse_uptime(text("drvdev", "proc_uptime.txt")) == 1099.25


def test_bgp_neighbors_default_vrf_is_global_and_counts_come_from_both_outputs() -> None:
    result = parsers.bgp_neighbors(
        load("drvdev", "show_bgp_summary.json"), load("drvdev", "show_bgp_neighbors.json")
    )
    assert list(result) == ["global"]
    vrf = result["global"]
    assert vrf["router_id"] == "198.19.255.1"
    up, down = vrf["peers"]["203.0.113.2"], vrf["peers"]["198.51.100.99"]
    assert (up["is_up"], up["is_enabled"], up["remote_as"], up["local_as"]) == (
        True,
        True,
        65002,
        65001,
    )
    assert up["description"] == "drvpeer"
    assert up["remote_id"] == "203.0.113.2"
    assert up["uptime"] == 672
    assert up["address_family"]["ipv4"] == {
        "received_prefixes": 1,
        "accepted_prefixes": 1,
        "sent_prefixes": 2,
    }
    assert (down["is_up"], down["is_enabled"], down["uptime"]) == (False, True, 0)


def test_bgp_neighbors_on_lab_edge_sees_wan_and_other_edge() -> None:
    peers = parsers.bgp_neighbors(
        load("dc1-edge", "show_bgp_summary.json"), load("dc1-edge", "show_bgp_neighbors.json")
    )["global"]["peers"]
    assert {peer: data["is_up"] for peer, data in peers.items()} == {
        "198.51.100.1": True,
        "198.51.100.10": True,
    }


def test_bgp_neighbors_detail_filters_by_address_and_groups_by_remote_as() -> None:
    neighbors = load("drvdev", "show_bgp_neighbors.json")
    detail = parsers.bgp_neighbors_detail(neighbors, "203.0.113.2")
    (peer,) = detail["global"][65002]
    assert peer["remote_address"] == "203.0.113.2"
    assert peer["local_address"] == "203.0.113.1"
    assert (peer["holdtime"], peer["keepalive"]) == (9, 3)
    assert peer["connection_state"] == "Established"
    assert parsers.bgp_neighbors_detail(neighbors, "192.0.2.250") == {}


def test_interfaces_ip_groups_by_family() -> None:
    result = parsers.interfaces_ip(load("drvdev", "show_interface.json"))
    assert result["eth1"]["ipv4"] == {"203.0.113.1": {"prefix_length": 24}}
    assert "lo" not in result  # no addresses, no entry
    assert parsers.interfaces(load("drvdev", "show_interface.json"))["eth1"]["description"] == (
        "link to drvpeer"
    )


def test_arp_table_skips_entries_without_mac() -> None:
    entries = [
        {"dst": "192.0.2.5", "dev": "eth3", "lladdr": "02:00:00:00:00:05", "updated": 3},
        {"dst": "192.0.2.6", "dev": "eth3", "state": ["FAILED"]},
    ]
    assert parsers.arp_table(entries) == [
        {"interface": "eth3", "mac": "02:00:00:00:00:05", "ip": "192.0.2.5", "age": 3.0}
    ]


def test_route_to_one_entry_per_next_hop_and_protocol_filter() -> None:
    table = load("drvdev", "show_ip_route.json")
    routes = parsers.route_to(table)
    (bgp,) = routes["198.19.253.0/24"]
    assert (bgp["protocol"], bgp["next_hop"], bgp["preference"]) == ("bgp", "203.0.113.2", 20)
    assert bgp["outgoing_interface"] == "eth1"
    assert bgp["routing_table"] == "global"
    only_static = parsers.route_to(table, "static")
    assert list(only_static) == ["198.19.254.0/24"]


def test_vrrp_master_and_backup_with_configured_priority() -> None:
    master = parsers.vrrp(load("dc1-edge", "show_vrrp.json"), text("dc1-edge", "show_vrrp.txt"))
    backup = parsers.vrrp(load("dc2-edge", "show_vrrp.json"), text("dc2-edge", "show_vrrp.txt"))
    (master_if,) = master
    assert master[master_if][1]["state"] == "Master"
    assert master[master_if][1]["virtual_addresses"] == ["192.0.2.1"]
    assert master[master_if][1]["priority"] == 200
    (backup_if,) = backup
    assert backup[backup_if][1]["state"] == "Backup"
    assert backup[backup_if][1]["priority"] == 100
    assert backup[backup_if][1]["advertisement_interval_ms"] == 100
    assert backup[backup_if][1]["version"] == 3


def test_vrrp_configured_priority_differs_from_effective() -> None:
    groups = [
        {
            "vrid": 5,
            "version": 3,
            "interface": "eth1",
            "advertisementInterval": 1000,
            "v4": {"status": "Backup", "effectivePriority": 0, "addresses": ["192.0.2.9"]},
            "v6": {"status": "Initialize", "effectivePriority": 0, "addresses": []},
        }
    ]
    shown = " Virtual Router ID     5\n Interface     eth1\n Priority      120\n"
    group = parsers.vrrp(groups, shown)["eth1"][5]
    assert (group["priority"], group["effective_priority"]) == (120, 0)


def test_ping_success_loss_and_error() -> None:
    ok = parsers.ping(text("drvdev", "ping_ok.txt"))["success"]
    assert (ok["probes_sent"], ok["packet_loss"], len(ok["results"])) == (3, 0, 3)
    assert ok["rtt_min"] == 0.052 and ok["rtt_max"] == 0.326
    lost = parsers.ping(text("dc1-edge", "ping_loss.txt"))
    assert conforms("ping", lost)
    assert (lost["success"]["probes_sent"], lost["success"]["packet_loss"]) == (2, 2)
    failed = parsers.ping(text("drvdev", "ping_fail.txt"))
    assert failed == {"error": "ping: connect: Network is unreachable"}


def test_traceroute_hops_stars_and_multiple_addresses() -> None:
    hops = parsers.traceroute(text("app1", "traceroute_client.txt"))["success"]
    assert [hops[i]["probes"][1]["ip_address"] for i in (1, 2, 3)] == [
        "192.0.2.2",
        "198.51.100.1",
        "203.0.113.10",
    ]
    mixed = parsers.traceroute(
        "traceroute to 203.0.113.10 (203.0.113.10), 30 hops max\n"
        " 1  198.51.100.1  0.1 ms 198.51.100.5  0.2 ms *\n"
        " 2  * * *\n"
    )
    assert conforms("traceroute", mixed)
    first = mixed["success"][1]["probes"]
    assert [first[i]["ip_address"] for i in (1, 2, 3)] == ["198.51.100.1", "198.51.100.5", "*"]
    assert mixed["success"][2]["probes"][3]["rtt"] == 0.0
    assert parsers.traceroute("traceroute: unknown host nowhere") == {
        "error": "traceroute: unknown host nowhere"
    }


def test_normalize_running_config_drops_banner_only() -> None:
    raw = text("dc1-edge", "running_config.txt")
    normalized = normalize_running_config(raw)
    assert "Building configuration" not in normalized
    assert "frr version" not in normalized
    assert "hostname dc1-edge\n" in normalized
    assert all(line == line.rstrip() for line in normalized.splitlines())
    # idempotent, and the same whether FRR printed the header or not
    assert normalize_running_config(normalized) == normalized
    no_header = "\n".join(raw.split("\n")[3:])
    assert normalize_running_config(no_header) == normalized


def test_reload_plan_to_diff_is_empty_without_changes_and_marks_changes() -> None:
    assert reload_plan_to_diff("") == ""
    plan = (
        "\nLines To Delete\n===============\nrouter bgp 64500\n address-family ipv4 unicast\n"
        "  no network 192.0.2.0/24\nno ip route 198.19.254.0/24 blackhole\n\n"
        "Lines To Add\n============\nrouter bgp 64500\n neighbor 198.51.100.1 shutdown\n"
    )
    assert reload_plan_to_diff(plan).split("\n") == [
        "  router bgp 64500",
        "   address-family ipv4 unicast",
        "-   network 192.0.2.0/24",
        "- ip route 198.19.254.0/24 blackhole",
        "  router bgp 64500",
        "+  neighbor 198.51.100.1 shutdown",
    ]


def test_error_lines_and_merge_target() -> None:
    output = "line 2: % Unknown command[25]:  bgp foo bar\n"
    assert error_lines(output) == ["line 2: % Unknown command[25]:  bgp foo bar"]
    assert error_lines("% Specify remote-as or peer-group commands first\n")
    assert error_lines("Lines To Add\n============\n") == []
    target = merged_target("hostname r1\n!\nend\n", "router bgp 64500\n")
    assert target.endswith("!\nrouter bgp 64500\n")
    assert "end" not in target.split("\n")


def test_mask_secrets_hides_bgp_password_in_a_diff() -> None:
    diff = "  router bgp 64500\n+  neighbor 198.51.100.1 password s3cret-value"
    masked = mask_secrets(diff)
    assert "s3cret-value" not in masked
    assert "neighbor 198.51.100.1 password" in masked


def test_driver_is_found_by_napalm_and_safe_before_open() -> None:
    driver_class = napalm.get_network_driver("frr")
    assert driver_class is FRRDriver
    driver = driver_class("198.18.0.12", "root", "pw", optional_args={"port": 2222})
    assert driver.is_alive() == {"is_alive": False}
    assert driver.host_key_policy == "strict"
    assert driver.settings.port == 2222
    assert (driver.settings.timeout, driver.settings.command_timeout) == (10.0, 30.0)
    assert "pw" not in repr(driver.settings)
    relaxed = driver_class("h", "u", "p", optional_args={"host_key_policy": "accept-new"})
    assert relaxed.host_key_policy == "accept-new"
    with pytest.raises(ValueError):
        driver_class("h", "u", "p", optional_args={"host_key_policy": "yolo"})


# -- transport framing, against a scripted channel (no SSH) ----------------------------------


class ScriptedChannel:
    """Stands in for a paramiko Channel: `respond` maps what was sent to what comes back."""

    def __init__(self, greeting: str, respond: Any) -> None:
        self.pending: list[bytes] = [greeting.encode()] if greeting else []
        self.respond = respond
        self.sent: list[str] = []
        self.closed = False

    def settimeout(self, timeout: float) -> None:
        self.timeout = timeout

    def recv(self, size: int) -> bytes:
        if not self.pending:
            raise TimeoutError
        return self.pending.pop(0)

    def sendall(self, data: bytes) -> None:
        text = data.decode()
        self.sent.append(text)
        # answers arrive in small pieces, as over a real connection
        answer = self.respond(text).encode()
        self.pending += [answer[i : i + 7] for i in range(0, len(answer), 7)]

    def close(self) -> None:
        self.closed = True


def vtysh_answer(text: str) -> str:
    command = text.rstrip("\n")
    outputs = {
        "terminal length 0": "",
        "show bgp summary json": '{\r\n  "ipv4Unicast":{}\r\n}\r\n',
        "configure terminal": "",
        "end": "",
    }
    if command == "configure terminal":
        return f"{command}\r\nr1(config)# "
    return f"{command}\r\n{outputs.get(command, '% Unknown command: ' + command + chr(10))}r1# "


def test_vtysh_session_strips_echo_and_prompt_and_leaves_config_mode() -> None:
    from drill.drivers.frr.transport import VtyshSession

    channel = ScriptedChannel("\r\nHello, this is FRRouting\r\n\r\nr1# ", vtysh_answer)
    session = VtyshSession(channel, timeout=1)  # type: ignore[arg-type]
    assert session.hostname == "r1"
    assert channel.sent == ["terminal length 0\n"]
    assert json.loads(session.run("show bgp summary json", 1)) == {"ipv4Unicast": {}}
    assert session.run("configure terminal", 1) == ""
    assert channel.sent[-1] == "end\n"
    with pytest.raises(ValueError):
        session.run("show ?", 1)


def test_vtysh_session_times_out_instead_of_hanging() -> None:
    from drill.drivers.frr.transport import CommandTimeout, VtyshSession

    channel = ScriptedChannel("r1# ", lambda text: "" if "slow" in text else vtysh_answer(text))
    session = VtyshSession(channel, timeout=1)  # type: ignore[arg-type]
    with pytest.raises(CommandTimeout):
        session.run("show slow", 0.05)


def shell_answer(text: str) -> str:
    import re

    marker = re.search(r"(__DRILL_END_\w+__)", text)
    assert marker is not None
    body = "hello\n" if "echo hello" in text else "no such file\n"
    status = 0 if "echo hello" in text else 2
    return f"{body}\n{marker.group(1)} {status}\n"


def test_shell_session_reads_output_and_exit_status_by_marker() -> None:
    from drill.drivers.frr.transport import ShellSession

    channel = ScriptedChannel("", shell_answer)
    shell = ShellSession(channel)  # type: ignore[arg-type]
    assert shell.run("echo hello", 1) == (0, "hello\n")
    assert shell.run("cat /nonexistent", 1) == (2, "no such file\n")
    # stdin of the command is /dev/null, so it cannot swallow the next command
    assert "</dev/null" in channel.sent[0]
