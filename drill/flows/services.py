"""The services file: which addresses belong to which service, at which site, in which DR tier.

Loaded with the runbook's YAML reader, so every problem is a ``FILE:LINE:COL: error:`` line.
Matching is longest-prefix: one table per address family, one dict per prefix length, probed
from the longest length down (docs/flows.md, "Services file").
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator

from drill.errors import Diagnostic, InputError
from drill.runbook.model import Strict
from drill.runbook.schema_errors import schema_diagnostics
from drill.runbook.yamlpos import ParsedYaml, YamlError, parse, read_text, sort_diagnostics

log = logging.getLogger(__name__)

Tier = Literal["required", "deferred"]
_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _check_network(value: str) -> str:
    parse_network(value)
    return value


def _check_port(value: int | str) -> int | str:
    parse_port(value)
    return value


# Checked one by one, so an error points at the bad item, not at its list.
Address = Annotated[str, AfterValidator(_check_network)]
PortSpec = Annotated[int | str, AfterValidator(_check_port)]


class ServiceSpec(Strict):
    """One service at one site (or at several, for an address that moves between them)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    site: str | list[str] = Field(
        description="where these addresses live; a list for an address served from several "
        "sites (a VIP that moves, anycast)"
    )
    dr: Tier = Field(description="required: must work after a switchover; deferred: can wait")
    addresses: list[Address] = Field(
        min_length=1,
        max_length=10000,
        description="addresses or prefixes (192.0.2.10, 2001:db8::/64)",
    )
    ports: list[PortSpec] = Field(
        default_factory=list,
        description="ports the service listens on: 443, '443/tcp', '53/udp' (tcp if omitted); "
        "they decide which end of a flow is the server",
    )
    description: str = ""

    @field_validator("site")
    @classmethod
    def _site_names(cls, value: str | list[str]) -> str | list[str]:
        sites = [value] if isinstance(value, str) else value
        if not sites or any(not s.strip() for s in sites):
            raise ValueError("a site is a non-empty name (or a non-empty list of names)")
        return value


class ServicesFile(Strict):
    api_version: Literal["drill/v1"] = Field(alias="apiVersion")
    services: list[ServiceSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Service:
    """One entry of the services file, ready for matching."""

    index: int
    name: str
    sites: tuple[str, ...]
    dr: Tier
    networks: tuple[Network, ...]
    ports: frozenset[tuple[int, int]]  # (port, protocol number)
    description: str = ""

    @property
    def label(self) -> str:
        """``name@site`` (``name@dc1+dc2`` for an entry that spans sites)."""
        return f"{self.name}@{'+'.join(self.sites)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sites": list(self.sites),
            "dr": self.dr,
            "addresses": [str(n) for n in self.networks],
            "ports": [f"{p}/{_proto_name(proto)}" for p, proto in sorted(self.ports)],
            "description": self.description,
        }


def parse_network(text: Any) -> Network:
    if not isinstance(text, str):
        raise ValueError(f"an address or prefix is a string, not {type(text).__name__}")
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"`{text[:60]}` is not an address or prefix: {exc}") from None


def parse_port(item: int | str) -> tuple[int, int]:
    """``443`` -> (443, 6); ``'53/udp'`` -> (53, 17).

    >>> parse_port("53/udp")
    (53, 17)
    """
    match = _PORT.match(str(item).strip()) if not isinstance(item, bool) else None
    if match is None or not 0 < int(match.group(1)) <= 65535:
        raise ValueError(f"port `{item}`: use 1-65535, optionally /tcp, /udp or /sctp")
    return int(match.group(1)), PROTO_NUMBERS[match.group(2) or "tcp"]


def _proto_name(number: int) -> str:
    return {v: k for k, v in PROTO_NUMBERS.items()}.get(number, str(number))


class ServiceTable:
    """Longest-prefix match from address to service, per family."""

    def __init__(self, services: list[Service]) -> None:
        self.services = services
        self._tables: dict[int, list[tuple[int, dict[int, Service]]]] = {4: [], 6: []}
        by_len: dict[tuple[int, int], dict[int, Service]] = {}
        for service in services:
            for net in service.networks:
                bits = net.max_prefixlen
                key = int(net.network_address) >> (bits - net.prefixlen)
                by_len.setdefault((net.version, net.prefixlen), {})[key] = service
        for (version, length), table in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            self._tables[version].append((length, table))
        self.lookup = functools.lru_cache(maxsize=1 << 18)(self._lookup)

    def _lookup(self, address: str) -> Service | None:
        addr = ipaddress.ip_address(address)
        bits = addr.max_prefixlen
        value = int(addr)
        for length, table in self._tables[addr.version]:
            found = table.get(value >> (bits - length))
            if found is not None:
                return found
        return None

    def by_name(self, name: str) -> list[Service]:
        return [s for s in self.services if s.name == name]


def load_services(path: Path) -> ServiceTable:
    """Read and check a services file; InputError lists every problem with its position."""
    display = str(path)
    try:
        parsed = parse(read_text(path, display), display)
    except YamlError as exc:
        raise InputError(exc.diagnostics) from None
    data = parsed.data
    if not isinstance(data, dict):
        pos = parsed.positions.value(())
        message = "a services file is a mapping with apiVersion and services"
        raise InputError([Diagnostic(display, pos.line, pos.col, message)])
    try:
        model = ServicesFile.model_validate(data)
    except ValidationError as exc:
        found = schema_diagnostics(exc, data, parsed.positions, display, ServicesFile)
        raise InputError(sort_diagnostics(list(parsed.soft) + found)) from None
    services = [_service(i, spec) for i, spec in enumerate(model.services)]
    found = _conflicts(services, parsed, display)
    if found:
        raise InputError(sort_diagnostics(found))
    log.debug("%s: %d services", display, len(services))
    return ServiceTable(services)


def _service(index: int, spec: ServiceSpec) -> Service:
    sites = (spec.site,) if isinstance(spec.site, str) else tuple(dict.fromkeys(spec.site))
    return Service(
        index=index,
        name=spec.name,
        sites=tuple(s.strip() for s in sites),
        dr=spec.dr,
        networks=tuple(parse_network(a) for a in spec.addresses),
        ports=frozenset(parse_port(p) for p in spec.ports),
        description=spec.description,
    )


def _conflicts(services: list[Service], parsed: ParsedYaml, display: str) -> list[Diagnostic]:
    """The same prefix twice is ambiguous; one name in two tiers is contradictory."""
    found: list[Diagnostic] = []
    owner: dict[Network, Service] = {}
    tier: dict[str, Service] = {}
    for service in services:
        for i, net in enumerate(service.networks):
            first = owner.setdefault(net, service)
            if first is not service:
                pos = parsed.positions.value(("services", service.index, "addresses", i))
                message = f"{net} is already listed for {first.label} (entry {first.index + 1})"
                found.append(Diagnostic(display, pos.line, pos.col, message))
        seen = tier.setdefault(service.name, service)
        if seen.dr != service.dr:
            pos = parsed.positions.value(("services", service.index, "dr"))
            message = f"service {service.name} is `dr: {seen.dr}` in entry {seen.index + 1}"
            found.append(Diagnostic(display, pos.line, pos.col, message))
    return found


def services_schema() -> dict[str, Any]:
    return ServicesFile.model_json_schema(by_alias=True)
