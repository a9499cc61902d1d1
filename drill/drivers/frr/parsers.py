"""Turn FRR and Linux command outputs into NAPALM's data models.

Pure functions of already-decoded output, so they are tested against recorded outputs
(tests/unit/data/frr/) without a device.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any, Final

log = logging.getLogger(__name__)

JSON = dict[str, Any]

VENDOR: Final = "FRRouting"
GLOBAL_VRF: Final = "global"  # NAPALM's name for the default VRF; FRR calls it "default"

# FRR's address-family keys in BGP JSON -> NAPALM's keys.
_AFI: Final = {"ipv4Unicast": "ipv4", "ipv6Unicast": "ipv6"}
_VERSION = re.compile(r"^FRRouting (?P<version>\S+) \((?P<hostname>[^)]*)\)", re.M)
_VRRP_STATES: Final = {"master": "Master", "backup": "Backup", "initialize": "Initialize"}


def vrf_name(frr_vrf: str) -> str:
    """FRR's "default" VRF is NAPALM's "global".

    >>> vrf_name("default"), vrf_name("blue")
    ('global', 'blue')
    """
    return GLOBAL_VRF if frr_vrf == "default" else frr_vrf


def parse_version(show_version: str) -> tuple[str, str]:
    """Return (os_version, hostname) from `show version`.

    >>> parse_version("FRRouting 8.4.4 (r1) on Linux(6.1).\\nCopyright ...")
    ('8.4.4', 'r1')
    """
    match = _VERSION.search(show_version)
    if match is None:
        return "", ""
    return match.group("version"), match.group("hostname")


def parse_uptime(proc_uptime: str) -> float:
    """Seconds since boot from /proc/uptime.

    >>> parse_uptime("1099.25 1684.23\\n")
    1099.25
    """
    try:
        return float(proc_uptime.split()[0])
    except (IndexError, ValueError):
        return -1.0


def facts(show_version: str, interfaces: JSON, uptime: float) -> JSON:
    os_version, hostname = parse_version(show_version)
    return {
        "os_version": os_version,
        "uptime": float(uptime),
        "interface_list": sorted(interfaces),
        "vendor": VENDOR,
        "serial_number": "",
        "model": VENDOR,
        "hostname": hostname,
        "fqdn": hostname,
    }


def interfaces(show_interface: JSON) -> JSON:
    """get_interfaces from `show interface json`; speed in Mbit/s as NAPALM wants."""
    result: JSON = {}
    for name, data in show_interface.items():
        speed = data.get("speed", 0)
        result[name] = {
            "is_up": data.get("operationalStatus") == "up",
            "is_enabled": data.get("administrativeStatus") == "up",
            "description": str(data.get("description", "")),
            # FRR does not report when the link last changed.
            "last_flapped": -1.0,
            "mtu": int(data.get("mtu", 0)),
            "speed": float(speed) if isinstance(speed, int | float) and speed > 0 else 0.0,
            "mac_address": str(data.get("hardwareAddress", "")),
        }
    return result


def interfaces_ip(show_interface: JSON) -> JSON:
    result: JSON = {}
    for name, data in show_interface.items():
        families: JSON = {}
        for entry in data.get("ipAddresses", []):
            iface = ipaddress.ip_interface(entry["address"])
            family = "ipv4" if iface.version == 4 else "ipv6"
            families.setdefault(family, {})[str(iface.ip)] = {
                "prefix_length": iface.network.prefixlen
            }
        if families:
            result[name] = families
    return result


def _summary_counts(summary_vrf: JSON) -> dict[tuple[str, str], tuple[int, int]]:
    """(peer, napalm afi) -> (received, sent) from one VRF of `show bgp vrf all summary json`."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for frr_afi, afi in _AFI.items():
        for peer, data in summary_vrf.get(frr_afi, {}).get("peers", {}).items():
            counts[(peer, afi)] = (int(data.get("pfxRcd", 0)), int(data.get("pfxSnt", 0)))
    return counts


def _router_id(summary_vrf: JSON) -> str:
    for frr_afi in _AFI:
        if "routerId" in summary_vrf.get(frr_afi, {}):
            return str(summary_vrf[frr_afi]["routerId"])
    return ""


def _peers(vrf_data: JSON) -> dict[str, JSON]:
    return {key: value for key, value in vrf_data.items() if isinstance(value, dict)}


