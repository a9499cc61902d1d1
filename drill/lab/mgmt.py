"""Management addresses: the lab's default subnet and the automatic per-node addresses.

containerlab lets Docker's IPAM hand out addresses to nodes without ``mgmt-ipv4``, in
whatever order the containers start. Here the assignment is a pure function of the topology
(node order in the file), so a lab gets the same addresses on every ``up``: automation and
known_hosts keep working across ``down``/``up``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Iterable, Iterator

log = logging.getLogger(__name__)

# containerlab's default is 172.20.20.0/24; a lab here uses only benchmarking/documentation
# space, so a topology without mgmt.ipv4-subnet gets a /24 of 198.19.0.0/16 from its name.
DEFAULT_POOL = ipaddress.IPv4Network("198.19.0.0/16")


def default_subnet(lab: str) -> ipaddress.IPv4Network:
    """A /24 of 198.19.0.0/16 chosen by the lab's name (stable, rarely shared).

    >>> default_subnet("frr01") == default_subnet("frr01")
    True
    >>> default_subnet("frr01").subnet_of(DEFAULT_POOL)
    True
    """
    index = hashlib.sha256(lab.encode()).digest()[0]
    return list(DEFAULT_POOL.subnets(new_prefix=24))[index]


def auto_addresses(
    pool: ipaddress.IPv4Network,
    gateway: ipaddress.IPv4Address,
    taken: Iterable[ipaddress.IPv4Address],
) -> Iterator[ipaddress.IPv4Address]:
    """Free host addresses of ``pool`` in order, skipping the gateway and ``taken`` ones.

    >>> net = ipaddress.IPv4Network("198.18.4.0/29")
    >>> [str(a) for a in auto_addresses(net, net[1], [net[3]])]
    ['198.18.4.2', '198.18.4.4', '198.18.4.5', '198.18.4.6']
    """
    used = {gateway, *taken}
    return (a for a in pool.hosts() if a not in used)
