"""Run a local command from a vantage point (``local``, ``netns:NAME``, ``lab:LABDIR:NODE``;
resolved by drill.probes.vantage, the same rules the probes use)."""

from __future__ import annotations

import logging
import subprocess

from drill.probes import vantage as probe_vantage

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def wrap(argv: list[str], vantage: str | None) -> list[str]:
    """The argv that runs ``argv`` at ``vantage`` (the probes' rules, one place).

    >>> wrap(["ping", "-c1", "192.0.2.1"], "netns:two-dc-client")
    ['ip', 'netns', 'exec', 'two-dc-client', 'ping', '-c1', '192.0.2.1']
    >>> wrap(["true"], None)
    ['true']
    """
    return probe_vantage.wrap(vantage or "local", list(argv))


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
