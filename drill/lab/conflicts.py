"""Refuse to bring a lab up over something it does not own.

``up`` first removes what a half-made earlier attempt of the *same* lab left behind. Before
that, this check makes sure nothing it would create or remove belongs to someone else:
another drill lab's namespaces or host interfaces (recorded in their state files), a lab of
the same name brought up from another topology file, or a host address already inside the
management subnet (another lab's bridge, or a real network).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from pathlib import Path

from drill.errors import LabError
from drill.lab.netns import existing_netns, host_ifaces
from drill.lab.plan import RUN_ROOT, LabPlan
from drill.lab.sh import run
from drill.lab.state import LabState

log = logging.getLogger(__name__)


def _other_states(plan: LabPlan) -> list[LabState]:
    states: list[LabState] = []
    for path in sorted(RUN_ROOT.glob("*/state.json")):
        if path.parent.name == plan.name:
            continue
        try:
            states.append(LabState.from_json(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            log.debug("ignoring unreadable %s: %s", path, exc)
    return states


def _host_addresses() -> list[tuple[str, ipaddress.IPv4Interface]]:
    out = run(["ip", "-j", "-4", "addr", "show"], check=False).stdout
    try:
        links = json.loads(out or "[]")
    except json.JSONDecodeError:
        return []
    return [
        (str(link.get("ifname")), ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}"))
        for link in links
        for a in link.get("addr_info", [])
        if "local" in a and "prefixlen" in a
    ]


def _host_links() -> dict[str, str]:
    """Host interface name -> its kind (``bridge``, ``veth``, ... or ``""``)."""
    out = run(["ip", "-j", "-d", "link", "show"], check=False).stdout
    try:
        links = json.loads(out or "[]")
    except json.JSONDecodeError:
        return {}
    return {
        str(link.get("ifname")): str(link.get("linkinfo", {}).get("info_kind", ""))
        for link in links
    }


def _check_names(plan: LabPlan) -> None:
    """A name ``up`` would delete as a leftover must at least be what this lab makes there."""
    links = _host_links()
    for name in host_ifaces(plan):
        want = "bridge" if name == plan.mgmt_bridge else "veth"
        if name in links and links[name] != want:
            raise LabError(
                f"lab {plan.name}: host interface {name} exists and is not a {want}; "
                "it is not this lab's (rename mgmt.network or the lab)"
            )
    subnet = plan.mgmt_gateway.network
    for ifname, address in _host_addresses():
        if ifname == plan.mgmt_bridge and not address.network.overlaps(subnet):
            raise LabError(
                f"lab {plan.name}: host bridge {ifname} already carries {address}; "
                "it is not this lab's (rename mgmt.network)"
            )


def check_same_lab(plan: LabPlan, own: LabState | None, digest: str) -> None:
    """Refuse to replace a lab of the same name that is up from a *different* topology.

    An identical copy (another checkout of the same files) is the same lab: it may reuse or
    rebuild it as before. A recorded file that no longer exists cannot be brought down by
    its own path, so then this one may act on it. ``down`` acts by name, as containerlab's
    destroy does.
    """
    if (
        own is not None
        and own.topology != str(plan.topology_path)
        and own.digest != digest
        and Path(own.topology).exists()
        and any(ns in existing_netns() for ns in own.netns)
    ):
        raise LabError(
            f"lab name `{plan.name}` is up from {own.topology}, a different topology: "
            f"take it down first (drill lab down {own.topology}) or rename this lab"
        )


def check_no_clash(plan: LabPlan, own: LabState | None, digest: str) -> None:
    """Raise LabError naming what ``plan`` would clash with; return when nothing does."""
    check_same_lab(plan, own, digest)
    present = existing_netns()
    ours_ns = set(plan.netns_names)
    ours_if = set(host_ifaces(plan))
    for other in _other_states(plan):
        if not any(ns in present for ns in other.netns):
            continue  # a stale record of a lab that is gone
        shared = sorted((ours_ns & set(other.netns)) | (ours_if & set(other.host_ifaces)))
        if shared:
            raise LabError(
                f"lab {plan.name} would reuse {', '.join(shared)} of lab {other.name} "
                f"({other.topology}), which is up: rename a lab or its nodes"
            )
    _check_names(plan)
    subnet = plan.mgmt_gateway.network
    for ifname, address in _host_addresses():
        if ifname == plan.mgmt_bridge:
            continue
        if address.network.overlaps(subnet):
            raise LabError(
                f"lab {plan.name}: management subnet {subnet} overlaps {address} on host "
                f"interface {ifname} (another lab up?); give this lab its own "
                "mgmt.ipv4-subnet"
            )