def bgp_neighbors(summary: JSON, neighbors: JSON) -> JSON:
    """get_bgp_neighbors from `show bgp vrf all summary json` + `... neighbors json`.

    NAPALM's contract: the ``global`` key is always there, also without BGP (bgpd not
    running, or no ``router bgp``: both outputs are then empty).

    >>> bgp_neighbors({}, {})
    {'global': {'router_id': '', 'peers': {}}}
    >>> bgp_neighbors({"default": {"ipv4Unicast": {"routerId": "192.0.2.7"}}}, {})
    {'global': {'router_id': '192.0.2.7', 'peers': {}}}
    """
    result: JSON = {}
    for frr_vrf in dict.fromkeys([*summary, *neighbors]):
        vrf_data = neighbors.get(frr_vrf, {})
        summary_vrf = summary.get(frr_vrf, {})
        counts = _summary_counts(summary_vrf)
        router_id = _router_id(summary_vrf)
        peers: JSON = {}
        for peer, data in _peers(vrf_data).items():
            router_id = router_id or str(data.get("localRouterId", ""))
            state = str(data.get("bgpState", ""))
            families: JSON = {}
            for frr_afi, af_data in data.get("addressFamilyInfo", {}).items():
                afi = _AFI.get(frr_afi)
                if afi is None:
                    continue
                received, sent = counts.get((peer, afi), (0, 0))
                families[afi] = {
                    "received_prefixes": received,
                    "accepted_prefixes": int(af_data.get("acceptedPrefixCounter", 0)),
                    "sent_prefixes": int(af_data.get("sentPrefixCounter", sent)),
                }
            peers[peer] = {
                "local_as": int(data.get("localAs", 0)),
                "remote_as": int(data.get("remoteAs", 0)),
                "remote_id": str(data.get("remoteRouterId", "")),
                "is_up": state == "Established",
                "is_enabled": "Admin" not in state,
                "description": str(data.get("nbrDesc", "")),
                "uptime": int(data.get("bgpTimerUpMsec", 0)) // 1000,
                "address_family": families,
            }
        result[vrf_name(frr_vrf)] = {"router_id": router_id, "peers": peers}
    result.setdefault(GLOBAL_VRF, {"router_id": "", "peers": {}})
    return result


def _policy(af_data: JSON, direction: str) -> str:
    for key in (f"routeMapFor{direction}Adv", f"routeMapFor{direction}"):
        if key in af_data:
            return str(af_data[key])
    return ""


def _bgp_peer_detail(peer: str, data: JSON, routing_table: str) -> JSON:
    stats = data.get("messageStats", {})
    families = data.get("addressFamilyInfo", {})
    accepted = sum(int(af.get("acceptedPrefixCounter", 0)) for af in families.values())
    sent = sum(int(af.get("sentPrefixCounter", 0)) for af in families.values())
    first_af: JSON = next(iter(families.values()), {})
    port_local = int(data.get("portLocal", 0))
    port_foreign = int(data.get("portForeign", 0))
    return {
        "up": data.get("bgpState") == "Established",
        "local_as": int(data.get("localAs", 0)),
        "remote_as": int(data.get("remoteAs", 0)),
        "router_id": str(data.get("remoteRouterId", "")),
        "local_address": str(data.get("hostLocal", "")).replace("Unknown", ""),
        "routing_table": routing_table,
        "local_address_configured": "updateSource" in data,
        "local_port": max(port_local, 0),
        "remote_address": peer,
        "remote_port": max(port_foreign, 0),
        "multihop": int(data.get("externalBgpNbrMaxHopsAway", 1)) > 1,
        "multipath": False,
        "remove_private_as": any("privateAs" in key for af in families.values() for key in af),
        "import_policy": _policy(first_af, "Incoming"),
        "export_policy": _policy(first_af, "Outgoing"),
        "input_messages": int(stats.get("totalRecv", 0)),
        "output_messages": int(stats.get("totalSent", 0)),
        "input_updates": int(stats.get("updatesRecv", 0)),
        "output_updates": int(stats.get("updatesSent", 0)),
        "messages_queued_out": int(stats.get("depthOutq", 0)),
        "connection_state": str(data.get("bgpState", "")),
        "previous_connection_state": "",
        "last_event": str(data.get("lastResetDueTo", "")),
        "suppress_4byte_as": "4byteAs" not in data.get("neighborCapabilities", {}),
        "local_as_prepend": False,
        "holdtime": int(data.get("bgpTimerHoldTimeMsecs", 0)) // 1000,
        "configured_holdtime": int(data.get("bgpTimerConfiguredHoldTimeMsecs", 0)) // 1000,
        "keepalive": int(data.get("bgpTimerKeepAliveIntervalMsecs", 0)) // 1000,
        "configured_keepalive": int(data.get("bgpTimerConfiguredKeepAliveIntervalMsecs", 0))
        // 1000,
        "active_prefix_count": accepted,
        "received_prefix_count": accepted,
        "accepted_prefix_count": accepted,
        "suppressed_prefix_count": 0,
        "advertised_prefix_count": sent,
        "flap_count": int(data.get("connectionsDropped", 0)),
    }


