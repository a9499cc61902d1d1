"""Where a probe, check or command runs from: this host or a Linux network namespace.

``local`` is this host; ``netns:NAME`` the namespace NAME; ``lab:LABDIR:NODE`` the namespace
of a node of a drill lab, which the built-in lab backend names ``<lab>-<node>`` with the
lab's directory name standing for the lab name (``labs/two-dc`` -> ``two-dc``).

>>> wrap("local", ["ping", "-c1", "192.0.2.10"])
['ping', '-c1', '192.0.2.10']
>>> wrap("netns:two-dc-client", ["curl", "http://192.0.2.10/"])
['ip', 'netns', 'exec', 'two-dc-client', 'curl', 'http://192.0.2.10/']
>>> wrap("lab:labs/two-dc:client", ["true"])
['ip', 'netns', 'exec', 'two-dc-client', 'true']
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePath

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
    if kind == "lab":
        labdir, _, node = name.rpartition(":")
        lab = PurePath(labdir).name
        if not lab or not node:
            raise InputError(f"bad vantage point {vantage!r}: use lab:LABDIR:NODE")
        name = f"{lab}-{node}"
        kind = "netns"
    if kind == "netns":
        if not _NETNS.match(name) or name in (".", ".."):
            raise InputError(
                f"bad vantage point {vantage!r}: the namespace name must be a plain file name"
            )
        return name
    raise InputError(
        f"unknown vantage point {vantage!r}: use 'local', 'netns:NAME' or 'lab:LABDIR:NODE'"
    )


def wrap(vantage: str, argv: list[str]) -> list[str]:
    """``argv`` made to run from ``vantage``; InputError for an unknown vantage point."""
    netns = netns_of(vantage)
    if netns is None:
        return list(argv)
    return ["ip", "netns", "exec", netns, *argv]
