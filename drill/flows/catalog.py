"""Aggregate flow records into a catalog: client service@site -> server service@site, by
protocol and server port, with counters, first/last seen, and the addresses of no service.

The catalog embeds the services it was built with, so ``flows check`` needs nothing else.
Which end is the server (docs/flows.md, "Client and server"): the end whose port is one the
services file lists for it; else the end with a well-known port (< 1024) when the other has
none; else the lower port (ephemeral ports are high). ICMP replies are turned around.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from drill.errors import Diagnostic, InputError
from drill.flows.records import FlowRecord
from drill.flows.services import Service, ServiceTable, Tier, parse_network, parse_port
from drill.runbook.yamlpos import YamlError, read_text

log = logging.getLogger(__name__)

SAMPLE = 8  # addresses kept per catalog flow, as evidence
PEERS = 10  # peers kept per unknown endpoint
PORTED = frozenset({6, 17, 132})
ICMP_REPLIES = {1: frozenset({0, 14, 16, 18}), 58: frozenset({129})}
MAX_CATALOG_BYTES = 512 * 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _address(value: str) -> str:
    """One host address: the flow probes connect to it and bind to it."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


Address = Annotated[str, AfterValidator(_address)]
Count = Annotated[int, Field(ge=0)]


class Endpoint(_Model):
    """A service entry, or ``service: null`` for addresses that belong to no service."""

    service: str | None
    sites: list[str] = Field(default_factory=list)
    dr: Tier | None = None
    addresses: list[Address] = Field(default_factory=list, description="sample seen in the flows")

    @property
    def label(self) -> str:
        if self.service is None:
            return "(unknown)"
        return f"{self.service}@{'+'.join(self.sites)}"


class CatalogFlow(_Model):
    client: Endpoint
    server: Endpoint
    proto: int = Field(ge=0, le=255)
    port: int = Field(
        ge=0, le=65535, description="the server's port; 0 for protocols without ports"
    )
    records: Count
    packets: Count
    bytes: Count
    first_seen: str
    last_seen: str
    cross_site: bool = Field(description="client and server are known and share no site")
    exporters: list[str] = Field(default_factory=list)


class UnknownEndpoint(_Model):
    address: Address
    as_client: Count = Field(description="records where this address was the client")
    as_server: Count
    packets: Count
    bytes: Count
    first_seen: str
    last_seen: str
    peers: list[str] = Field(default_factory=list, description="service@site or address")


class ServiceDoc(_Model):
    name: str
    sites: list[str]
    dr: Tier
    addresses: list[str]
    ports: list[str] = Field(default_factory=list)
    description: str = ""


class CatalogSource(_Model):
    flows: list[str]
    services: str
    records: int
    generated: str


class Catalog(_Model):
    version: Literal[1] = 1
    source: CatalogSource
    services: list[ServiceDoc]
    flows: list[CatalogFlow]
    unknown_endpoints: list[UnknownEndpoint]

    def table(self) -> ServiceTable:
        return ServiceTable([_service_from_doc(i, d) for i, d in enumerate(self.services)])


def _service_from_doc(index: int, doc: ServiceDoc) -> Service:
    return Service(
        index=index,
        name=doc.name,
        sites=tuple(doc.sites),
        dr=doc.dr,
        networks=tuple(parse_network(a) for a in doc.addresses),
        ports=frozenset(parse_port(p) for p in doc.ports),
        description=doc.description,
    )


@dataclass(slots=True)
class _Edge:
    records: int = 0
    packets: int = 0
    bytes: int = 0
    first: str = "~"
    last: str = ""
    clients: set[str] = field(default_factory=set)
    servers: set[str] = field(default_factory=set)
    exporters: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Unknown:
    as_client: int = 0
    as_server: int = 0
    packets: int = 0
    bytes: int = 0
    first: str = "~"
    last: str = ""
    peers: set[str] = field(default_factory=set)


