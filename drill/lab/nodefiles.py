"""What a node's files say (enabled FRR daemons, interface addresses, VRRP groups), and the
files containerlab's ``frr`` kind generates (``daemons`` from ``extras.frr.daemons``).

Pure text, so the plan (and its unit test) can be derived without touching the host.
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


# containerlab's frr kind (nodes/frr/daemons.go): the daemons a topology may switch on, and
# the ones FRR always starts (naming them is allowed and changes nothing).
CLAB_CONFIGURABLE_DAEMONS = (
    "bgpd",
    "ospfd",
    "ospf6d",
    "ripd",
    "ripngd",
    "isisd",
    "pimd",
    "pim6d",
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
)
CLAB_ALWAYS_ON_DAEMONS = ("zebra", "staticd", "mgmtd", "watchfrr")
# What Debian 12's FRR 8.4 package ships of those (no pim6d, no sharpd, no mgmtd).
FRR_PACKAGE_DAEMONS = tuple(d for d in CLAB_CONFIGURABLE_DAEMONS if d not in ("pim6d", "sharpd"))
# containerlab's frr kind writes this frr.conf when the node has no startup-config.
DEFAULT_FRR_CONF = "frr defaults traditional\n!\nlog stdout\n!\n"


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


def render_daemons(requested: tuple[str, ...] | list[str]) -> str:
    """An FRR ``daemons`` file as containerlab's frr kind renders it from ``extras.frr.daemons``.

    An empty list enables every daemon (containerlab's rule), here every one FRR 8.4 ships;
    otherwise exactly the named ones. zebra and staticd are always on. Names are checked by
    the topology reader, so unknown ones are ignored here.

    >>> [d.name for d in parse_daemons(render_daemons(["ospfd"]))]
    ['zebra', 'ospfd', 'staticd']
    >>> len(parse_daemons(render_daemons([]))) == len(FRR_PACKAGE_DAEMONS) + 2
    True
    """
    enabled = set(requested) if requested else set(FRR_PACKAGE_DAEMONS)
    lines = ["# Generated by drill from extras.frr.daemons (containerlab's frr kind)."]
    lines += [f"{d}={'yes' if d in enabled else 'no'}" for d in FRR_PACKAGE_DAEMONS]
    lines.append("staticd=yes")
    lines.append("vtysh_enable=yes")
    lines.append('zebra_options="  -A 127.0.0.1 -s 90000000"')
    lines += [f'{d}_options="-A 127.0.0.1"' for d in (*FRR_PACKAGE_DAEMONS, "staticd")]
    return "\n".join(lines) + "\n"
