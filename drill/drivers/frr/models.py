"""Data models: NAPALM's for the standard getters, ours for get_vrrp, and a conformance check.

:func:`conforms` walks a getter's result the way NAPALM's own getter tests do
(``napalm/base/test/getters.py``) and applies ``napalm.base.test.helpers.test_model`` to each
level, so unit tests, lab tests and callers check results with one definition.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from napalm.base import models
from napalm.base.test.helpers import test_model

log = logging.getLogger(__name__)


# Functional syntax: under `from __future__ import annotations` the class syntax would store
# strings, and test_model needs real classes (bare `list`, as NAPALM's models use `List`).
VRRPGroupDict = TypedDict(  # noqa: UP013
    "VRRPGroupDict",
    {
        "state": str,  # "Master" | "Backup" | "Initialize"
        "priority": int,  # configured
        "effective_priority": int,
        "virtual_addresses": list,  # type: ignore[type-arg]
        "advertisement_interval_ms": int,
        "version": int,
    },
)
"""One VRRP group in get_vrrp(): ``{interface: {vrid: VRRPGroupDict}}``."""


def _all(model: Any, items: Iterable[Any]) -> bool:
    return all(test_model(model, item) for item in items)


def _bgp(result: Any) -> bool:
    return all(
        test_model(models.PeerDict, peer)
        and _all(models.AFDict, peer["address_family"].values())
        and isinstance(vrf["router_id"], str)
        for vrf in result.values()
        for peer in vrf["peers"].values()
    )


def _bgp_detail(result: Any) -> bool:
    return all(
        isinstance(remote_as, int) and _all(models.PeerDetailsDict, peers)
        for vrf in result.values()
        for remote_as, peers in vrf.items()
    )


def _interfaces_ip(result: Any) -> bool:
    return all(
        set(families) <= {"ipv4", "ipv6"} and _all(models.InterfacesIPDictEntry, addresses.values())
        for families in result.values()
        for addresses in families.values()
    )


def _route_to(result: Any) -> bool:
    return all(_all(models.RouteDict, routes) for routes in result.values())


def _ping(result: Any) -> bool:
    if "error" in result:
        return set(result) == {"error"} and isinstance(result["error"], str)
    success = result["success"]
    return test_model(models.PingDict, success) and _all(
        models.PingResultDictEntry, success["results"]
    )


def _traceroute(result: Any) -> bool:
    if "error" in result:
        return set(result) == {"error"} and isinstance(result["error"], str)
    return all(
        isinstance(hop, int) and _all(models.TracerouteDict, entry["probes"].values())
        for hop, entry in result["success"].items()
    )


def _vrrp(result: Any) -> bool:
    return all(
        isinstance(vrid, int)
        and test_model(VRRPGroupDict, group)
        and group["state"] in ("Master", "Backup", "Initialize")
        for groups in result.values()
        for vrid, group in groups.items()
    )


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "is_alive": lambda r: test_model(models.AliveDict, r),
    "get_facts": lambda r: test_model(models.FactsDict, r),
    "get_interfaces": lambda r: _all(models.InterfaceDict, r.values()),
    "get_interfaces_ip": _interfaces_ip,
    "get_bgp_neighbors": _bgp,
    "get_bgp_neighbors_detail": _bgp_detail,
    "get_arp_table": lambda r: _all(models.ARPTableDict, r),
    "get_route_to": _route_to,
    "get_config": lambda r: test_model(models.ConfigDict, r),
    "ping": _ping,
    "traceroute": _traceroute,
    "get_vrrp": _vrrp,
}

GETTERS = tuple(_CHECKS)


def conforms(getter: str, result: Any) -> bool:
    """True when ``result`` has exactly the keys and types of ``getter``'s model.

    >>> conforms("is_alive", {"is_alive": True}), conforms("is_alive", {"is_alive": 1})
    (True, False)
    """
    # test_model explains mismatches with print(); keep that out of the caller's stdout
    explanation = io.StringIO()
    with contextlib.redirect_stdout(explanation):
        ok = _CHECKS[getter](result)
    if not ok:
        log.debug("%s does not match its model:\n%s", getter, explanation.getvalue())
    return ok
