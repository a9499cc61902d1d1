"""Where a probe, check or command runs from: this host or a Linux network namespace.

>>> wrap("local", ["ping", "-c1", "192.0.2.10"])
['ping', '-c1', '192.0.2.10']
>>> wrap("netns:two-dc-client", ["curl", "http://192.0.2.10/"])
['ip', 'netns', 'exec', 'two-dc-client', 'curl', 'http://192.0.2.10/']
"""

from __future__ import annotations

import logging
import re

from drill.errors import InputError

log = logging.getLogger(__name__)

# Same rule as iproute2: a namespace name is a file name under /run/netns.
_NETNS = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$")


def netns_of(vantage: str) -> str | None:
    """The namespace a vantage point names, or None for ``local``; InputError otherwise.

    >>> netns_of("local") is None
    True
    >>> netns_of("netns:../etc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    drill.errors.InputError: bad vantage point 'netns:../etc': the namespace name must be a ...
    """
    if vantage == "local":
        return None
    kind, _, name = vantage.partition(":")
    if kind == "netns":
        if not _NETNS.match(name) or name in (".", ".."):
            raise InputError(
                f"bad vantage point {vantage!r}: the namespace name must be a plain file name"
            )
        return name
    raise InputError(f"unknown vantage point {vantage!r}: use 'local' or 'netns:NAME'")


def wrap(vantage: str, argv: list[str]) -> list[str]:
    """``argv`` made to run from ``vantage`` (``local`` or ``netns:NAME``)."""
    netns = netns_of(vantage)
    if netns is None:
        return list(argv)
    return ["ip", "netns", "exec", netns, *argv]
