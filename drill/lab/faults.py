"""Faults on a running lab: links or nodes taken down or blackholed, management cut.

``down`` sets veth ends down (the peer sees carrier loss at once). ``blackhole`` keeps every
link up but drops all frames in both directions with nftables netdev ingress+egress chains
inside the namespaces: a silent failure, which is what exercises BFD/VRRP/BGP timers.
Faults are recorded in the lab state so ``--clear`` can undo them and ``status`` shows them.
A whole site cut off under a lab-side timer (kind ``site``) is drill.lab.isolation's; its
tables are named here so ``--clear`` undoes it with the rest.
"""

from __future__ import annotations

import logging
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

from drill.errors import InputError, LabError
from drill.lab.lab import Lab
from drill.lab.netns import existing_netns
from drill.lab.plan import MGMT_IFACE, Port, VethPlan
from drill.lab.privileges import require_root
from drill.lab.sh import run
from drill.lab.state import FaultRecord, lab_lock, load_state, save_state

log = logging.getLogger(__name__)

KINDS = ("link", "node", "mgmt")
MODES = ("down", "blackhole")
SITE = "site"  # the kind of drill.lab.isolation's records


def _table(iface: str) -> str:
    return "drill_fault_" + re.sub(r"[^A-Za-z0-9_]", "_", iface)


def site_table(site: str) -> str:
    """The nftables netdev table that cuts ``site`` off, in each namespace it touches.

    >>> site_table("dc1")
    'drill_site_dc1'
    """
    return "drill_site_" + re.sub(r"[^A-Za-z0-9_]", "_", site)


def nft_in_namespaces(
    scripts: dict[str, str], *, check: bool = True
) -> dict[str, subprocess.CompletedProcess[str]]:
    """One ``nft -f -`` per namespace, the namespaces in parallel, so a change meant to hit
    several namespaces at once lands in all of them within a few milliseconds."""

    def one(netns: str) -> subprocess.CompletedProcess[str]:
        argv = ["ip", "netns", "exec", netns, "nft", "-f", "-"]
        return run(argv, input_text=scripts[netns], check=check)

    with ThreadPoolExecutor(max_workers=max(1, len(scripts))) as pool:
        return dict(zip(scripts, pool.map(one, scripts), strict=True))


def remove_site_tables(lab: Lab, site: str) -> bool:
    """Delete ``site``'s cut wherever it is in the lab (every namespace is asked, so it works
    whatever the links were when the cut was made); True when some namespace had it."""
    script = f"delete table netdev {site_table(site)}\n"
    present = set(existing_netns())
    done = nft_in_namespaces(
        {ns: script for ns in lab.plan.netns_names if ns in present}, check=False
    )
    return any(proc.returncode == 0 for proc in done.values())


def _parse_endpoint(lab: Lab, text: str) -> tuple[str, str | None] | None:
    node, _, iface = text.partition(":")
    if node not in lab.plan.nodes:
        return None
    return node, iface or None


def resolve_link(lab: Lab, target: str) -> VethPlan:
    """``A:B`` by node names, or with interfaces (``a:eth1:b``, ``a:eth1:b:eth2``...)."""
    parts = target.split(":")
    candidates: list[tuple[tuple[str, str | None], tuple[str, str | None]]] = []
    for cut in range(1, len(parts)):
        a = _parse_endpoint(lab, ":".join(parts[:cut]))
        b = _parse_endpoint(lab, ":".join(parts[cut:]))
        if a and b:
            candidates.append((a, b))
    matches = {
        veth
        for (an, ai), (bn, bi) in candidates
        for veth in lab.plan.veths
        for x, y in ((veth.a, veth.b), (veth.b, veth.a))
        if x.node == an and y.node == bn and ai in (None, x.iface) and bi in (None, y.iface)
    }
    if not matches:
        raise InputError(
            f"error: no link `{target}` in lab {lab.name} (use NODE:NODE as in its links)"
        )
    if len(matches) > 1:
        options = ", ".join(sorted(f"{v.a}:{v.b}" for v in matches))
        raise InputError(f"error: `{target}` matches several links; name the interfaces: {options}")
    return matches.pop()


def _ports(lab: Lab, fault: FaultRecord) -> list[Port]:
    """The interfaces a fault acts on."""
    if fault.kind == "link":
        veth = resolve_link(lab, fault.target)
        return [veth.a, veth.b]
    node = lab.plan.node(fault.target)
    if fault.kind == "mgmt":
        if node.mgmt is None:
            raise InputError(f"error: node {node.name} has no management interface")
        return [Port(node.name, node.netns, MGMT_IFACE)]
    ends = [
        (v.a, v.b) if v.a.node == node.name else (v.b, v.a)
        for v in lab.plan.veths
        if node.name in (v.a.node, v.b.node)
    ]
    if fault.mode == "down":
        return [own for own, _ in ends]
    # Blackholing both ends of every link also silences what the node itself sends.
    return [p for pair in ends for p in pair]


def _blackhole_rules(iface: str) -> str:
    return (
        f"table netdev {_table(iface)} {{\n"
        f'  chain in {{ type filter hook ingress device "{iface}" priority -500; '
        "policy drop; }\n"
        f'  chain out {{ type filter hook egress device "{iface}" priority -500; '
        "policy drop; }\n"
        "}\n"
    )


