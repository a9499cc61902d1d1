"""Root check for the lab: network namespaces, mounts and nftables need it."""

from __future__ import annotations

import os

from drill.errors import NeedsRootError


def effective_uid() -> int:
    """Indirection so tests can simulate a non-root user."""
    return os.geteuid()


def require_root(what: str) -> None:
    if effective_uid() != 0:
        raise NeedsRootError(what)
