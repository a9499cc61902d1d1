"""Run a local command from a vantage point: ``local``, ``netns:NAME`` or
``lab:LABDIR:NODE`` (the lab node's namespace, ``<labname>-<node>``)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def wrap(argv: list[str], vantage: str | None) -> list[str]:
    """The argv that runs ``argv`` at ``vantage``.

    >>> wrap(["ping", "-c1", "192.0.2.1"], "netns:two-dc-client")
    ['ip', 'netns', 'exec', 'two-dc-client', 'ping', '-c1', '192.0.2.1']
    >>> wrap(["true"], "lab:labs/two-dc:client")
    ['ip', 'netns', 'exec', 'two-dc-client', 'true']
    """
    if vantage in (None, "", "local"):
        return list(argv)
    if vantage.startswith("netns:"):
        return ["ip", "netns", "exec", vantage.removeprefix("netns:"), *argv]
    if vantage.startswith("lab:"):
        _, labdir, node = vantage.split(":", 2)
        return ["ip", "netns", "exec", f"{Path(labdir).name}-{node}", *argv]
    raise ValueError(f"unknown vantage point {vantage!r} (use local, netns:NAME, lab:DIR:NODE)")


def run(
    argv: list[str],
    vantage: str | None,
    *,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": DEFAULT_PATH, **(env or {})}
    return subprocess.run(
        wrap(argv, vantage),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=cwd,
        check=False,
    )
