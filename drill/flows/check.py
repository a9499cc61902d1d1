"""Which recorded flows will still need a site after it is evacuated (docs/flows.md, "Check").

A catalog flow is a finding when its server lives only at the evacuated site, either because
its service has no instance anywhere else ("only-there") or because the clients use an
address of the instance there although the service runs elsewhere too ("pinned"). A flow
whose client service lives only at that site too goes away with it and is not a finding.
A finding is blocking when the client's or the server's service is ``dr: required``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from drill.errors import InputError
from drill.flows.catalog import Catalog, CatalogFlow, Endpoint
from drill.flows.services import Service, ServiceTable

log = logging.getLogger(__name__)

Reason = Literal["only-there", "pinned"]
_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ProbeTarget:
    """Where a probe or check of the runbook sends traffic."""

    name: str
    address: str
    port: int | None  # None: reaches the address only (ICMP, traceroute)


@dataclass(frozen=True)
class Finding:
    flow: CatalogFlow
    reason: Reason
    blocking: bool
    covered_by: tuple[str, ...]
    others: tuple[str, ...]  # sites where the server's service also runs (for "pinned")

    def headline(self) -> str:
        tier = "required" if self.blocking else "deferred"
        f = self.flow
        proto = _proto(f.proto) + (f"/{f.port}" if f.port else "")
        return f"[{tier}] {f.client.label} -> {f.server.label} {proto}: {self.why()}"

    def why(self) -> str:
        server = self.flow.server.service
        if self.reason == "pinned":
            return (
                f"pinned to {', '.join(self.flow.server.addresses)} at "
                f"{'+'.join(self.flow.server.sites)} although {server} also runs at "
                f"{', '.join(self.others)}"
            )
        return f"{server} has no instance outside {'+'.join(self.flow.server.sites)}"

    def evidence(self) -> str:
        f = self.flow
        cover = (
            f"covered by {', '.join(self.covered_by)}" if self.covered_by else "no probe covers it"
        )
        return (
            f"{f.records} records, {f.packets} packets, {f.bytes} bytes, "
            f"first seen {f.first_seen}, last seen {f.last_seen}; {cover}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.flow.client.label,
            "server": self.flow.server.label,
            "proto": self.flow.proto,
            "port": self.flow.port,
            "reason": self.reason,
            "blocking": self.blocking,
            "client_dr": self.flow.client.dr,
            "server_dr": self.flow.server.dr,
            "records": self.flow.records,
            "packets": self.flow.packets,
            "bytes": self.flow.bytes,
            "first_seen": self.flow.first_seen,
            "last_seen": self.flow.last_seen,
            "server_addresses": self.flow.server.addresses,
            "covered_by": list(self.covered_by),
        }


@dataclass(frozen=True)
class CheckResult:
    site: str
    findings: tuple[Finding, ...]
    gone_with_site: int  # flows whose client lives only at the site too
    unknown_endpoints: tuple[str, ...]
    records: int
    catalog_flows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocking)

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "verdict": "fail" if self.blocking else "ok",
            "findings": [f.to_dict() for f in self.findings],
            "gone_with_site": self.gone_with_site,
            "unknown_endpoints": list(self.unknown_endpoints),
            "records": self.records,
            "catalog_flows": self.catalog_flows,
        }

    def lines(self) -> list[str]:
        out: list[str] = []
        verdict = "FAIL" if self.blocking else "ok"
        out.append(
            f"{verdict}: {len(self.findings)} flow(s) still need {self.site} after the "
            f"switchover ({len(self.blocking)} with a dr: required service); "
            f"{self.catalog_flows} catalog flows from {self.records} records"
        )
        for finding in sorted(self.findings, key=lambda f: (not f.blocking, -f.flow.bytes)):
            out.append(f"  {finding.headline()}")
            out.append(f"      {finding.evidence()}")
        if self.gone_with_site:
            out.append(
                f"  {self.gone_with_site} flow(s) between services that live only at "
                f"{self.site} go away with it (not findings)"
            )
        if self.unknown_endpoints:
            shown = ", ".join(self.unknown_endpoints[:10])
            more = len(self.unknown_endpoints) - 10
            out.append(
                f"  warning: {len(self.unknown_endpoints)} address(es) belong to no service, "
                f"so their site is unknown: {shown}" + (f" (+{more} more)" if more > 0 else "")
            )
        return out


def check(catalog: Catalog, site: str, targets: Iterable[ProbeTarget] = ()) -> CheckResult:
    """Every catalog flow that still needs ``site`` once it is evacuated."""
    table = catalog.table()
    sites = sorted({s for svc in table.services for s in svc.sites})
    if site not in sites:
        raise InputError(
            f"error: --evacuate {site}: no service of the catalog is at that site "
            f"(sites: {', '.join(sites)})"
        )
    targets = list(targets)
    findings: list[Finding] = []
    gone = 0
    for flow in catalog.flows:
        server = flow.server
        if server.service is None or set(server.sites) - {site}:
            continue  # unknown (reported apart) or also served from another site
        if _only_at(table, flow.client, site):
            gone += 1
            continue
        others = _other_sites(table, server.service, site)
        findings.append(
            Finding(
                flow=flow,
                reason="pinned" if others else "only-there",
                blocking="required" in (flow.client.dr, server.dr),
                covered_by=_covered(flow, table, targets),
                others=tuple(others),
            )
        )
    unknown = tuple(u.address for u in catalog.unknown_endpoints)
    return CheckResult(
        site=site,
        findings=tuple(findings),
        gone_with_site=gone,
        unknown_endpoints=unknown,
        records=catalog.source.records,
        catalog_flows=len(catalog.flows),
    )


def _only_at(table: ServiceTable, endpoint: Endpoint, site: str) -> bool:
    """The endpoint's service exists at ``site`` and nowhere else."""
    if endpoint.service is None:
        return False
    entries = table.by_name(endpoint.service)
    return bool(entries) and all(set(e.sites) <= {site} for e in entries)


