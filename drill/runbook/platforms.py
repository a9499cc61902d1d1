"""What each NAPALM platform can do, as data: validation rejects a runbook that asks a host
for something its platform cannot do, before anything connects.

To teach drill a platform, add a row to PLATFORMS; nothing else branches on platform names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# NAPALM 5.x getters shared by the major drivers (napalm/base/base.py).
_COMMON_GETTERS = frozenset(
    {
        "get_facts",
        "get_interfaces",
        "get_interfaces_ip",
        "get_interfaces_counters",
        "get_lldp_neighbors",
        "get_lldp_neighbors_detail",
        "get_bgp_neighbors",
        "get_bgp_neighbors_detail",
        "get_bgp_config",
        "get_arp_table",
        "get_route_to",
        "get_config",
        "get_environment",
        "get_ntp_servers",
        "get_ntp_stats",
        "get_snmp_information",
        "get_users",
        "get_optics",
        "get_mac_address_table",
        "get_network_instances",
        "get_ipv6_neighbors_table",
        "ping",
        "traceroute",
    }
)

# drill's FRR driver: the getters docs/driver.md lists, get_vrrp being drill's own model.
_FRR_GETTERS = frozenset(
    {
        "get_facts",
        "get_interfaces",
        "get_interfaces_ip",
        "get_bgp_neighbors",
        "get_bgp_neighbors_detail",
        "get_arp_table",
        "get_route_to",
        "get_config",
        "get_vrrp",
        "ping",
        "traceroute",
    }
)


@dataclass(frozen=True)
class Capabilities:
    """One platform's abilities as the runbook features that need them."""

    commit_confirm: bool  # commit_config(revert_in=...): a step's `confirm:`
    replace: bool  # load_replace_candidate: a config step's `mode: replace`
    cli: bool  # cli([...]): getter 'cli'
    getters: frozenset[str]
    note: str = ""
    napalm: bool = True  # False: inventory-only hosts (e.g. plain Linux) no step may manage

    def supports_getter(self, getter: str) -> bool:
        return getter in self.getters


PLATFORMS: dict[str, Capabilities] = {
    "frr": Capabilities(True, True, True, _FRR_GETTERS, "drill's FRR driver"),
    "eos": Capabilities(True, True, True, _COMMON_GETTERS),
    "junos": Capabilities(True, True, True, _COMMON_GETTERS),
    "ios": Capabilities(True, True, True, _COMMON_GETTERS),
    "nxos": Capabilities(False, True, True, _COMMON_GETTERS),
    "nxos_ssh": Capabilities(False, True, True, _COMMON_GETTERS),
    "iosxr": Capabilities(False, True, True, _COMMON_GETTERS),
    "iosxr_netconf": Capabilities(False, True, True, _COMMON_GETTERS),
    # Plain Linux hosts (the lab's client): in the inventory for their data, never managed.
    "linux": Capabilities(False, False, False, frozenset(), "no NAPALM driver", napalm=False),
    # NAPALM's mock driver replays recorded results: tests use it for any feature.
    "mock": Capabilities(True, True, True, _COMMON_GETTERS | _FRR_GETTERS, "NAPALM mock"),
}

FEATURES = {
    "commit_confirm": "commit-confirm ('confirm:')",
    "replace": "replace ('mode: replace')",
    "cli": "CLI commands (getter 'cli')",
}


def capabilities(platform: str | None) -> Capabilities | None:
    """The row for platform, or None when drill does not know it."""
    if platform is None:
        return None
    return PLATFORMS.get(platform)


def known_getters() -> frozenset[str]:
    """Every getter some known platform offers (to tell a typo from an unsupported getter)."""
    found: frozenset[str] = frozenset()
    for row in PLATFORMS.values():
        found |= row.getters
    return found
