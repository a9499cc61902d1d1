"""What a node's files say: enabled FRR daemons, interface addresses, VRRP groups.

Pure text parsing, so the plan (and its unit test) can be derived without touching the host.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass

# Start order matters: every daemon registers with zebra.
FRR_DAEMONS = (
    "zebra",
    "bgpd",
    "ospfd",
    "ospf6d",
    "ripd",
    "ripngd",
    "isisd",
    "pimd",
    "ldpd",
    "nhrpd",
    "eigrpd",
    "babeld",
    "sharpd",
    "pbrd",
    "bfdd",
    "fabricd",
    "vrrpd",
    "pathd",
    "staticd",
)


@dataclass(frozen=True)
class Daemon:
    name: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Address:
    iface: str
    address: ipaddress.IPv4Interface
    source: str  # "frr.conf" or "exec"


@dataclass(frozen=True)
class VrrpGroup:
    iface: str
    vrid: int
    priority: int
    addresses: tuple[ipaddress.IPv4Address, ...]


def parse_daemons(text: str) -> tuple[Daemon, ...]:
    """Enabled daemons of an FRR ``daemons`` file, zebra first, with their options.

    >>> [d.name for d in parse_daemons('bgpd=yes\\nospfd=no\\nbgpd_options="-A 127.0.0.1"')]
    ['zebra', 'bgpd']
    >>> parse_daemons('bgpd=yes\\nbgpd_options="  -A 127.0.0.1"')[1].options
    ('-A', '127.0.0.1')
    """
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = " ".join(shlex.split(value))
    enabled = [
        d for d in FRR_DAEMONS if d == "zebra" or values.get(d, "no").lower() in ("yes", "true")
    ]
    return tuple(Daemon(d, tuple(shlex.split(values.get(f"{d}_options", "")))) for d in enabled)


_INTERFACE = re.compile(r"^interface\s+(\S+)")
_IP_ADDRESS = re.compile(r"^\s+ip address\s+(\d+\.\d+\.\d+\.\d+/\d+)")
_VRRP = re.compile(r"^\s+vrrp\s+(\d+)\s+(priority|ip)\s+(\S+)")


def frr_addresses(text: str) -> list[Address]:
    """IPv4 interface addresses configured in an ``frr.conf``.

    >>> frr_addresses("interface eth1\\n ip address 192.0.2.2/24\\nexit\\n")[0].address
    IPv4Interface('192.0.2.2/24')
    """
    found: list[Address] = []
    iface: str | None = None
    for line in text.splitlines():
        if m := _INTERFACE.match(line):
            iface = m.group(1)
        elif not line.startswith(" "):
            iface = None
        elif iface and (m := _IP_ADDRESS.match(line)):
            found.append(Address(iface, ipaddress.IPv4Interface(m.group(1)), "frr.conf"))
    return found


def frr_vrrp_groups(text: str) -> list[VrrpGroup]:
    """VRRP groups in an ``frr.conf`` (priority 100 when not set, as in FRR).

    >>> g = frr_vrrp_groups("interface eth1\\n vrrp 1 priority 200\\n vrrp 1 ip 192.0.2.1\\n")
    >>> (g[0].vrid, g[0].priority, [str(a) for a in g[0].addresses])
    (1, 200, ['192.0.2.1'])
    """
    priorities: dict[tuple[str, int], int] = {}
    vips: dict[tuple[str, int], list[ipaddress.IPv4Address]] = {}
    iface: str | None = None
    for line in text.splitlines():
        if m := _INTERFACE.match(line):
            iface = m.group(1)
        elif not line.startswith(" "):
            iface = None
        elif iface and (m := _VRRP.match(line)):
            key = (iface, int(m.group(1)))
            vips.setdefault(key, [])
            priorities.setdefault(key, 100)
            if m.group(2) == "priority":
                priorities[key] = int(m.group(3))
            else:
                vips[key].append(ipaddress.IPv4Address(m.group(3)))
    return [VrrpGroup(i, v, priorities[(i, v)], tuple(ips)) for (i, v), ips in vips.items()]


def exec_addresses(lines: tuple[str, ...] | list[str]) -> list[Address]:
    """IPv4 addresses that ``exec:`` lines add with ``ip addr add A/L dev IFACE``.

    >>> exec_addresses(["ip addr add 203.0.113.10/24 dev eth1"])[0].iface
    'eth1'
    """
    found: list[Address] = []
    for line in lines:
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) < 6 or words[0] != "ip" or words[1] not in ("addr", "address", "a"):
            continue
        if words[2] != "add" or "dev" not in words:
            continue
        try:
            address = ipaddress.IPv4Interface(words[3])
        except ValueError:
            continue
        found.append(Address(words[words.index("dev") + 1], address, "exec"))
    return found