def bgp_neighbors_detail(neighbors: JSON, neighbor_address: str = "") -> JSON:
    """get_bgp_neighbors_detail: {vrf: {remote_as: [peer details]}}."""
    result: JSON = {}
    for frr_vrf, vrf_data in neighbors.items():
        vrf = vrf_name(frr_vrf)
        by_as: dict[int, list[JSON]] = {}
        for peer, data in _peers(vrf_data).items():
            if neighbor_address and peer != neighbor_address:
                continue
            detail = _bgp_peer_detail(peer, data, vrf)
            by_as.setdefault(detail["remote_as"], []).append(detail)
        if by_as:
            result[vrf] = by_as
    return result


def arp_table(ip_neigh: list[JSON]) -> list[JSON]:
    """get_arp_table from `ip -j -s -4 neigh show`: entries with a MAC only."""
    table: list[JSON] = []
    for entry in ip_neigh:
        mac = entry.get("lladdr")
        if not mac or ":" in str(entry.get("dst", "")):
            continue
        table.append(
            {
                "interface": str(entry.get("dev", "")),
                "mac": str(mac),
                "ip": str(entry["dst"]),
                # seconds since the entry was last confirmed/updated, as ip -s prints it
                "age": float(entry.get("updated", entry.get("used", -1.0)) or 0.0),
            }
        )
    return table


def _route_entry(route: JSON, hop: JSON, protocol_filter: str) -> JSON | None:
    protocol = str(route.get("protocol", ""))
    if protocol_filter and protocol != protocol_filter:
        return None
    selected = bool(route.get("selected", False))
    return {
        "protocol": protocol,
        "current_active": selected,
        "last_active": selected,
        "age": _uptime_seconds(str(route.get("uptime", ""))),
        "next_hop": str(hop.get("ip", "")),
        "outgoing_interface": str(hop.get("interfaceName", "")),
        "selected_next_hop": bool(hop.get("active", False)) and bool(hop.get("fib", False)),
        "preference": int(route.get("distance", 0)),
        "inactive_reason": "" if selected else "not selected",
        "routing_table": vrf_name(str(route.get("vrfName", "default"))),
        "protocol_attributes": {"metric": int(route.get("metric", 0))},
    }


def route_to(show_route: JSON, protocol: str = "") -> JSON:
    """get_route_to from `show ip route [PREFIX [longer-prefixes]] json`: one entry per hop."""
    result: JSON = {}
    for prefix, routes in show_route.items():
        entries: list[JSON] = []
        for route in routes:
            for hop in route.get("nexthops", []) or [{}]:
                entry = _route_entry(route, hop, protocol)
                if entry is not None:
                    entries.append(entry)
        if entries:
            result[prefix] = entries
    return result


def _uptime_seconds(text: str) -> int:
    """FRR prints route/peer ages as HH:MM:SS, or 1d02h03m, or 02w3d04h.

    >>> _uptime_seconds("00:11:16"), _uptime_seconds("1d02h03m"), _uptime_seconds("02w3d04h")
    (676, 93780, 1483200)
    """
    if re.fullmatch(r"\d+:\d\d:\d\d", text):
        hours, minutes, seconds = (int(part) for part in text.split(":"))
        return hours * 3600 + minutes * 60 + seconds
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([wdhms])", text))


_VRRP_FIELD = re.compile(
    r"^ (?P<key>Virtual Router ID|Interface|Priority)\s{2,}(?P<value>\S+)", re.M
)


def vrrp_configured_priorities(show_vrrp_text: str) -> dict[tuple[str, int], int]:
    """(interface, vrid) -> configured priority from `show vrrp` (JSON has only effective).

    >>> vrrp_configured_priorities(
    ...     " Virtual Router ID    1 \\n Interface   eth1 \\n Priority    150 \\n"
    ... )
    {('eth1', 1): 150}
    """
    result: dict[tuple[str, int], int] = {}
    vrid, interface = 0, ""
    for match in _VRRP_FIELD.finditer(show_vrrp_text):
        key, value = match.group("key"), match.group("value")
        if key == "Virtual Router ID":
            vrid = int(value)
        elif key == "Interface":
            interface = value
        else:
            result[(interface, vrid)] = int(value)
    return result