def server_is_dst(rec: FlowRecord, src: Service | None, dst: Service | None) -> bool:
    """Decide which end of ``rec`` is the server (see the module docstring)."""
    proto = rec.proto
    if proto in PORTED:
        if dst is not None and (rec.dst_port, proto) in dst.ports:
            return True
        if src is not None and (rec.src_port, proto) in src.ports:
            return False
        sport, dport = rec.src_port, rec.dst_port
        if (dport < 1024) != (sport < 1024):
            return dport < 1024
        return dport <= sport
    replies = ICMP_REPLIES.get(proto)
    if replies is not None:
        return (rec.dst_port >> 8) not in replies
    return True


@dataclass
class Partial:
    """What one worker aggregated (see drill.flows.parallel); picklable."""

    records: int
    edges: dict[tuple[int, int, int, int], _Edge]
    unknown: dict[str, _Unknown]


class CatalogBuilder:
    """Feed records with ``add``; ``catalog()`` at the end."""

    def __init__(self, table: ServiceTable) -> None:
        self.table = table
        self.records = 0
        self._edges: dict[tuple[int, int, int, int], _Edge] = {}
        self._unknown: dict[str, _Unknown] = {}

    def add_all(self, records: Iterable[FlowRecord]) -> None:
        for rec in records:
            self.add(rec)

    def add(self, rec: FlowRecord) -> None:
        lookup = self.table.lookup
        src, dst = lookup(rec.src_addr), lookup(rec.dst_addr)
        if server_is_dst(rec, src, dst):
            c_addr, c_svc, s_addr, s_svc = rec.src_addr, src, rec.dst_addr, dst
            port = rec.dst_port
        else:
            c_addr, c_svc, s_addr, s_svc = rec.dst_addr, dst, rec.src_addr, src
            port = rec.src_port
        if rec.proto not in PORTED:
            port = 0
        self.records += 1
        key = (
            c_svc.index if c_svc is not None else -1,
            s_svc.index if s_svc is not None else -1,
            rec.proto,
            port,
        )
        edge = self._edges.get(key)
        if edge is None:
            edge = self._edges[key] = _Edge()
        edge.records += 1
        edge.packets += rec.packets
        edge.bytes += rec.bytes
        # plain comparisons, not min()/max(): this runs once per record (1M in a benchmark)
        if rec.first_seen < edge.first:
            edge.first = rec.first_seen
        if rec.last_seen > edge.last:
            edge.last = rec.last_seen
        if len(edge.clients) < SAMPLE:
            edge.clients.add(c_addr)
        if len(edge.servers) < SAMPLE:
            edge.servers.add(s_addr)
        if rec.exporter is not None and len(edge.exporters) < SAMPLE:
            edge.exporters.add(rec.exporter)
        if c_svc is None:
            self._note_unknown(rec, c_addr, True, s_svc.label if s_svc else s_addr)
        if s_svc is None:
            self._note_unknown(rec, s_addr, False, c_svc.label if c_svc else c_addr)

    def _note_unknown(self, rec: FlowRecord, address: str, client: bool, peer: str) -> None:
        entry = self._unknown.get(address)
        if entry is None:
            entry = self._unknown[address] = _Unknown()
        if client:
            entry.as_client += 1
        else:
            entry.as_server += 1
        entry.packets += rec.packets
        entry.bytes += rec.bytes
        if rec.first_seen < entry.first:
            entry.first = rec.first_seen
        if rec.last_seen > entry.last:
            entry.last = rec.last_seen
        if len(entry.peers) < PEERS:
            entry.peers.add(peer)

    def partial(self) -> Partial:
        return Partial(self.records, self._edges, self._unknown)

    def merge(self, part: Partial) -> None:
        """Add another builder's aggregates (same services table) to this one."""
        self.records += part.records
        for key, edge in part.edges.items():
            mine = self._edges.get(key)
            if mine is None:
                self._edges[key] = edge
                continue
            mine.records += edge.records
            mine.packets += edge.packets
            mine.bytes += edge.bytes
            mine.first = min(mine.first, edge.first)
            mine.last = max(mine.last, edge.last)
            _fill(mine.clients, edge.clients, SAMPLE)
            _fill(mine.servers, edge.servers, SAMPLE)
            _fill(mine.exporters, edge.exporters, SAMPLE)
        for address, other in part.unknown.items():
            entry = self._unknown.get(address)
            if entry is None:
                self._unknown[address] = other
                continue
            entry.as_client += other.as_client
            entry.as_server += other.as_server
            entry.packets += other.packets
            entry.bytes += other.bytes
            entry.first = min(entry.first, other.first)
            entry.last = max(entry.last, other.last)
            _fill(entry.peers, other.peers, PEERS)

    def catalog(self, flows_files: list[str], services_file: str) -> Catalog:
        services = self.table.services
        flows = [
            self._flow(key, edge, services)
            for key, edge in sorted(self._edges.items(), key=lambda kv: -kv[1].bytes)
        ]
        unknown = [
            UnknownEndpoint(
                address=address,
                as_client=u.as_client,
                as_server=u.as_server,
                packets=u.packets,
                bytes=u.bytes,
                first_seen=u.first,
                last_seen=u.last,
                peers=sorted(u.peers),
            )
            for address, u in sorted(self._unknown.items(), key=lambda kv: -kv[1].bytes)
        ]
        return Catalog(
            source=CatalogSource(
                flows=flows_files,
                services=services_file,
                records=self.records,
                generated=datetime.now(UTC).isoformat(timespec="seconds"),
            ),
            services=[ServiceDoc(**s.to_dict()) for s in services],
            flows=flows,
            unknown_endpoints=unknown,
        )

    @staticmethod
    def _flow(key: tuple[int, int, int, int], edge: _Edge, services: list[Service]) -> CatalogFlow:
        c_index, s_index, proto, port = key
        client = _endpoint(services[c_index] if c_index >= 0 else None, edge.clients)
        server = _endpoint(services[s_index] if s_index >= 0 else None, edge.servers)
        cross = (
            client.service is not None
            and server.service is not None
            and not set(client.sites) & set(server.sites)
        )
        return CatalogFlow(
            client=client,
            server=server,
            proto=proto,
            port=port,
            records=edge.records,
            packets=edge.packets,
            bytes=edge.bytes,
            first_seen=edge.first,
            last_seen=edge.last,
            cross_site=cross,
            exporters=sorted(edge.exporters),
        )


