"""A lab site cut off under a dead-man timer that runs inside the lab, not in drill.

Every link between a node of the site (label ``drill.site``) and a node elsewhere is
blackholed at both ends: links stay up, every frame is dropped in both directions, as a
silent site loss. The drop rules match an element of an nftables set with ``flags timeout``;
the element is added with ``timeout <seconds>``, so the kernel of each namespace lifts the cut
by itself when it expires. Whatever happens to the process that made the cut (SIGKILL, a lost
SSH session), the site comes back: there is no timer in any drill process.

Per namespace the cut is one netdev table (``drill_site_<site>``, see
:func:`drill.lab.faults.site_table`) with one set ``cut`` (the interfaces, by name) and an
ingress and an egress chain per interface. It stays after expiry, harmless (its set is empty),
until :func:`lift_isolation` or ``drill lab fault --clear`` removes it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable

from drill.errors import InputError, LabError
from drill.lab.faults import SITE, nft_in_namespaces, remove_site_tables, site_table
from drill.lab.lab import Lab
from drill.lab.plan import LabPlan, VethPlan
from drill.lab.privileges import require_root
from drill.lab.sh import run
from drill.lab.state import FaultRecord, lab_lock, load_state, save_state

log = logging.getLogger(__name__)

SITE_LABEL = "drill.site"
SET = "cut"
# nft prints an element's time left as e.g. `expires 1m2s345ms` (units d, h, m, s, ms).
_EXPIRES = re.compile(r"\bexpires ((?:[0-9]+(?:ms|d|h|m|s))+)")
_UNIT = re.compile(r"([0-9]+)(ms|d|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _site_of(plan: LabPlan, node: str) -> str | None:
    return plan.nodes[node].labels.get(SITE_LABEL)


def sites(plan: LabPlan) -> list[str]:
    """The sites the lab's nodes name, sorted."""
    return sorted({s for n in plan.nodes.values() if (s := n.labels.get(SITE_LABEL))})


def site_links(lab: Lab, site: str) -> list[VethPlan]:
    """The links that join a node of ``site`` to a node of another site, or of none.

    Management is not a link of the plan: it is never cut.
    """
    plan = lab.plan
    known = sites(plan)
    if site not in known:
        raise InputError(
            f"error: no node of lab {plan.name} is in site `{site}` "
            f"(sites: {', '.join(known) or 'none: no node has a drill.site label'})"
        )
    links = [
        veth
        for veth in plan.veths
        if (_site_of(plan, veth.a.node) == site) != (_site_of(plan, veth.b.node) == site)
    ]
    if not links:
        raise InputError(
            f"error: site `{site}` of lab {plan.name} has no link to another site "
            f"(sites: {', '.join(known)})"
        )
    return links


def _ports_by_netns(links: Iterable[VethPlan]) -> dict[str, list[str]]:
    by_netns: dict[str, list[str]] = {}
    for veth in links:
        for port in (veth.a, veth.b):
            by_netns.setdefault(port.netns, []).append(port.iface)
    return by_netns


def _chain(prefix: str, iface: str) -> str:
    return prefix + "_" + re.sub(r"[^A-Za-z0-9_]", "_", iface)