def _apply_one(lab: Lab, fault: FaultRecord) -> None:
    for port in _ports(lab, fault):
        if fault.mode == "down":
            run(["ip", "-n", port.netns, "link", "set", "dev", port.iface, "down"])
        else:
            run(
                ["ip", "netns", "exec", port.netns, "nft", "-f", "-"],
                input_text=_blackhole_rules(port.iface),
            )


def _apply_at_once(lab: Lab, faults: list[FaultRecord]) -> None:
    """Every port of ``faults``, one command per namespace, the namespaces in parallel: a
    site that dies dies everywhere within a few milliseconds, not link after link."""
    by_netns: dict[str, dict[str, str]] = {}
    for fault in faults:
        for port in _ports(lab, fault):
            by_netns.setdefault(port.netns, {})[port.iface] = fault.mode

    def one(netns: str, ifaces: dict[str, str]) -> None:
        rules = "".join(_blackhole_rules(i) for i, m in ifaces.items() if m == "blackhole")
        if rules:
            run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input_text=rules)
        for iface in (i for i, m in ifaces.items() if m == "down"):
            run(["ip", "-n", netns, "link", "set", "dev", iface, "down"])

    with ThreadPoolExecutor(max_workers=max(1, len(by_netns))) as pool:
        list(pool.map(one, by_netns, by_netns.values()))


def _undo_one(lab: Lab, fault: FaultRecord) -> None:
    if fault.kind == SITE:
        remove_site_tables(lab, fault.target)
        return
    for port in _ports(lab, fault):
        if fault.mode == "down":
            run(["ip", "-n", port.netns, "link", "set", "dev", port.iface, "up"], check=False)
        else:
            run(
                [
                    "ip",
                    "netns",
                    "exec",
                    port.netns,
                    "nft",
                    "delete",
                    "table",
                    "netdev",
                    _table(port.iface),
                ],
                check=False,
            )


def _validate(lab: Lab, kind: str, target: str, mode: str) -> FaultRecord:
    if kind == SITE:
        raise InputError(
            f"error: a site is cut with a timer: `drill lab fault LAB site {target} --for 60s`"
        )
    if kind not in KINDS:
        raise InputError(f"error: fault kind `{kind}` is not one of {', '.join(KINDS)}")
    if mode not in MODES:
        raise InputError(f"error: --mode `{mode}` is not one of {', '.join(MODES)}")
    if kind == "link":
        veth = resolve_link(lab, target)
        target = f"{veth.a}:{veth.b}"
    else:
        lab.plan.node(target)
    record = FaultRecord(kind, target, mode)
    _ports(lab, record)  # raises on a target this kind cannot act on
    return record


def apply_fault(lab: Lab, kind: str, target: str, mode: str) -> FaultRecord:
    """Inject one fault and record it; the same target again replaces its mode."""
    require_root("drill lab fault")
    record = _validate(lab, kind, target, mode)
    with lab_lock(lab.plan):
        state = load_state(lab.plan)
        if state is None or not state.holders:
            raise LabError(f"lab {lab.name} is not up")
        previous = [f for f in state.faults if f.key == record.key]
        for old in previous:
            _undo_one(lab, old)
        state.faults = [f for f in state.faults if f.key != record.key] + [record]
        _apply_one(lab, record)
        save_state(lab.plan, state)
    log.info("fault %s %s on lab %s", record.key, record.mode, lab.name)
    return record


def apply_faults(lab: Lab, targets: list[tuple[str, str]], mode: str) -> list[FaultRecord]:
    """Inject ``(kind, target)`` faults all at once (see :func:`_apply_at_once`) and record
    them; a target already faulted is undone first, as in :func:`apply_fault`."""
    require_root("drill lab fault")
    records = [_validate(lab, kind, target, mode) for kind, target in targets]
    with lab_lock(lab.plan):
        state = load_state(lab.plan)
        if state is None or not state.holders:
            raise LabError(f"lab {lab.name} is not up")
        keys = {r.key for r in records}
        for old in [f for f in state.faults if f.key in keys]:
            _undo_one(lab, old)
        state.faults = [f for f in state.faults if f.key not in keys] + records
        _apply_at_once(lab, records)
        save_state(lab.plan, state)
    log.info("faults %s %s on lab %s", ", ".join(sorted(keys)), mode, lab.name)
    return records


def clear_faults(lab: Lab, kind: str | None = None, target: str | None = None) -> list[str]:
    """Undo one fault (``kind target``) or all; what other faults still need is re-applied."""
    require_root("drill lab fault --clear")
    wanted: str | None = None
    if kind is not None:
        if target is None:
            raise InputError("error: --clear takes no target (all faults) or KIND TARGET")
        wanted = f"{SITE} {target}" if kind == SITE else _validate(lab, kind, target, "down").key
    with lab_lock(lab.plan):
        state = load_state(lab.plan)
        if state is None:
            return []
        gone = [f for f in state.faults if wanted is None or f.key == wanted]
        if wanted is not None and not gone:
            raise InputError(f"error: no active fault `{wanted}` in lab {lab.name}")
        state.faults = [f for f in state.faults if f not in gone]
        for fault in gone:
            _undo_one(lab, fault)
        # A site cut has tables of its own that nothing above touched; applying it again
        # would also restart its timer.
        for fault in state.faults:
            if fault.kind != SITE:
                _apply_one(lab, fault)
        save_state(lab.plan, state)
    return [f"{f.key} {f.mode}" for f in gone]