def _other_sites(table: ServiceTable, name: str, site: str) -> list[str]:
    return sorted({s for e in table.by_name(name) for s in e.sites if s != site})


def _covered(flow: CatalogFlow, table: ServiceTable, targets: list[ProbeTarget]) -> tuple[str, ...]:
    """Probes whose destination is the flow's server entry (and port, when they use one)."""
    server_entry: Service | None = None
    for address in flow.server.addresses:
        server_entry = table.lookup(address)
        if server_entry is not None:
            break
    names: list[str] = []
    for target in targets:
        try:
            entry = table.lookup(target.address)
        except ValueError:
            continue
        hit = target.address in flow.server.addresses or (
            entry is not None and server_entry is not None and entry.index == server_entry.index
        )
        if not hit:
            continue
        if target.port is None:
            names.append(f"{target.name} (address only)")
        elif not flow.port or target.port == flow.port:
            names.append(target.name)
    return tuple(names)


def probe_targets(model: Any, variables: dict[str, Any]) -> list[ProbeTarget]:
    """Destinations of the runbook's probes and of its http/traceroute checks."""
    found: list[ProbeTarget] = []
    for probe in model.probes:
        if probe.kind == "packet":
            port = probe.port if probe.protocol == "udp" else None
            _add(found, probe.name, _render(probe.target, variables), port)
        elif probe.kind == "session":
            _add(found, probe.name, _render(probe.target, variables), probe.port)
        else:
            _add_url(found, probe.name, _render(probe.url, variables))
    for section in ("prechecks", "steps", "postchecks"):
        for step in getattr(model, section):
            http = getattr(step, "http", None)
            trace = getattr(step, "traceroute", None)
            if http:
                _add_url(found, step.name, _render(http, variables))
            if trace:
                _add(found, step.name, _render(trace, variables), None)
    return found


def _render(text: str, variables: dict[str, Any]) -> str:
    return _VAR.sub(lambda m: str(variables.get(m.group(1), m.group(0))), text)


def _add(found: list[ProbeTarget], name: str, host: str, port: int | None) -> None:
    try:
        address = str(ipaddress.ip_address(host.strip().strip("[]")))
    except ValueError:
        log.debug("probe %s: %r is not an address literal; not matched against flows", name, host)
        return
    found.append(ProbeTarget(name, address, port))


def _add_url(found: list[ProbeTarget], name: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return
    if parts.hostname:
        _add(found, name, parts.hostname, port)


def _proto(number: int) -> str:
    return {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 132: "sctp"}.get(number, str(number))
