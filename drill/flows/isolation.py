"""The isolation rehearsal's flow probes and verdict (docs/flows.md, "Isolation rehearsal").

From a flow catalog and the site being cut off, :func:`plan` makes one probe per cataloged
flow that must keep working without that site: from the host of the flow's client, bound to
the client's address, to the flow's server, with the flow's protocol and port. Which server:

- a server whose service runs only at the isolated site is probed at the address the flow
  went to: whatever answers there during the cut (an instance brought up at DR on that
  address, say) counts, and nothing answering is the hidden dependency;
- a ``dr: required`` service that also runs elsewhere is probed at an instance outside the
  site: moving clients between instances (DNS, VRRP, anycast) is what the switchover did,
  and a client still pinned to the old instance's address is ``drill flows check``'s finding;
- a ``dr: deferred`` server is probed where the flow went: it may break, and is reported.

Flows whose client lives only at the isolated site go away with it and are not probed.
:func:`judge` turns each flow's attempts before, during and after the cut into a verdict.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from drill.flows.catalog import Catalog, CatalogFlow
from drill.flows.services import Service, ServiceTable, Tier
from drill.probes.flows import Method

log = logging.getLogger(__name__)

_PROTO = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 132: "sctp"}


def flow_label(flow: CatalogFlow) -> str:
    """``auth@dc2 -> settlement@dc1 tcp/8300`` (ICMP has no port)."""
    proto = _PROTO.get(flow.proto, str(flow.proto))
    port = f"/{flow.port}" if flow.proto in (6, 17, 132) else ""
    return f"{flow.client.label} -> {flow.server.label} {proto}{port}"


def flow_tier(flow: CatalogFlow) -> Tier:
    """Required when either end is: the same rule as ``drill flows check``'s findings."""
    return "required" if "required" in (flow.client.dr, flow.server.dr) else "deferred"


@dataclass(frozen=True)
class FlowProbe:
    id: int
    label: str
    tier: Tier
    method: Method
    host: str  # the inventory host the client runs on
    vantage: str
    source: str
    target: str
    port: int
    target_note: str  # why the target is not the flow's own server address ("" when it is)
    flow: CatalogFlow

    def agent_item(self) -> list[Any]:
        return [self.id, self.method, self.source, self.target, self.port]


@dataclass(frozen=True)
class Unprobed:
    label: str
    tier: Tier
    reason: str


@dataclass(frozen=True)
class IsolationPlan:
    site: str
    probes: tuple[FlowProbe, ...]
    unprobed: tuple[Unprobed, ...]
    gone_with_site: int  # flows whose client lives only at the isolated site
    catalog_sha256: str = ""  # of the catalog file the probes were generated from


def _method(flow: CatalogFlow) -> Method | None:
    if flow.proto == 6 and flow.port:
        return "tcp"
    if flow.proto == 17 and flow.port == 53:
        return "dns"
    if flow.proto in (1, 58):
        return "icmp"
    return None


def _single_addresses(service: Service) -> list[str]:
    return [
        str(n.network_address)
        for n in service.networks
        if n.num_addresses == 1 or n.prefixlen in (32, 128)
    ]


def _target(flow: CatalogFlow, site: str, table: ServiceTable) -> tuple[str, str] | None:
    """(address, note) to probe for ``flow``'s server; None when there is none."""
    server = flow.server
    observed = server.addresses[0] if server.addresses else None
    survives = [s for s in server.sites if s != site]
    if server.dr != "required" or survives or server.service is None:
        return (observed, "") if observed else None
    # A required service pinned to the isolated site's instance: probe one elsewhere.
    elsewhere = [s for s in table.by_name(server.service) if site not in s.sites]
    spanning = [s for s in table.by_name(server.service) if site in s.sites and len(s.sites) > 1]
    for candidate in [*elsewhere, *spanning]:
        addresses = _single_addresses(candidate)
        if addresses:
            note = (
                f"{server.service} also runs at {'+'.join(candidate.sites)}: probing "
                f"{addresses[0]} ({candidate.label}) instead of {observed} at {site}"
            )
            return addresses[0], note
    return (observed, "") if observed else None