def _fill(target: set[str], source: set[str], limit: int) -> None:
    for item in sorted(source):
        if len(target) >= limit:
            return
        target.add(item)


def _endpoint(service: Service | None, addresses: set[str]) -> Endpoint:
    if service is None:
        return Endpoint(service=None, addresses=sorted(addresses))
    return Endpoint(
        service=service.name,
        sites=list(service.sites),
        dr=service.dr,
        addresses=sorted(addresses),
    )


def write_catalog(catalog: Catalog, path: Path) -> None:
    path.write_text(catalog.model_dump_json(indent=2) + "\n")


def load_catalog(path: Path) -> Catalog:
    """A catalog written by ``flows catalog``; every problem is one located line. Read as
    every input file is (a regular file, bounded, never a FIFO that blocks)."""
    return read_catalog(path)[0]


def read_catalog(path: Path) -> tuple[Catalog, str]:
    """:func:`load_catalog` and the sha256 of the text it was read from (the report names
    exactly which catalog a rehearsal was generated from)."""
    display = str(path)
    try:
        text = read_text(path, display, MAX_CATALOG_BYTES)
    except YamlError as exc:
        raise InputError(exc.diagnostics) from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            [Diagnostic(display, exc.lineno, exc.colno, f"bad JSON: {exc.msg}")]
        ) from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise InputError([Diagnostic(display, 1, 1, f"bad JSON: {exc}")]) from None
    except RecursionError:
        raise InputError([Diagnostic(display, 1, 1, "bad JSON: nested too deeply")]) from None
    try:
        catalog = Catalog.model_validate(data)
        catalog.table()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        message = f"not a drill flow catalog: {where}: {first['msg']}"
        raise InputError([Diagnostic(display, 1, 1, message)]) from None
    except ValueError as exc:
        raise InputError([Diagnostic(display, 1, 1, f"not a drill flow catalog: {exc}")]) from None
    return catalog, digest