def vrrp(show_vrrp: list[JSON], show_vrrp_text: str = "") -> JSON:
    """get_vrrp from `show vrrp json` (an array, one item per interface and VRID).

    Shape: {interface: {vrid: {state, priority, effective_priority, virtual_addresses,
    advertisement_interval_ms, version}}} (see docs/driver.md). The IPv4 instance wins;
    the IPv6 one is used when the router has no IPv4 virtual address for that VRID.
    """
    configured = vrrp_configured_priorities(show_vrrp_text)
    result: JSON = {}
    for group in show_vrrp:
        v4, v6 = group.get("v4", {}), group.get("v6", {})
        instance = v4 if v4.get("addresses") or not v6.get("addresses") else v6
        state = str(instance.get("status", "Initialize"))
        interface, vrid = str(group.get("interface", "")), int(group["vrid"])
        effective = int(instance.get("effectivePriority", 0))
        result.setdefault(interface, {})[vrid] = {
            "state": _VRRP_STATES.get(state.lower(), state),
            "priority": configured.get((interface, vrid), effective),
            "effective_priority": effective,
            "virtual_addresses": [str(a) for a in instance.get("addresses", [])],
            "advertisement_interval_ms": int(group.get("advertisementInterval", 0)),
            "version": int(group.get("version", 3)),
        }
    return result


_PING_SUMMARY = re.compile(
    r"(?P<sent>\d+) packets transmitted, (?P<received>\d+) (?:packets )?received"
)
_PING_RTT = re.compile(r"= (?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)/(?P<mdev>[\d.]+) ms")
_PING_REPLY = re.compile(
    r"from (?P<ip>[0-9a-fA-F.:]+): icmp_seq=\d+ ttl=\d+ time=(?P<rtt>[\d.]+) ms"
)


def ping(output: str) -> JSON:
    """NAPALM's ping result from iputils `ping -n -c N` output; "error" when nothing was sent."""
    summary = _PING_SUMMARY.search(output)
    if summary is None:
        message = output.strip().splitlines()
        return {"error": message[-1] if message else "ping produced no output"}
    sent, received = int(summary.group("sent")), int(summary.group("received"))
    rtt = _PING_RTT.search(output)
    values = [float(rtt.group(k)) for k in ("min", "avg", "max", "mdev")] if rtt else [0.0] * 4
    results = [
        {"ip_address": m.group("ip"), "rtt": float(m.group("rtt"))}
        for m in _PING_REPLY.finditer(output)
    ]
    return {
        "success": {
            "probes_sent": sent,
            "packet_loss": sent - received,
            "rtt_min": values[0],
            "rtt_avg": values[1],
            "rtt_max": values[2],
            "rtt_stddev": values[3],
            "results": results,
        }
    }


_HOP = re.compile(r"^\s*(?P<hop>\d+)\s+(?P<rest>.*)$")


def _hop_probes(rest: str) -> dict[int, JSON]:
    """Probes of one traceroute -n hop line: `ip rtt ms [rtt ms | ip rtt ms | *]...`."""
    probes: dict[int, JSON] = {}
    address = ""
    tokens = rest.split()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "*":
            probes[len(probes) + 1] = {"rtt": 0.0, "ip_address": "*", "host_name": "*"}
        elif index + 1 < len(tokens) and tokens[index + 1] == "ms":
            rtt = float(token)
            probes[len(probes) + 1] = {"rtt": rtt, "ip_address": address, "host_name": address}
            index += 1
        elif token.startswith("!"):
            pass  # annotations such as !H (host unreachable) follow the rtt
        else:
            address = token
        index += 1
    return probes


def traceroute(output: str) -> JSON:
    """NAPALM's traceroute result from `traceroute -n` output."""
    hops: dict[int, JSON] = {}
    lines = output.replace("\r\n", "\n").split("\n")
    for line in lines:
        match = _HOP.match(line)
        if match:
            hops[int(match.group("hop"))] = {"probes": _hop_probes(match.group("rest"))}
    if not hops:
        message = [line for line in lines if line.strip()]
        return {"error": message[-1] if message else "traceroute produced no output"}
    return {"success": hops}