def plan(
    catalog: Catalog,
    site: str,
    host_addresses: Mapping[str, Iterable[str]],
    vantage_of: Mapping[str, str],
    max_flows: int = 500,
) -> IsolationPlan:
    """Probes for every flow of ``catalog`` that must survive ``site`` being cut off.

    ``host_addresses``: inventory host -> its own addresses (inventory ``data.addresses``);
    ``vantage_of``: host -> where its probes run from (hosts without one are not probed)."""
    table = catalog.table()
    owner: dict[str, str] = {}
    for host, addresses in host_addresses.items():
        for address in addresses:
            owner.setdefault(_canonical(address), host)
    probes: list[FlowProbe] = []
    unprobed: list[Unprobed] = []
    gone = 0
    flows = sorted(catalog.flows, key=lambda f: (flow_tier(f) != "required", flow_label(f)))
    for flow in flows:
        label, tier = flow_label(flow), flow_tier(flow)
        if flow.client.service is None or flow.server.service is None:
            unprobed.append(Unprobed(label, tier, "an endpoint belongs to no service"))
            continue
        if flow.client.sites and all(s == site for s in flow.client.sites):
            gone += 1
            continue
        method = _method(flow)
        if method is None:
            reason = f"no probe for {label.rsplit(' ', 1)[-1]} (drill probes tcp, dns and icmp)"
            unprobed.append(Unprobed(label, tier, reason))
            continue
        hosts = [(owner[a], a) for a in map(_canonical, flow.client.addresses) if a in owner]
        if not hosts:
            where = ", ".join(flow.client.addresses) or "no address"
            unprobed.append(Unprobed(label, tier, f"no inventory host has {where}"))
            continue
        host, source = hosts[0]
        vantage = vantage_of.get(host)
        if vantage is None:
            unprobed.append(Unprobed(label, tier, f"no vantage point for host {host}"))
            continue
        target = _target(flow, site, table)
        if target is None:
            unprobed.append(Unprobed(label, tier, "no server address in the catalog"))
            continue
        if len(probes) >= max_flows:
            unprobed.append(Unprobed(label, tier, f"over max_flows ({max_flows})"))
            continue
        address, note = target
        probes.append(
            FlowProbe(
                id=len(probes),
                label=label,
                tier=tier,
                method=method,
                host=host,
                vantage=vantage,
                source=source,
                target=address,
                port=flow.port if method != "icmp" else 0,
                target_note=note,
                flow=flow,
            )
        )
    return IsolationPlan(site, tuple(probes), tuple(unprobed), gone)


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


# --- verdict ---------------------------------------------------------------------------

Status = Literal["ok", "broken", "expected", "down-before", "not-recovered", "no-data"]


@dataclass
class Window:
    attempts: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def failed_pct(self) -> float:
        return 100.0 * self.failed / self.attempts if self.attempts else 0.0

    def add(self, why: str | None) -> None:
        self.attempts += 1
        if why is not None:
            self.failed += 1
            self.reasons[why] = self.reasons.get(why, 0) + 1


@dataclass(frozen=True)
class Attempt:
    t: float  # epoch seconds
    error: str | None  # None: answered


@dataclass
class FlowVerdict:
    probe: FlowProbe
    before: Window
    during: Window
    after: Window
    recovered_s: float | None  # first answer after the cut lifted, seconds after the lift
    status: Status
    fails_drill: bool

    def headline(self) -> str:
        if self.status == "no-data":
            return f"{self.probe.label}: no attempt during isolation (the probe did not run)"
        if self.status == "down-before":
            return f"{self.probe.label}: {self.before.failed_pct:.0f}% failed before isolation"
        text = f"{self.probe.label}: {self.during.failed_pct:.0f}% failed during isolation"
        if self.status == "not-recovered":
            text += ", not answering again after it lifted"
        elif self.status == "expected":
            text += " (dr: deferred: expected)"
        return text


def judge(
    probes: Iterable[FlowProbe],
    attempts: Mapping[int, list[Attempt]],
    cut_at: float,
    lifted_at: float,
    unsettled: Iterable[tuple[float, float]] = (),
) -> list[FlowVerdict]:
    """Each flow's verdict from its attempts (epoch times) around the cut ``[cut_at,
    lifted_at)``. An attempt counts for the window it started in. ``unsettled``: intervals
    ``[start, end)`` in which the cut was partly made or partly lifted (rules go in, and
    timers expire, one namespace or device after another): their attempts count nowhere."""
    verdicts: list[FlowVerdict] = []
    skip = [(start, end) for start, end in unsettled if end > start]
    for probe in probes:
        before, during, after = Window(), Window(), Window()
        recovered: float | None = None
        for attempt in sorted(attempts.get(probe.id, []), key=lambda a: a.t):
            if any(start <= attempt.t < end for start, end in skip):
                continue
            if attempt.t < cut_at:
                before.add(attempt.error)
            elif attempt.t < lifted_at:
                during.add(attempt.error)
            else:
                after.add(attempt.error)
                if attempt.error is None and recovered is None:
                    recovered = max(0.0, attempt.t - lifted_at)
        status = _status(probe, before, during, recovered)
        fails = probe.tier == "required" and status not in ("ok", "expected")
        verdicts.append(FlowVerdict(probe, before, during, after, recovered, status, fails))
    return verdicts


def _status(probe: FlowProbe, before: Window, during: Window, recovered: float | None) -> Status:
    if during.attempts == 0:
        return "no-data"
    if before.attempts and before.failed == before.attempts:
        return "down-before"
    if during.failed == 0:
        return "ok"
    if probe.tier == "deferred":
        return "expected"
    return "broken" if recovered is not None else "not-recovered"