def cut_rules(site: str, ifaces: Iterable[str], seconds: float) -> str:
    """One namespace's cut, replacing any earlier one of the same site in one transaction
    (``add`` makes the ``delete`` safe when there was none): a second cut restarts the timer.

    >>> print(cut_rules("dc1", ["eth1"], 4))
    add table netdev drill_site_dc1
    delete table netdev drill_site_dc1
    table netdev drill_site_dc1 {
      set cut { type ifname; flags timeout; elements = { "eth1" timeout 4000ms }; }
      chain in_eth1 { type filter hook ingress device "eth1" priority -500; policy accept; iifname @cut drop; }
      chain out_eth1 { type filter hook egress device "eth1" priority -500; policy accept; oifname @cut drop; }
    }
    <BLANKLINE>
    """  # noqa: E501
    if seconds <= 0:
        raise InputError("error: a site cut needs a duration longer than 0s")
    names = list(dict.fromkeys(ifaces))
    table = site_table(site)
    # Milliseconds, at least 1: nft's own resolution, and `timeout 0ms` would mean "never".
    timeout = f"{max(1, round(seconds * 1000))}ms"
    elements = ", ".join(f'"{i}" timeout {timeout}' for i in names)
    lines = [
        f"add table netdev {table}",
        f"delete table netdev {table}",
        f"table netdev {table} {{",
        f"  set {SET} {{ type ifname; flags timeout; elements = {{ {elements} }}; }}",
    ]
    for iface in names:
        for prefix, hook, meta in (("in", "ingress", "iifname"), ("out", "egress", "oifname")):
            lines.append(
                f"  chain {_chain(prefix, iface)} {{ type filter hook {hook} "
                f'device "{iface}" priority -500; policy accept; {meta} @{SET} drop; }}'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_expires(listing: str) -> float | None:
    """The longest time left of the set's elements in ``nft list set`` output, in seconds;
    None when no element is left (the kernel drops expired ones from the listing).

    >>> parse_expires('elements = { "eth1" timeout 4s expires 3s250ms, "eth2" timeout 4s expires 3s251ms }')
    3.251
    >>> parse_expires('elements = { "eth1" timeout 2h expires 1h1m5s }')
    3665.0
    >>> parse_expires("set cut { type ifname; flags timeout; }") is None
    True
    """  # noqa: E501
    found = [
        sum(int(n) * _UNIT_SECONDS[u] for n, u in _UNIT.findall(m.group(1)))
        for m in _EXPIRES.finditer(listing)
    ]
    return round(max(found), 3) if found else None


def isolate_site(lab: Lab, site: str, seconds: float) -> FaultRecord:
    """Cut ``site`` off for ``seconds``; returns at once. The lab lifts the cut by itself.

    A second cut of the same site replaces the first, with a new timer.
    """
    by_netns = _ports_by_netns(site_links(lab, site))
    scripts = {netns: cut_rules(site, ifaces, seconds) for netns, ifaces in by_netns.items()}
    require_root("drill lab fault")
    with lab_lock(lab.plan):
        state = load_state(lab.plan)
        if state is None or not state.holders:
            raise LabError(f"lab {lab.name} is not up")
        started = time.time()
        try:
            nft_in_namespaces(scripts)
        except LabError:
            remove_site_tables(lab, site)  # never half a site cut off
            raise
        record = FaultRecord(SITE, site, "blackhole", expires_at=round(started + seconds, 3))
        state.faults = [f for f in state.faults if f.key != record.key] + [record]
        save_state(lab.plan, state)
    log.info(
        "site %s of lab %s cut off for %g s (%d namespaces)", site, lab.name, seconds, len(scripts)
    )
    return record


def _remaining_in(port_netns: str, site: str) -> float | None:
    proc = run(
        ["ip", "netns", "exec", port_netns, "nft", "list", "set", "netdev", site_table(site), SET],
        check=False,
    )
    return parse_expires(proc.stdout) if proc.returncode == 0 else None


def isolation_remaining(lab: Lab, site: str) -> float | None:
    """Seconds until the lab's own timer lifts ``site``'s cut, read from the namespaces'
    sets (0.0 when it has lifted, or the tables are gone); None when no cut is recorded."""
    require_root("drill lab status")
    state = load_state(lab.plan)
    if state is None or not any(f.kind == SITE and f.target == site for f in state.faults):
        return None
    left = [_remaining_in(netns, site) for netns in _ports_by_netns(site_links(lab, site))]
    return max((x for x in left if x is not None), default=0.0)


def lift_isolation(lab: Lab, site: str) -> bool:
    """Remove ``site``'s cut and its record now; False when there was neither."""
    site_links(lab, site)  # an unknown site is bad input, not "nothing to lift"
    require_root("drill lab fault --clear")
    with lab_lock(lab.plan):
        had_tables = remove_site_tables(lab, site)
        state = load_state(lab.plan)
        had_record = False
        if state is not None:
            kept = [f for f in state.faults if not (f.kind == SITE and f.target == site)]
            had_record = len(kept) != len(state.faults)
            if had_record:
                state.faults = kept
                save_state(lab.plan, state)
    log.info("site %s of lab %s: cut lifted (%s)", site, lab.name, had_tables or had_record)
    return had_tables or had_record
